"""`improv validate`'s look at a Python actor: `python -m improv_ts._check <file> <class> [<dotted package>]`.

Imports the actor's file as the actor process would and prints one JSON line: `{"ok": true, ...}`,
or `{"ok": false, "kind": ..., "message": ..., "file"?, "line"?, "module"?, "classes"?}` where kind
is `deps` (improv_ts's own modules are missing), `syntax`, `missing-module`, `import`, `no-class`,
`not-actor` or `no-run-step`.
"""

import json
import sys
import traceback


def _where(error):
    frames = traceback.extract_tb(error.__traceback__)
    frame = frames[-1] if frames else None
    return {"file": frame.filename, "line": frame.lineno} if frame else {}


def check(path, class_name, package):
    for module in ("numpy", "zmq", "msgpack"):
        try:
            __import__(module)
        except ImportError as error:
            return {"ok": False, "kind": "deps", "module": module, "message": str(error)}
    from pathlib import Path

    from ._host import NoSuchClass, NotAnActor, load_class

    try:
        cls = load_class(Path(path).as_uri(), class_name, package)
    except SyntaxError as error:
        return {"ok": False, "kind": "syntax", "message": f"{error.msg}", "file": error.filename, "line": error.lineno}
    except ModuleNotFoundError as error:
        return {"ok": False, "kind": "missing-module", "module": error.name, "message": str(error), **_where(error)}
    except NoSuchClass as error:
        return {"ok": False, "kind": "no-class", "message": str(error), "classes": error.classes}
    except NotAnActor as error:
        return {"ok": False, "kind": "not-actor", "message": str(error)}
    except BaseException as error:  # noqa: BLE001 - whatever the file raises at import
        return {"ok": False, "kind": "import", "message": f"{type(error).__name__}: {error}", **_where(error)}
    for name in ("run_step", "runStep"):
        if callable(getattr(cls, name, None)):
            return {"ok": True, "runStep": name}
    return {"ok": False, "kind": "no-run-step", "message": f"class {class_name} has no run_step() method"}


if __name__ == "__main__":
    arguments = sys.argv[1:]
    result = check(arguments[0], arguments[1], arguments[2] if len(arguments) > 2 else None)
    sys.stdout.write("\n" + json.dumps(result) + "\n")
