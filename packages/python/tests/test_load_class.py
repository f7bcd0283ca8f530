"""Loading an actor's file (`load_class`), as the actor process and `improv validate` do."""

import importlib

from improv_ts._host import load_class

ACTOR = """from improv_ts import Actor


class Shadow(Actor):
    def run_step(self):
        pass
"""


def test_an_actor_file_named_like_a_standard_module_hides_nothing(tmp_path):
    for name in ("random", "queue"):
        (tmp_path / f"{name}.py").write_text(ACTOR)
    cls = load_class((tmp_path / "random.py").as_uri(), "Shadow")
    assert cls.__name__ == "Shadow"
    # Python's own modules are still Python's own, here and for whatever imports them later.
    assert hasattr(importlib.import_module("random"), "random")
    assert hasattr(importlib.import_module("queue"), "Empty")

