"""LMDB through ctypes, built from the very sources lmdb-js ships.

The TypeScript `lmdb` store runs on lmdb-js 3, whose LMDB writes **data format 2** (and lock format
2). The Python `lmdb` module (py-lmdb, LMDB 0.9) reads format 1 only and fails with `MDB_INVALID`,
and lmdb-js's own native module exports no `mdb_*` symbols. So the first Python actor that needs
the store compiles `mdb.c`, `midl.c` and `chacha8.c` from the `lmdb` npm package the driver loads
(`dependencies/lmdb/libraries/liblmdb`) into a shared library, with the defines lmdb-js's
`binding.gyp` gives them on Linux (`MDB_MAXKEYSIZE=0`, `MDB_USE_ROBUST`). Those are what shape the
files: the data format and the lock format (`MDB_LOCK_FORMAT`: lock version 2, POSIX robust mutexes,
the sizes of the reader table's fields) then match bit for bit, so a TypeScript and a Python process
have one environment open at the same time and share its writer lock and reader table.

The library is built once per LMDB source and kept in `$XDG_CACHE_HOME/improv` (or
`~/.cache/improv`), named after the package version and a hash of the sources and flags. A build
goes to a temporary name and is renamed into place, so processes building at the same time each
produce a whole library and the last rename wins.

On top of the C API, `Environment` and `Transaction` are the thin wrapper `lmdb.py` needs: byte
keys and values (copies, or an address inside the map for a big value that is copied once),
`MDB_RESERVE` puts, and ordered ranges.
"""

import ctypes
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import threading

#: Sources and headers of liblmdb inside the `lmdb` npm package.
SOURCE_DIR = os.path.join("dependencies", "lmdb", "libraries", "liblmdb")
SOURCES = ("mdb.c", "midl.c", "chacha8.c")
HEADERS = ("lmdb.h", "midl.h", "chacha8.h")
#: improv's own C beside this file, built into the same library: a store's hot calls, each whole in
#: one crossing (`improv_lmdb.c`). Its text is part of the library's name, so a library built before
#: it (or from an older version of it) is never taken for one with it.
OWN_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "improv_lmdb.c")
#: Functions of `OWN_SOURCE` a loaded library must have; one without them is built again.
OWN_SYMBOLS = ("improv_get", "improv_record", "improv_delete_read", "improv_count_freed")
#: What lmdb-js's binding.gyp compiles LMDB with on Linux, minus what only concerns its C++ glue.
#: These defines decide the data and lock formats; the optimisation level does not.
CFLAGS = ("-O2", "-fPIC", "-shared", "-DMDB_MAXKEYSIZE=0", "-DMDB_USE_ROBUST")
#: On Linux the library binds its own calls to its own functions, so another LMDB in the process
#: (py-lmdb's, the system's liblmdb.so.0) can never stand in for them.
LIBS = ("-lpthread", "-Wl,-Bsymbolic") if sys.platform.startswith("linux") else ("-lpthread",)

# Flags and return codes of lmdb.h (lmdb-js's copy).
MDB_NOSUBDIR = 0x4000
MDB_NOSYNC = 0x10000
MDB_RDONLY = 0x20000
MDB_NOTLS = 0x200000
MDB_CREATE = 0x40000
MDB_RESERVE = 0x10000
MDB_SUCCESS = 0
MDB_NOTFOUND = -30798
MDB_MAP_RESIZED = -30785
#: lmdb-js's LMDB: a write transaction that changed nothing was ended (a success, as lmdb-js takes it).
MDB_EMPTY_TXN = -30774
# MDB_cursor_op
MDB_FIRST = 0
MDB_GET_CURRENT = 4
MDB_NEXT = 8
MDB_SET_RANGE = 17


class MDB_val(ctypes.Structure):
    """`MDB_val`: a size and an address."""

    _fields_ = [("mv_size", ctypes.c_size_t), ("mv_data", ctypes.c_void_p)]


class _In(ctypes.Structure):
    """An `MDB_val` that LMDB only reads (a key, a value to store), made from bytes: its address is the
    bytes' own buffer (no copy), and it keeps them alive. A quarter of the cost of casting a pointer
    into an `MDB_val`, and a Python actor's every store call passes several."""

    _fields_ = [("mv_size", ctypes.c_size_t), ("mv_data", ctypes.c_char_p)]


class GetContext(ctypes.Structure):
    """`struct improv_get_context` of improv_lmdb.c: what `improv_get` works with (lmdb.py sets it up)."""

    _fields_ = [
        ("txn", ctypes.c_void_p),
        ("path", ctypes.c_void_p),
        ("ino", ctypes.c_uint64),
        ("dev", ctypes.c_uint64),
        ("checked_at", ctypes.c_uint64),
        ("check_every", ctypes.c_uint64),
        ("seen", ctypes.c_uint64),
        ("session", ctypes.c_void_p),
        ("session_size", ctypes.c_size_t),
        ("out", ctypes.c_void_p),
        ("capacity", ctypes.c_size_t),
        ("meta", ctypes.c_uint),
        ("objects", ctypes.c_uint),
        ("values", ctypes.c_uint),
        ("dtype_codes", ctypes.c_int32),
        ("max_ndim", ctypes.c_int32),
    ]


#: `improv_get` copied the value (else the caller takes the step-by-step path).
IMPROV_OK = 0
#: `seen` of a GetContext before any snapshot was seen to have the session.
SEEN_NONE = 2**64 - 1
#: What `improv_get` writes before the value in `out`: INFO_FIELDS int64 (see improv_lmdb.c).
GET_INFO = struct.Struct("=10q")


_p = ctypes.c_void_p
_uint = ctypes.c_uint
_int = ctypes.c_int
#: `MDB_val *`: a `byref()` of an `MDB_val` (filled in by LMDB) or of an `_In`.
_pval = ctypes.c_void_p

#: Every function used, with its C signature: (name, restype, argtypes).
_SIGNATURES = (
    ("mdb_version", ctypes.c_char_p, [ctypes.POINTER(_int), ctypes.POINTER(_int), ctypes.POINTER(_int)]),
    ("mdb_strerror", ctypes.c_char_p, [_int]),
    ("mdb_env_create", _int, [ctypes.POINTER(_p)]),
    ("mdb_env_set_maxdbs", _int, [_p, _uint]),
    ("mdb_env_set_maxreaders", _int, [_p, _uint]),
    ("mdb_env_set_mapsize", _int, [_p, ctypes.c_size_t]),
    ("mdb_env_set_freespace_options", _int, [_p, _uint, _uint]),
    ("mdb_env_open", _int, [_p, ctypes.c_char_p, _uint, _uint]),
    ("mdb_env_close", None, [_p]),
    ("mdb_reader_check", _int, [_p, ctypes.POINTER(_int)]),
    ("mdb_txn_begin", _int, [_p, _p, _uint, ctypes.POINTER(_p)]),
    ("mdb_txn_commit", _int, [_p]),
    ("mdb_txn_abort", None, [_p]),
    ("mdb_txn_reset", None, [_p]),
    ("mdb_txn_renew", _int, [_p]),
    ("mdb_txn_id", ctypes.c_size_t, [_p]),
    ("mdb_dbi_open", _int, [_p, ctypes.c_char_p, _uint, ctypes.POINTER(_uint)]),
    ("mdb_get", _int, [_p, _uint, _pval, _pval]),
    ("mdb_put", _int, [_p, _uint, _pval, _pval, _uint]),
    ("mdb_del", _int, [_p, _uint, _pval, _pval]),
    ("mdb_cursor_open", _int, [_p, _uint, ctypes.POINTER(_p)]),
    ("mdb_cursor_close", None, [_p]),
    ("mdb_cursor_get", _int, [_p, _pval, _pval, _int]),
    # improv_lmdb.c: the context (a `GetContext`), the key and its length.
    ("improv_get", _int, [ctypes.POINTER(GetContext), ctypes.c_char_p, ctypes.c_size_t]),
    ("improv_record", _int, [ctypes.POINTER(GetContext), ctypes.c_char_p, ctypes.c_size_t]),
    # txn, objects, values, order, keys (joined), lengths (u32), sequences (u64), charged (f64), count,
    # freed (two f64: values, bytes)
    ("improv_delete_read", _int, [_p, _uint, _uint, _uint, ctypes.c_char_p, _p, _p, _p, ctypes.c_size_t, _p]),
    # txn, meta, values freed, bytes freed
    ("improv_count_freed", _int, [_p, _uint, ctypes.c_double, ctypes.c_double]),
)

_loaded = {}
_load_lock = threading.Lock()


class CompilerMissingError(RuntimeError):
    """No C compiler to build LMDB with."""


class LmdbError(Exception):
    """An LMDB call failed; `code` is its return code, the message LMDB's own (`mdb_strerror`)."""

    def __init__(self, message, code):
        super().__init__(message)
        self.code = code


def load(lmdb_package):
    """The LMDB of the `lmdb` npm package at `lmdb_package` (a folder) as a ctypes library, built if needed."""
    folder = os.path.abspath(lmdb_package)
    with _load_lock:
        library = _loaded.get(folder)
        if library is None:
            path = _build(folder)
            library = ctypes.CDLL(path)
            if not all(hasattr(library, name) for name in OWN_SYMBOLS):
                library = _rebuild(folder, path, library)
            for name, restype, argtypes in _SIGNATURES:
                function = getattr(library, name)
                function.restype = restype
                function.argtypes = argtypes
            _loaded[folder] = library
        return library


def _rebuild(package, path, library):
    """The library of `package` built again, when the cached one at `path` (loaded as `library`)
    lacks improv's functions: a file left under the name of this version's build by something else
    (a copy, a hand-made build). It is unloaded, removed and compiled again."""
    try:
        import _ctypes

        _ctypes.dlclose(library._handle)
        os.unlink(path)
    except (ImportError, AttributeError, OSError) as error:
        raise OSError(
            f"lmdb store: the LMDB library {path} lacks improv's functions ({', '.join(OWN_SYMBOLS)}) and could not "
            f"be replaced ({error}); delete it, and it is built again"
        ) from error
    library = ctypes.CDLL(_build(package))
    missing = [name for name in OWN_SYMBOLS if not hasattr(library, name)]
    if missing:
        raise OSError(
            f"lmdb store: the LMDB library built at {path} lacks {', '.join(missing)}; delete it and try again"
        )
    return library


def library_name(package):
    """The file name of the library built from `package`'s LMDB sources and improv's own: the lmdb
    package's version and a hash of every source, header and flag, so another build never has it."""
    sources = os.path.join(package, SOURCE_DIR)
    try:
        with open(os.path.join(package, "package.json"), encoding="utf-8") as file:
            version = str(json.load(file).get("version", "unknown"))
        digest = hashlib.sha256()
        for name in SOURCES + HEADERS:
            with open(os.path.join(sources, name), "rb") as file:
                digest.update(name.encode() + b"\0" + file.read() + b"\0")
    except (OSError, ValueError) as error:
        raise FileNotFoundError(
            f"lmdb store: cannot read the LMDB sources of the lmdb npm package at {package} ({error}); "
            "the store's descriptor names the package its run loaded (lmdbPackage): install the pipeline's "
            "node_modules on this machine"
        ) from error
    try:
        with open(OWN_SOURCE, "rb") as file:
            digest.update(b"improv_lmdb.c\0" + file.read() + b"\0")
    except OSError as error:
        raise FileNotFoundError(
            f"lmdb store: cannot read {OWN_SOURCE} ({error}), which improv_ts builds into its LMDB library: "
            "the improv_ts package is incomplete; install it again"
        ) from error
    digest.update(" ".join(CFLAGS + LIBS).encode())
    safe_version = "".join(c if c.isalnum() or c in ".-" else "_" for c in version)
    return f"liblmdb-{safe_version}-{digest.hexdigest()[:16]}.so"


def _build(package):
    """Path of the shared library of `package`'s LMDB sources and improv's own: from the cache, or
    compiled into it."""
    sources = os.path.join(package, SOURCE_DIR)
    name = library_name(package)
    for folder in _cache_folders():
        target = os.path.join(folder, name)
        if os.path.exists(target):
            return target
    compiler = _compiler()
    failures = []
    for folder in _cache_folders():
        try:
            os.makedirs(folder, exist_ok=True)
            descriptor, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
        except OSError as error:
            failures.append(f"{folder}: {error}")
            continue
        os.close(descriptor)
        try:
            command = [
                compiler,
                *CFLAGS,
                "-I",
                sources,
                "-o",
                temporary,
                *(os.path.join(sources, s) for s in SOURCES),
                OWN_SOURCE,
                *LIBS,
            ]
            result = subprocess.run(command, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                raise RuntimeError(
                    f"lmdb store: building LMDB from {sources} failed ({' '.join(command)}):\n{result.stderr.strip()}"
                )
            os.chmod(temporary, 0o755)
            os.replace(temporary, os.path.join(folder, name))
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
        return os.path.join(folder, name)
    raise OSError(f"lmdb store: no folder to keep the LMDB library in ({'; '.join(failures)})")


def _cache_folders():
    """Where built libraries go: the user's cache, then (when that is not writable) the temp folder."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    yield os.path.join(base, "improv")
    yield os.path.join(tempfile.gettempdir(), f"improv-{os.getuid()}")


def _compiler():
    for candidate in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if candidate and shutil.which(candidate):
            return candidate
    raise CompilerMissingError(
        "lmdb store: a Python actor opens the lmdb store with the LMDB that lmdb-js ships (data format 2, "
        "which the Python lmdb module cannot read), compiled once on this machine, and no C compiler "
        "(cc or gcc) was found. Install one (Debian/Ubuntu: sudo apt-get install gcc), or use store: redis"
    )


def check(lib, code):
    """Raises LmdbError unless `code` is MDB_SUCCESS."""
    if code != MDB_SUCCESS:
        raise LmdbError(lib.mdb_strerror(code).decode("utf-8", "replace"), code)


def _val(data):
    """An MDB_val over `data` (bytes: no copy), which LMDB may overwrite (a cursor's key); it keeps `data` alive."""
    return MDB_val.from_buffer(_In(len(data), data))


class Environment:
    """An LMDB environment (a folder with data.mdb and lock.mdb), opened as lmdb-js opens it."""

    def __init__(self, lib, path, *, map_size, max_dbs, max_readers=126, sync=False):
        self.lib = lib
        self.path = path
        handle = ctypes.c_void_p()
        check(lib, lib.mdb_env_create(ctypes.byref(handle)))
        self.handle = handle
        try:
            check(lib, lib.mdb_env_set_maxdbs(handle, max_dbs))
            check(lib, lib.mdb_env_set_maxreaders(handle, max_readers))
            check(lib, lib.mdb_env_set_mapsize(handle, map_size))
            # lmdb-js's defaults (runtime tuning of the free-page list, not part of the format).
            check(lib, lib.mdb_env_set_freespace_options(handle, 50000, 75000))
            # MDB_NOTLS as lmdb-js: read transactions are not tied to the thread that began them.
            flags = MDB_NOTLS | (0 if sync else MDB_NOSYNC)
            check(lib, lib.mdb_env_open(handle, os.fsencode(path), flags, 0o664))
        except BaseException:
            lib.mdb_env_close(handle)
            self.handle = None
            raise

    def begin(self, write):
        """A new transaction (write: the environment's one writer, waiting for the writer lock)."""
        txn = ctypes.c_void_p()
        flags = 0 if write else MDB_RDONLY
        code = self.lib.mdb_txn_begin(self.handle, None, flags, ctypes.byref(txn))
        if code == MDB_MAP_RESIZED:
            # Another process grew the map: adopt its size and try again.
            check(self.lib, self.lib.mdb_env_set_mapsize(self.handle, 0))
            code = self.lib.mdb_txn_begin(self.handle, None, flags, ctypes.byref(txn))
        check(self.lib, code)
        return Transaction(self.lib, txn)

    def open_db(self, name, create):
        """The handle of the named database `name`, opened (or created) in a write transaction of its own."""
        txn = self.begin(write=True)
        try:
            dbi = _uint()
            flags = MDB_CREATE if create else 0
            check(self.lib, self.lib.mdb_dbi_open(txn.handle, name.encode(), flags, ctypes.byref(dbi)))
            txn.commit()
        except BaseException:
            txn.abort()
            raise
        return dbi.value

    def reader_check(self):
        """Clears reader slots of processes that died."""
        dead = _int()
        self.lib.mdb_reader_check(self.handle, ctypes.byref(dead))

    def close(self):
        if self.handle is not None:
            self.lib.mdb_env_close(self.handle)
            self.handle = None


class Transaction:
    """An LMDB transaction; keys and values are bytes."""

    def __init__(self, lib, handle):
        self.lib = lib
        self.handle = handle

    def commit(self):
        handle, self.handle = self.handle, None
        code = self.lib.mdb_txn_commit(handle)
        if code != MDB_EMPTY_TXN:
            check(self.lib, code)

    def abort(self):
        if self.handle is not None:
            self.lib.mdb_txn_abort(self.handle)
            self.handle = None

    def reset(self):
        """Ends a read transaction's snapshot, keeping its reader slot for `renew`."""
        self.lib.mdb_txn_reset(self.handle)

    def renew(self):
        """Starts a reset read transaction again on the latest committed state."""
        check(self.lib, self.lib.mdb_txn_renew(self.handle))

    def id(self):
        """The transaction's id: for a read transaction, that of the last write committed before it began."""
        return self.lib.mdb_txn_id(self.handle)

    def locate(self, dbi, key):
        """(address, size) of the value under `key` inside the map, or None: valid until the transaction
        ends or writes."""
        data = MDB_val()
        code = self.lib.mdb_get(self.handle, dbi, ctypes.byref(_In(len(key), key)), ctypes.byref(data))
        if code == MDB_NOTFOUND:
            return None
        check(self.lib, code)
        return data.mv_data or 0, data.mv_size

    def get(self, dbi, key):
        """A copy of the value under `key`, or None."""
        found = self.locate(dbi, key)
        return None if found is None else ctypes.string_at(found[0], found[1])

    def put(self, dbi, key, value):
        key_val, value_val = _In(len(key), key), _In(len(value), value)
        check(self.lib, self.lib.mdb_put(self.handle, dbi, ctypes.byref(key_val), ctypes.byref(value_val), 0))

    def reserve(self, dbi, key, size):
        """Makes room for a value of `size` bytes under `key`; returns its address, to be filled before the commit."""
        data = MDB_val(size, None)
        key_val = _In(len(key), key)
        check(self.lib, self.lib.mdb_put(self.handle, dbi, ctypes.byref(key_val), ctypes.byref(data), MDB_RESERVE))
        return data.mv_data

    def delete(self, dbi, key):
        """Removes `key`; whether it was there."""
        code = self.lib.mdb_del(self.handle, dbi, ctypes.byref(_In(len(key), key)), None)
        if code == MDB_NOTFOUND:
            return False
        check(self.lib, code)
        return True

    def range(self, dbi, start=None, end=None):
        """(key, value) copies in key order from `start` (inclusive) to `end` (exclusive)."""
        cursor = ctypes.c_void_p()
        check(self.lib, self.lib.mdb_cursor_open(self.handle, dbi, ctypes.byref(cursor)))
        try:
            key = MDB_val() if start is None else _val(start)
            data = MDB_val()
            op = MDB_FIRST if start is None else MDB_SET_RANGE
            while True:
                code = self.lib.mdb_cursor_get(cursor, ctypes.byref(key), ctypes.byref(data), op)
                if code == MDB_NOTFOUND:
                    return
                check(self.lib, code)
                found = ctypes.string_at(key.mv_data, key.mv_size)
                if end is not None and found >= end:
                    return
                yield found, ctypes.string_at(data.mv_data, data.mv_size) if data.mv_size else b""
                op = MDB_NEXT
        finally:
            self.lib.mdb_cursor_close(cursor)
