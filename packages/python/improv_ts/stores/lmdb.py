"""The pipeline's `lmdb` store from Python: a client beside the TypeScript ones, in the same environment.

A Python actor gets the store's descriptor (what `@improv/store/lmdb`'s `open()` returned) and
`connect(descriptor)` gives it a client that reads and writes the very layout the TypeScript driver
does (`packages/store/docs/lmdb.md`, "On-disk layout (version 1)"), with the same transactions, so
TypeScript and Python clients share one store at the same time: keys `<prefix><client>.<n>` from the
store's `nextClient` counter, holds in the `holds` database, TTLs, `store_eviction: oldest`,
messages in flight (`track`), tombstones, and the f64 counters that `usage()` reads. Each method
below is the TypeScript client's (`packages/store/src/lmdb.ts`, class `LmdbClient`) step for step.

numpy arrays are stored raw with their dtype code and shape and come back as arrays of that dtype
and shape (copies: the map's pages are reused once a transaction ends); any other value goes through
msgpack with improv's extension types (`improv_ts._codec`).

LMDB itself is lmdb-js's, compiled once on this machine (`_liblmdb.py` says why and how): the
descriptor's `lmdbPackage` names the `lmdb` npm package whose sources are built.

```python
from improv_ts.stores.lmdb import connect

store = connect(descriptor)
key = store.put(np.zeros((512, 512), np.float32))
frame = store.get(key)            # float32, shape (512, 512); held until release()
store.release(key)
store.close()
```

An actor host's client batches its deletes (`connect(descriptor, batch_deletes=True)`): `delete()`
stages the key (this client sees it gone at once) and one write transaction later commits many. A
write transaction is most of what a small value's delete costs, and the TypeScript writers wait for
the same lock. The host commits what is staged ~2 ms after the oldest delete at the latest, before
any message leaves the actor, and when it stops; the client commits at once when 256 deletes or
1 MiB of values are staged, in any write of its own, and in `usage()` and `close()`.
"""

import array
import contextlib
import ctypes
import json
import math
import os
import re
import struct
import threading
import time

import numpy as np

from .. import _codec
from ..errors import ImprovError, StoreFullError, StoreUnavailableError
from . import _liblmdb
from ._common import MAX_DIMENSIONS, base36, check_shape, check_ttl, encode_value, format_bytes, js_number, object_not_found

DRIVER = "lmdb"

# ---- the layout (packages/store/src/_lmdb-format.ts) ---------------------------------------------

LAYOUT_VERSION = 1
LAYOUT_FORMAT = "improv-lmdb"
#: Named databases, by the attribute names of the TypeScript `DB`.
DATABASES = {
    "values": "values",
    "objects": "objects",
    "order": "order",
    "expiry": "expiry",
    "holds": "holds",
    "gone": "gone",
    "gone_order": "gone-order",
    "meta": "meta",
}
META_SESSION = b"session"
META_USED_BYTES = b"usedBytes"
META_OBJECTS = b"objects"
META_CAPACITY_BYTES = b"capacityBytes"
META_NEXT_CLIENT = b"nextClient"
META_NEXT_SEQUENCE = b"nextSequence"
META_NEXT_TOMBSTONE = b"nextTombstone"
META_TOMBSTONES = b"tombstones"

MAGIC = 0x56504D49  # "IMPV" as a little-endian u32
HEADER_FIXED_BYTES = 16
FLAG_UNWRITTEN = 1
INDEX_OVERHEAD_BYTES = 64
RECORD_READ = 1
RECORD_UNWRITTEN = 2
OBJECT_RECORD_BYTES = 48
GONE_EVICTED = 1
GONE_EXPIRED = 2
MAX_TOMBSTONES = 10_000

# ---- the driver's limits and defaults (packages/store/src/lmdb.ts, @improv/core) ----------------

MAX_DBS = 16
#: LMDB stores a value's length in 32 bits.
MAX_VALUE_BYTES = 0xFFFFFFFF - 4096
EVICTION_HIGH_WATER = 0.95
EVICTION_LOW_WATER = 0.85
#: A client that batches deletes commits them at once when this many are staged,
BATCH_MAX_DELETES = 256
#: or when the staged values hold this many bytes in all (a large value's delete is not held back).
BATCH_MAX_BYTES = 1 << 20
#: The one-call reads (improv_get) check that the store's files are still there at most this often
#: (ms), as the TypeScript client's reads; writes and the step-by-step reads, every time.
READ_FILES_CHECK_MS = 2

_F64 = struct.Struct("<d")
_HEADER = struct.Struct("<IBBBBQ")
_OBJECT_RECORD = struct.Struct("<6d")
#: The shape of a value header with N dimensions, by N.
_SHAPES = tuple(struct.Struct(f"<{ndim}Q") for ndim in range(MAX_DIMENSIONS + 1))
#: numpy's dtype of each dtype code (None: a msgpack value).
_NP_DTYPES = tuple(None if name is None else np.dtype(name) for name in _codec.DTYPES)
#: Values (header included) up to this size are read with one copy of the whole record, which the
#: array then lives in; a larger one is copied once, straight into an array of its own.
SMALL_VALUE_BYTES = 65536
_SORT_KEY = struct.Struct(">Q")
_SORT_KEY2 = struct.Struct(">QQ")
#: improv_get's info fields, before the value it copies (improv_lmdb.c).
_GET_INFO = _liblmdb.GET_INFO
_GET_INFO_BYTES = _GET_INFO.size
_IMPROV_OK = _liblmdb.IMPROV_OK
#: What improv_record fills in: the snapshot's transaction id, the record's sequence and charge.
_RECORD_INFO = struct.Struct("=3q")
#: _decode_fast: a read to leave to the step-by-step path.
_SLOW = object()


def connect(descriptor, *, batch_deletes=False):
    """A client of the lmdb store `descriptor` describes (the descriptor of `createLmdbStore().open()`, unchanged)."""
    if not isinstance(batch_deletes, bool):
        raise TypeError(
            f"lmdb store: connect(batch_deletes=...) takes True or False, not {batch_deletes!r}; True commits "
            "deletes in batches (as an actor's client does), False commits each delete as it is made"
        )
    d = descriptor if isinstance(descriptor, dict) else {}
    if (
        d.get("driver") != "lmdb"
        or not isinstance(d.get("path"), str)
        or not isinstance(d.get("keyPrefix"), str)
        or not isinstance(d.get("session"), str)
        or not _is_number(d.get("leaseMs"))
        or not _is_number(d.get("mapSize"))
    ):
        driver = d.get("driver") if isinstance(descriptor, dict) else type(descriptor).__name__
        raise TypeError(
            f'lmdb store: connect() got a descriptor of driver "{driver}" that is not an open lmdb store (it needs '
            "path, keyPrefix and session); pass the descriptor of createLmdbStore().open() unchanged"
        )
    path = d["path"]
    if not os.path.exists(os.path.join(path, "data.mdb")):
        raise StoreUnavailableError(
            f"lmdb store: there is no store at {path} (its run ended and removed it, or the folder was deleted)"
        )
    package = d.get("lmdbPackage")
    if not isinstance(package, str) or package == "":
        raise StoreUnavailableError(
            f"lmdb store: the descriptor of the store at {path} does not say where the lmdb npm package is "
            "(lmdbPackage), whose LMDB a Python actor must build to read the store; run the pipeline from a "
            "Node.js install of improv (not a bundle), or use store: redis"
        )
    try:
        lib = _liblmdb.load(package)
    except (OSError, RuntimeError) as error:
        raise StoreUnavailableError(str(error)) from error
    try:
        environment = _liblmdb.Environment(
            lib, path, map_size=int(d["mapSize"]), max_dbs=MAX_DBS, sync=d.get("sync") is True
        )
    except _liblmdb.LmdbError as error:
        raise StoreUnavailableError(f"lmdb store: cannot open the LMDB environment at {path}: {error}") from error
    try:
        return LmdbStoreClient(environment, d, batch_deletes=batch_deletes)
    except BaseException:
        environment.close()
        raise


class LmdbStoreClient:
    """A client of an lmdb store (from `connect`). One thread at a time uses it (calls are serialised)."""

    def __init__(self, environment, descriptor, *, batch_deletes=False):
        self._environment = environment
        self._path = descriptor["path"]
        self._key_prefix = descriptor["keyPrefix"]
        self._session = descriptor["session"]
        self._lease_ms = descriptor["leaseMs"]
        self._eviction = "oldest" if descriptor.get("eviction") == "oldest" else "none"
        #: Reads hold nothing unless the value has a TTL (no eviction): improv_get may do them.
        self._unheld_reads = self._eviction == "none"
        self._key_pattern = re.compile(f"{re.escape(self._key_prefix)}[0-9a-z]{{1,7}}\\.[0-9a-z]{{1,11}}")
        self._key_match = self._key_pattern.fullmatch
        self._data_file = os.path.join(self._path, "data.mdb")
        stat = os.stat(self._data_file)
        self._inode, self._device = stat.st_ino, stat.st_dev
        self._lock = threading.RLock()
        self._sequence = 0
        self._closed = False
        #: Keys this client has a hold entry for.
        self._held = set()
        self._read_txn = None
        #: (key, bytes charged) of the value this client last read without a hold.
        self._last_read = None
        #: Whether deletes are staged and committed together (the actor host asks for it).
        self.batches_deletes = batch_deletes
        #: Deletes staged, not committed yet (`batch_deletes`): key → its bytes, in the order made.
        self._staged = {}
        #: Of those, the ones whose record, value and order entry are all there is to remove (their
        #: sequence known): their keys, sequences and charges, as improv_delete_read takes them.
        self._staged_read = _StagedRead()
        #: The bytes the staged values hold, and when the oldest was staged (time.monotonic()).
        self._staged_bytes = 0
        self._staged_at = 0.0
        #: The session record last found to be this client's session (its raw bytes).
        self._session_record = None
        # The id of the last read transaction that found the session open: a snapshot of the same id
        # sees the same committed state, so it needs no second look.
        self._session_seen = None
        try:
            self._db = {attr: environment.open_db(name, create=True) for attr, name in DATABASES.items()}
        except _liblmdb.LmdbError as error:
            raise StoreUnavailableError(f"lmdb store: cannot open the store at {self._path}: {error}") from error
        environment.reader_check()
        self._setup_fast_calls()

        def next_client(txn):
            client = _read_number(txn, self._db["meta"], META_NEXT_CLIENT) + 1
            _write_number(txn, self._db["meta"], META_NEXT_CLIENT, client)
            return int(client)

        #: Id of this client in the store (its holds are recorded under it), unique among its clients.
        self.client_id = self._write("connectStore", next_client)

    #: As the TypeScript lmdb client: no owner id, for there is nothing to recover when a client's
    #: process dies (its transactions are all or nothing; its holds lapse after `leaseMs`).
    owner_id = None

    # ---- the store client -------------------------------------------------------------------------

    def put(self, value, *, shape=None, ttl_ms=None):
        """Stores `value` and returns its new key.

        A numpy array is stored raw with its dtype and shape (int8/16/32/64, uint8/16/32/64,
        float32/64; bool as uint8); `shape` gives a flat array its shape (the product must be its
        size). Any other value is stored as msgpack. `ttl_ms`: the value is freed that many
        milliseconds after the put unless a reader holds it.

        Raises `StoreFullError` when it does not fit (after eviction, with `store_eviction: oldest`),
        `TypeError` for a value that cannot be stored, `ValueError` for a shape that does not fit or
        a value over LMDB's 4 GiB.
        """
        with self._lock:
            self._assert_open()
            ttl_ms = check_ttl(DRIVER, "put()", ttl_ms)
            if isinstance(value, np.ndarray):
                code = _codec.dtype_code(value)
                dims = check_shape(DRIVER, "put()", value.shape if shape is None else shape, value.size)
                # Flat first: memoryview cannot cast an array with a 0 in a multi-dimensional shape.
                payload = _codec.array_bytes(value.reshape(-1))
            else:
                if shape is not None:
                    raise TypeError(
                        f"lmdb store: put() got a shape for a value of type {type(value).__name__}; shapes describe "
                        "numpy arrays only. Drop the shape, or store a numpy array"
                    )
                code, dims, payload = 0, [], encode_value(DRIVER, value)
            byte_length = len(payload)
            _check_value_size(byte_length, len(dims))
            header = _write_header(code, dims, byte_length, 0)
            key = self._new_key()
            key_bytes = key.encode()
            full = self._write("put()", lambda txn: self._insert(txn, key_bytes, header, payload, ttl_ms, 0))
            if full is not None:
                raise StoreFullError(_describe_full(full))
            return key

    def get(self, key):
        """The value under `key`: a numpy array with its dtype and shape (a writable copy of its own), or
        the decoded msgpack value. Where eviction (`store_eviction: oldest`) or the value's TTL could free
        it, holds it for this client (they leave it alone) until `release()` or the end of its lease (the
        descriptor's `leaseMs`), like the TypeScript `get`; otherwise only a delete frees it, and the read
        writes nothing.
        Raises `ObjectNotFoundError` (saying evicted, expired, unknown, or another store's key).
        """
        with self._lock:
            if self._closed:
                self._assert_open()
            if type(key) is not str:
                _check_key_type(key)
            # Most reads: in one call into C (improv_get), where nothing can free the value behind its
            # reader's back (see below); a key it finds is one of this store's. Anything it leaves goes
            # the steps below. Staged keys (all of them this store's) first: they are still there.
            if self._unheld_reads and self._read_txn is not None and key.isascii() and key not in self._staged:
                key_bytes = key.encode()
                if self._improv_get(self._get_context_ref, key_bytes, len(key_bytes)) == _IMPROV_OK:
                    value = self._decode_fast(key, key_bytes)
                    if value is not _SLOW:
                        return value
            if self._key_match(key) is None:
                raise object_not_found(DRIVER, key, "foreign")
            if key in self._staged:
                raise object_not_found(DRIVER, key, "deleted")
            key_bytes = key.encode()
            # A hold and the "read" mark only matter to what can free a value behind its reader's back:
            # eviction, and the TTL of a value that has one. Without both, a read is read-only.
            unheld = None
            if self._eviction == "none":
                unheld = self._snapshot(lambda txn: self._read_unheld(txn, key, key_bytes))
            result = unheld if unheld is not None else self._write("get()", lambda txn: self._read(txn, key, key_bytes))
            if "missing" in result:
                raise object_not_found(DRIVER, key, result["missing"])
            if unheld is None:
                self._held.add(key)
            return result["value"]

    def info(self, key):
        """What is under `key`, without reading or holding it: `{"dtype": kind name (e.g. "float32") or None
        for a msgpack value, "shape": list (None for a msgpack value), "bytes": payload bytes}`."""
        with self._lock:
            self._assert_open()
            _check_key_type(key)
            if key in self._staged:
                raise object_not_found(DRIVER, key, "deleted")
            found = self._snapshot(lambda txn: self._lookup(txn, key, _now()))
            if "missing" in found:
                raise object_not_found(DRIVER, key, found["missing"])
            code, dims, byte_length = found["record"]["header"][:3]
            if code == 0:
                return {"dtype": None, "shape": None, "bytes": byte_length}
            return {"dtype": _codec.KINDS[code], "shape": list(dims), "bytes": byte_length}

    def has(self, key):
        """Whether `key` holds a value now (not deleted, evicted or expired)."""
        with self._lock:
            self._assert_open()
            _check_key_type(key)
            if not self.is_key(key) or key in self._staged:
                return False
            found = self._snapshot(lambda txn: self._lookup(txn, key, _now()))
            return "missing" not in found

    def delete(self, key):
        """Frees the value under `key` now, held or not; whether there was one. A client that batches
        deletes stages it: gone for this client at once, for the others once committed (`flush()`)."""
        with self._lock:
            last = self._last_read
            if last is not None and last[0] == key and type(key) is str and self.batches_deletes and not self._closed:
                # The key this client just read (so one of this store's, not staged): staged with
                # what the read kept, without another look (see _stage_delete).
                self._held.discard(key)
                return self._stage(key, last[3], last[2], last[1])
            self._assert_open()
            _check_key_type(key)
            if not self.is_key(key) or key in self._staged:
                return False
            self._held.discard(key)
            key_bytes = key.encode()
            if self.batches_deletes:
                return self._stage_delete(key, key_bytes)

            def delete(txn):
                raw = txn.get(self._db["objects"], key_bytes)
                if raw is None:
                    return False
                self._free(txn, key_bytes, _decode_object_record(raw, key), 0)
                return True

            return self._write("delete()", delete)

    def flush(self):
        """Commits the deletes this client has staged (`batch_deletes`), in one write transaction."""
        if not self._staged:
            return
        with self._lock:
            if self._staged and not self._closed:
                self._write("delete()", lambda txn: None)

    def staged_for(self):
        """How long (seconds) the oldest staged delete has waited for its commit; None when none waits."""
        return time.monotonic() - self._staged_at if self._staged else None

    def is_key(self, key):
        """Whether `key` is a key of this store (its prefix and form), whether or not it still holds a value."""
        return isinstance(key, str) and self._key_pattern.fullmatch(key) is not None

    def release(self, key=None):
        """Ends this client's hold on `key` (None: on every key it holds)."""
        if key is None and not self._held and not self._closed:
            return
        with self._lock:
            self._assert_open()
            holds = self._db["holds"]
            if key is not None:
                _check_key_type(key)
                if key not in self._held:
                    return
                self._write("release()", lambda txn: txn.delete(holds, _hold_key(key.encode(), self.client_id)))
                self._held.discard(key)
                return
            if not self._held:
                return
            keys = list(self._held)

            def release(txn):
                for held in keys:
                    txn.delete(holds, _hold_key(held.encode(), self.client_id))

            self._write("release()", release)
            self._held.difference_update(keys)

    def track(self, keys, delta):
        """Adds `delta` to the count of messages in flight (waiting in links) of each of this store's `keys`."""
        with self._lock:
            self._assert_open()
            if isinstance(delta, bool) or not isinstance(delta, (int, np.integer)):
                raise TypeError(f"lmdb store: track() needs an integer delta, got {delta!r}")
            delta = int(delta)
            if abs(delta) > 2**53 - 1:
                raise ValueError(f"lmdb store: track() needs a delta within ±(2^53 - 1), got {delta}")
            ours = [key for key in keys if self.is_key(key)]
            if not ours or delta == 0:
                return
            objects = self._db["objects"]

            def track(txn):
                for key in ours:
                    key_bytes = key.encode()
                    raw = txn.get(objects, key_bytes)
                    if raw is None:
                        continue
                    record = bytearray(raw)
                    in_flight = _F64.unpack_from(record, 24)[0]
                    _F64.pack_into(record, 24, max(0, in_flight + delta))
                    txn.put(objects, key_bytes, bytes(record))

            self._write("track()", track)

    def usage(self):
        """`{"used_bytes", "capacity_bytes", "objects"}` of the whole store, as the TypeScript `usage()`
        (`usedBytes`: payload + value header + 64 bytes of index per value)."""
        with self._lock:
            self._assert_open()
            self.flush()
            meta = self._db["meta"]

            def usage(txn):
                return {
                    "used_bytes": int(_read_number(txn, meta, META_USED_BYTES)),
                    "capacity_bytes": int(_read_number(txn, meta, META_CAPACITY_BYTES)),
                    "objects": int(_read_number(txn, meta, META_OBJECTS)),
                }

            return self._snapshot(usage)

    def close(self):
        """Ends this client's holds and closes its handle on the environment (the store stays)."""
        with self._lock:
            if self._closed:
                return
            try:
                self.flush()
                self.release()
            except Exception:
                pass  # The store may be gone already; what is left lapses with the lease.
            self._closed = True
            if self._read_txn is not None:
                self._get_context.txn = None
                self._read_txn.abort()
                self._read_txn = None
            self._environment.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __repr__(self):
        return f"<LmdbStoreClient {self._path} client {self.client_id}{' closed' if self._closed else ''}>"

    # ---- internals --------------------------------------------------------------------------------

    def _new_key(self):
        self._sequence += 1
        return f"{self._key_prefix}{base36(self.client_id)}.{base36(self._sequence)}"

    def _hold_until(self):
        return _F64.pack(_now() + self._lease_ms)

    def _assert_open(self):
        if self._closed:
            raise StoreUnavailableError(
                f"lmdb store: this client of the store at {self._path} was closed; connect a new one with "
                "connect_store(descriptor)"
            )

    def _assert_files(self):
        """The store's files are still the ones this client opened."""
        try:
            stat = os.stat(self._data_file)
        except OSError:
            raise StoreUnavailableError(
                f"lmdb store: the store at {self._path} is gone (its files were removed: its run ended, or someone "
                "deleted them)"
            ) from None
        if stat.st_ino != self._inode or stat.st_dev != self._device:
            raise StoreUnavailableError(
                f"lmdb store: the store at {self._path} was removed and another one created in its place; this "
                "client belongs to the old one"
            )

    def _assert_session(self, txn):
        raw = txn.get(self._db["meta"], META_SESSION)
        if raw is not None and raw == self._session_record:
            return
        session = None
        if raw is not None:
            try:
                session = json.loads(raw.decode("utf-8"))
            except ValueError:
                session = None
        if not isinstance(session, dict) or session.get("id") != self._session:
            raise StoreUnavailableError(
                f"lmdb store: the store at {self._path} was closed (the run that opened it ended); this client can "
                "no longer use it"
            )
        # Later calls compare the record's bytes with these before they parse anything (improv_get too).
        self._session_record = raw
        self._session_buffer = ctypes.create_string_buffer(raw, len(raw))
        self._get_context.session = ctypes.addressof(self._session_buffer)
        self._get_context.session_size = len(raw)

    def _write(self, what, body):
        """Runs `body(txn)` in a write transaction (all or nothing: an exception aborts it)."""
        self._assert_open()
        self._assert_files()
        try:
            txn = self._environment.begin(write=True)
            staged = self._staged
            try:
                self._assert_session(txn)
                if staged:
                    self._commit_staged(txn)
                result = body(txn)
            except BaseException:
                txn.abort()
                raise
            txn.commit()
            if staged:
                self._staged = {}
                self._staged_read = _StagedRead()
                self._staged_bytes = 0
            return result
        except Exception as error:
            translated = self._translate(error, what)
            if translated is error:
                raise
            raise translated from error

    def _snapshot(self, body):
        """Runs `body(txn)` on the latest committed state, read-only."""
        self._assert_open()
        self._assert_files()
        try:
            if self._read_txn is None:
                self._read_txn = self._environment.begin(write=False)
                self._get_context.txn = self._read_txn.handle.value
            else:
                self._read_txn.renew()
            try:
                seen = self._read_txn.id()
                if seen != self._session_seen:
                    self._assert_session(self._read_txn)
                    self._session_seen = seen
                    self._get_context.seen = seen
                return body(self._read_txn)
            finally:
                self._read_txn.reset()
        except Exception as error:
            translated = self._translate(error, "read")
            if translated is error:
                raise
            raise translated from error

    def _translate(self, error, what):
        if isinstance(error, (ImprovError, TypeError, ValueError)):
            return error
        message = str(error)
        if re.search("closed", message, re.IGNORECASE):
            return StoreUnavailableError(f"lmdb store: {what} failed: the store at {self._path} is closed ({message})")
        if re.search("ENOSPC|No space left", message, re.IGNORECASE):
            return StoreFullError(
                f"lmdb store: {what} failed: the disk of {self._path} is full ({message}). Free disk space or lower "
                "settings.store_size"
            )
        return StoreUnavailableError(f"lmdb store: {what} failed on the store at {self._path}: {message}")

    def _lookup(self, txn, key, now):
        """{"record": ...} or {"missing": reason} (inside a transaction or snapshot)."""
        if not self.is_key(key):
            return {"missing": "foreign"}
        key_bytes = key.encode()
        raw = txn.get(self._db["objects"], key_bytes)
        if raw is None:
            return {"missing": self._gone_reason(txn, key_bytes)}
        record = _decode_object_record(raw, f'key "{key}"')
        if 0 < record["expires_at"] <= now and not self._held_by_me(txn, key_bytes, now):
            return {"missing": "expired"}
        return {"record": record}

    def _gone_reason(self, txn, key_bytes):
        tombstone = txn.get(self._db["gone"], key_bytes)
        if not tombstone:
            return "unknown"
        return {GONE_EVICTED: "evicted", GONE_EXPIRED: "expired"}.get(tombstone[0], "unknown")

    def _held_by_me(self, txn, key_bytes, now):
        hold = txn.get(self._db["holds"], _hold_key(key_bytes, self.client_id))
        return hold is not None and len(hold) == 8 and _F64.unpack(hold)[0] > now

    def _held_by_anyone(self, txn, key_bytes, now):
        """Whether any client holds the key (a hold not past its lease)."""
        start, end = _hold_range(key_bytes)
        with contextlib.closing(txn.range(self._db["holds"], start, end)) as holds:
            for _, value in holds:
                if len(value) == 8 and _F64.unpack(value)[0] > now:
                    return True
        return False

    def _read_unheld(self, txn, key, key_bytes):
        """get() without a hold (inside a snapshot), or None when the value has a TTL."""
        raw = txn.get(self._db["objects"], key_bytes)
        if raw is None:
            return {"missing": self._gone_reason(txn, key_bytes)}
        sequence, charged, expires_at, _, flags, _ = _object_record_fields(raw, f'key "{key}"')
        if expires_at > 0:
            return None
        value = self._read_value(txn, key, key_bytes)
        # A delete of this key that follows needs no second look (see _stage_delete), unless the value
        # is still unwritten (its holds go with it).
        self._last_read = (key, int(charged), None if int(flags) & RECORD_UNWRITTEN else int(sequence), key_bytes)
        return {"value": value}

    def _setup_fast_calls(self):
        """The context of `improv_get` (improv_lmdb.c): this client's read transaction, files, session and
        databases, and the buffer it copies a value to (after its info fields)."""
        lib = self._environment.lib
        self._improv_get = lib.improv_get
        self._improv_record = lib.improv_record
        self._path_buffer = ctypes.create_string_buffer(os.fsencode(self._data_file))
        self._scratch = bytearray(_GET_INFO.size + SMALL_VALUE_BYTES)
        self._scratch_c = (ctypes.c_char * len(self._scratch)).from_buffer(self._scratch)
        self._session_buffer = None
        db = self._db
        self._get_context = _liblmdb.GetContext(
            txn=None,
            path=ctypes.addressof(self._path_buffer),
            ino=self._inode,
            dev=self._device,
            checked_at=0,
            check_every=READ_FILES_CHECK_MS * 1_000_000,
            seen=_liblmdb.SEEN_NONE,
            session=None,
            session_size=0,
            out=ctypes.addressof(self._scratch_c),
            capacity=SMALL_VALUE_BYTES,
            meta=db["meta"],
            objects=db["objects"],
            values=db["values"],
            dtype_codes=len(_codec.DTYPES),
            max_ndim=MAX_DIMENSIONS,
        )
        self._get_context_ref = ctypes.byref(self._get_context)

    def _decode_fast(self, key, key_bytes):
        """The value `improv_get` (improv_lmdb.c) found and copied, as `_read_unheld` returns it; or _SLOW
        where it is one to leave to that path (which finds the same and words the error)."""
        scratch = self._scratch
        txn_id, sequence, charged, code, ndim, _, byte_length, start, _, dim0 = _GET_INFO.unpack_from(scratch)
        if txn_id != self._session_seen:
            self._session_seen = txn_id
            self._get_context.seen = txn_id
        start += _GET_INFO_BYTES
        try:
            if code == 0:
                value = _codec.unpackb(scratch[start : start + byte_length])
            else:
                dtype = _NP_DTYPES[code]
                count, rest = divmod(byte_length, dtype.itemsize)
                if rest != 0:
                    return _SLOW
                value = np.frombuffer(scratch[start : start + byte_length], dtype) if count > 0 else np.empty(0, dtype)
                if ndim != 1 or dim0 != count:
                    value = value.reshape(_SHAPES[ndim].unpack_from(scratch, _GET_INFO_BYTES + HEADER_FIXED_BYTES))
        except Exception:
            return _SLOW
        self._last_read = (key, charged, sequence, key_bytes)
        return value

    def _read_value(self, txn, key, key_bytes):
        """The value under a key whose object record exists (inside a transaction or snapshot)."""
        found = txn.locate(self._db["values"], key_bytes)
        if found is None:
            raise RuntimeError(f'lmdb store: key "{key}" has an object record but no value')
        return _decode_value(found[0], found[1], key)

    def _read(self, txn, key, key_bytes):
        """The body of get(): reads, marks read and holds (inside the write transaction)."""
        now = _now()
        objects, holds = self._db["objects"], self._db["holds"]
        raw = txn.get(objects, key_bytes)
        if raw is None:
            return {"missing": self._gone_reason(txn, key_bytes)}
        record = _decode_object_record(raw, f'key "{key}"')
        if 0 < record["expires_at"] <= now and not self._held_by_me(txn, key_bytes, now):
            # Past its TTL: freed now unless some reader still holds it; unreadable either way.
            if not self._held_by_anyone(txn, key_bytes, now):
                self._free(txn, key_bytes, record, GONE_EXPIRED)
            return {"missing": "expired"}
        value = self._read_value(txn, key, key_bytes)
        if (int(record["flags"]) & RECORD_READ) == 0:
            updated = bytearray(raw)
            _F64.pack_into(updated, 32, int(record["flags"]) | RECORD_READ)
            txn.put(objects, key_bytes, bytes(updated))
        txn.put(holds, _hold_key(key_bytes, self.client_id), self._hold_until())
        return {"value": value}

    def _insert(self, txn, key_bytes, header, payload, ttl_ms, flags):
        """Stores a new value (inside a write transaction): frees expired values and, with eviction, old
        read ones when it would not fit. Returns a report instead when it does not fit."""
        db = self._db
        meta, values, objects, order, expiry = db["meta"], db["values"], db["objects"], db["order"], db["expiry"]
        now = _now()
        byte_length = len(payload)
        charged = len(header) + byte_length + INDEX_OVERHEAD_BYTES
        capacity = _read_number(txn, meta, META_CAPACITY_BYTES)
        used = _read_number(txn, meta, META_USED_BYTES)
        if used + charged > capacity:
            used = self._reap(txn, now, math.inf)[1]
        if self._eviction == "oldest" and used + charged > capacity * EVICTION_HIGH_WATER:
            report = self._evict(txn, now, charged, capacity, byte_length)
            if report is not None:
                return report
            used = _read_number(txn, meta, META_USED_BYTES)
        if used + charged > capacity:
            return _full_report(charged, byte_length, used, capacity, self._eviction)
        sequence = _read_number(txn, meta, META_NEXT_SEQUENCE) + 1
        _write_number(txn, meta, META_NEXT_SEQUENCE, sequence)
        expires_at = 0 if ttl_ms is None else math.ceil(now + ttl_ms)
        # The record goes straight into the map: header, then the payload (one copy of a big array).
        address = txn.reserve(values, key_bytes, len(header) + byte_length)
        ctypes.memmove(address, header, len(header))
        if byte_length > 0:
            ctypes.memmove(address + len(header), _address_of(payload), byte_length)
        fixed = _OBJECT_RECORD.pack(sequence, charged, expires_at, 0, flags, now)
        txn.put(objects, key_bytes, fixed + header)
        txn.put(order, _SORT_KEY.pack(int(sequence)), key_bytes)
        if expires_at > 0:
            txn.put(expiry, _SORT_KEY2.pack(int(expires_at), int(sequence)), key_bytes)
        _write_number(txn, meta, META_USED_BYTES, used + charged)
        _write_number(txn, meta, META_OBJECTS, _read_number(txn, meta, META_OBJECTS) + 1)
        return None

    def _evict(self, txn, now, charged, capacity, value_bytes):
        """Frees the oldest values that were read, are not held, have no message waiting in a link and are
        written, until the new value fits below the low-water mark. Frees nothing, and returns a report,
        when even all of them would not make it fit."""
        meta, objects = self._db["meta"], self._db["objects"]
        used = _read_number(txn, meta, META_USED_BYTES)
        target = capacity * EVICTION_LOW_WATER
        counts = {"held": 0, "unread": 0, "in_flight": 0, "unwritten": 0}
        victims = []
        freeable = 0
        with contextlib.closing(txn.range(self._db["order"])) as order:
            for _, key_bytes in order:
                if used - freeable + charged <= target:
                    break
                raw = txn.get(objects, key_bytes)
                if raw is None:
                    continue
                record = _decode_object_record(raw, "eviction")
                flags = int(record["flags"])
                if flags & RECORD_UNWRITTEN:
                    counts["unwritten"] += 1
                elif not flags & RECORD_READ:
                    counts["unread"] += 1
                elif record["in_flight"] > 0:
                    counts["in_flight"] += 1
                elif self._held_by_anyone(txn, key_bytes, now):
                    counts["held"] += 1
                else:
                    victims.append((key_bytes, record))
                    freeable += record["charged"]
        if used - freeable + charged > capacity:
            return _full_report(charged, value_bytes, used, capacity, "oldest", **counts)
        for key_bytes, record in victims:
            self._free(txn, key_bytes, record, GONE_EVICTED)
        return None

    def _reap(self, txn, now, limit):
        """Frees expired values nobody holds (inside a write transaction); (freed, used bytes)."""
        objects = self._db["objects"]
        due = []
        with contextlib.closing(txn.range(self._db["expiry"], None, _SORT_KEY.pack(int(now) + 1))) as expiring:
            for sort_key, key_bytes in expiring:
                if len(due) >= limit:
                    break
                if _read_sort_key(sort_key) > now:
                    break
                raw = txn.get(objects, key_bytes)
                if raw is None:
                    continue
                if self._held_by_anyone(txn, key_bytes, now):
                    continue
                due.append((key_bytes, _decode_object_record(raw, "reaper")))
        for key_bytes, record in due:
            self._free(txn, key_bytes, record, GONE_EXPIRED)
        return len(due), _read_number(txn, self._db["meta"], META_USED_BYTES)

    def _stage_delete(self, key, key_bytes):
        """delete() of a client that batches deletes: stages `key` if it holds a value now (or held
        it when this client last read it: a sink deletes what it just read, without another look).
        Where nothing else is there to remove (no TTL, no eviction, written), the record's sequence is
        kept for the commit, as for a key just read."""
        last = self._last_read
        sequence = None
        if last is not None and last[0] == key:
            _, charged, sequence, _ = last
        elif (
            self._unheld_reads
            and self._read_txn is not None
            and self._improv_record(self._get_context_ref, key_bytes, len(key_bytes)) == _IMPROV_OK
        ):
            # No TTL, no eviction, written (improv_record, improv_lmdb.c): as for a key just read, the
            # record, value and order entry are all there is to remove.
            txn_id, sequence, charged = _RECORD_INFO.unpack_from(self._scratch)
            if txn_id != self._session_seen:
                self._session_seen = txn_id
                self._get_context.seen = txn_id
        else:
            raw = self._snapshot(lambda txn: txn.get(self._db["objects"], key_bytes))
            if raw is None:
                return False
            charged = int(_decode_object_record(raw, f'key "{key}"')["charged"])
        return self._stage(key, key_bytes, sequence, charged)

    def _stage(self, key, key_bytes, sequence, charged):
        """Stages the delete of `key` (`sequence`: the record's, when its record, value and order entry are
        all there is to remove, else None); commits what is staged when the batch is full."""
        self._last_read = None
        staged = self._staged
        if not staged:
            self._staged_at = time.monotonic()
        staged[key] = (key_bytes, sequence, charged)
        if sequence is not None:
            read = self._staged_read
            read.keys.append(key_bytes)
            read.sequences.append(sequence)
            read.charged.append(charged)
        self._staged_bytes += charged
        if len(staged) >= BATCH_MAX_DELETES or self._staged_bytes >= BATCH_MAX_BYTES:
            self._write("delete()", lambda txn: None)
        return True

    def _commit_staged(self, txn):
        """Frees every staged value still there (inside a write transaction; another client may have
        deleted one meanwhile).

        A value this client read just before it deleted it (a sink's get and delete), or whose record
        the delete found with no TTL, no eviction and written: its object record, value and order
        entry are all there is to remove, and the record's sequence and charge were kept at staging.
        Removing the record is then also the look whether it is still there. Any other staged key is
        looked up first.
        """
        db = self._db
        objects = db["objects"]
        freed = [0, 0]
        read = self._staged_read
        if len(read.keys) < len(self._staged):
            for key, (key_bytes, sequence, _) in self._staged.items():
                if sequence is not None:
                    continue
                raw = txn.get(objects, key_bytes)
                if raw is not None:
                    self._free(txn, key_bytes, _decode_object_record(raw, f'key "{key}"'), 0, freed)
        if read.keys:
            # All of them in one call (improv_lmdb.c): per key, the record, the value, the order entry;
            # the keys, sequences and charges go as they were gathered at staging, no loop over them here.
            lengths = array.array("I", map(len, read.keys))
            # What it freed: values, bytes (f64 each, as the meta counters).
            counted = (ctypes.c_double * 2)()
            lib = self._environment.lib
            _liblmdb.check(
                lib,
                lib.improv_delete_read(
                    txn.handle,
                    objects,
                    db["values"],
                    db["order"],
                    b"".join(read.keys),
                    lengths.buffer_info()[0],
                    read.sequences.buffer_info()[0],
                    read.charged.buffer_info()[0],
                    len(read.keys),
                    counted,
                ),
            )
            freed[0] += int(counted[0])
            freed[1] += int(counted[1])
        if freed[0] > 0:
            self._count_freed(txn, *freed)

    def _free(self, txn, key_bytes, record, reason, freed=None):
        """Removes a value and everything about it (inside a write transaction); `reason` 0: no tombstone.
        With `freed` ([values, bytes]), the meta counters are left to the caller, which frees many."""
        db = self._db
        txn.delete(db["values"], key_bytes)
        txn.delete(db["objects"], key_bytes)
        txn.delete(db["order"], _SORT_KEY.pack(int(record["sequence"])))
        if record["expires_at"] > 0:
            txn.delete(db["expiry"], _SORT_KEY2.pack(int(record["expires_at"]), int(record["sequence"])))
        # Holds exist only where eviction or a TTL could free the value, or while it is unwritten.
        if self._eviction != "none" or record["expires_at"] > 0 or int(record["flags"]) & RECORD_UNWRITTEN:
            start, end = _hold_range(key_bytes)
            with contextlib.closing(txn.range(db["holds"], start, end)) as holds:
                stale = [hold for hold, _ in holds]
            for hold in stale:
                txn.delete(db["holds"], hold)
        if freed is None:
            self._count_freed(txn, 1, record["charged"])
        else:
            freed[0] += 1
            freed[1] += record["charged"]
        if reason != 0:
            self._tombstone(txn, key_bytes, reason)

    def _count_freed(self, txn, values, charged):
        """The meta counters usedBytes and objects go down by what was freed (never below 0), in one call
        into C (improv_count_freed, improv_lmdb.c): four ctypes calls and their packing in Python cost a
        seventh of a commit of 64 deletes."""
        lib = self._environment.lib
        _liblmdb.check(lib, lib.improv_count_freed(txn.handle, self._db["meta"], float(values), float(charged)))

    def _tombstone(self, txn, key_bytes, reason):
        gone, gone_order, meta = self._db["gone"], self._db["gone_order"], self._db["meta"]
        sequence = _read_number(txn, meta, META_NEXT_TOMBSTONE) + 1
        _write_number(txn, meta, META_NEXT_TOMBSTONE, sequence)
        txn.put(gone, key_bytes, bytes([reason]) + _F64.pack(sequence))
        txn.put(gone_order, _SORT_KEY.pack(int(sequence)), key_bytes)
        count = _read_number(txn, meta, META_TOMBSTONES) + 1
        if count > MAX_TOMBSTONES:
            oldest = []
            with contextlib.closing(txn.range(gone_order)) as entries:
                for entry in entries:
                    if len(oldest) >= count - MAX_TOMBSTONES:
                        break
                    oldest.append(entry)
            for order_key, key in oldest:
                txn.delete(gone_order, order_key)
                txn.delete(gone, key)
                count -= 1
        _write_number(txn, meta, META_TOMBSTONES, count)


class _StagedRead:
    """Staged deletes whose record, value and order entry are all there is to remove (`_stage`)."""

    __slots__ = ("keys", "sequences", "charged")

    def __init__(self):
        self.keys = []
        self.sequences = array.array("Q")
        self.charged = array.array("d")


# ---- records and values ---------------------------------------------------------------------------


def _read_number(txn, dbi, name):
    """An f64 counter of the meta database (0 when absent)."""
    raw = txn.get(dbi, name)
    if raw is None or len(raw) != 8:
        return 0.0
    return _F64.unpack(raw)[0]


def _write_number(txn, dbi, name, value):
    txn.put(dbi, name, _F64.pack(value))


def _hold_key(key_bytes, client_id):
    """Key of a hold: the store key, 0x00, the client id (u32 big-endian)."""
    return key_bytes + b"\0" + struct.pack(">I", client_id)


def _hold_range(key_bytes):
    """[start, end) of every hold of a key."""
    return key_bytes + b"\0", key_bytes + b"\1"


def _read_sort_key(sort_key):
    """The first 8 bytes of a sort key as a number."""
    return _SORT_KEY.unpack_from(sort_key)[0]


def _write_header(code, shape, byte_length, flags):
    """The value header: magic, layout version, dtype code, ndim, flags, payload length, shape."""
    return _HEADER.pack(MAGIC, LAYOUT_VERSION, code, len(shape), flags, byte_length) + struct.pack(
        f"<{len(shape)}Q", *shape
    )


def _read_header(data, what):
    """(code, shape, payload bytes, flags, header bytes) of a value header; an error naming `what` when it is not one."""
    if len(data) < HEADER_FIXED_BYTES:
        raise RuntimeError(f"{what}: {len(data)} bytes are too short for a value header")
    magic, version, code, ndim, flags, byte_length = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise RuntimeError(f"{what}: no value header (bad magic)")
    if version != LAYOUT_VERSION:
        raise RuntimeError(
            f"{what}: value header of layout version {version}; this improv reads version {LAYOUT_VERSION}"
        )
    if code > len(_codec.DTYPES) - 1 or ndim > MAX_DIMENSIONS or (code == 0 and ndim != 0):
        raise RuntimeError(f"{what}: corrupt value header (dtype code {code}, {ndim} dimensions)")
    size = HEADER_FIXED_BYTES + 8 * ndim
    if len(data) < size:
        raise RuntimeError(f"{what}: value header cut short")
    shape = list(_SHAPES[ndim].unpack_from(data, HEADER_FIXED_BYTES))
    return code, shape, byte_length, flags, size


def _object_record_fields(raw, what):
    """(sequence, charged, expires_at, in_flight, flags, created) of an object record, unpacked in place."""
    if len(raw) < OBJECT_RECORD_BYTES + HEADER_FIXED_BYTES:
        raise RuntimeError(f"{what}: object record too short")
    return _OBJECT_RECORD.unpack_from(raw)


def _decode_object_record(raw, what):
    sequence, charged, expires_at, in_flight, flags, created = _object_record_fields(raw, what)
    return {
        "sequence": sequence,
        "charged": charged,
        "expires_at": expires_at,
        "in_flight": in_flight,
        "flags": flags,
        "created": created,
        "header": _read_header(raw[OBJECT_RECORD_BYTES:], what),
    }


def _decode_value(address, size, key):
    """The value of the record at `address` (inside the map), in memory of its own.

    A small record is copied whole, header and payload in one call, and the array is a view of that
    copy (writable, and nothing else refers to it); a large one is copied once, into a new array.
    """
    small = size <= SMALL_VALUE_BYTES
    if small:
        data = bytearray(ctypes.string_at(address, size))
    else:
        data = ctypes.string_at(address, HEADER_FIXED_BYTES + 8 * MAX_DIMENSIONS)
    code, shape, byte_length, flags, start = _read_header(data, f'lmdb store: key "{key}"')
    unwritten = (flags & FLAG_UNWRITTEN) != 0
    if not unwritten and start + byte_length > size:
        raise RuntimeError(f'lmdb store: the value of key "{key}" is shorter than its header says')
    if code == 0:
        payload = data[start : start + byte_length] if small else ctypes.string_at(address + start, byte_length)
        return _codec.unpackb(payload)
    dtype = _NP_DTYPES[code]
    if byte_length % dtype.itemsize != 0:
        raise RuntimeError(
            f'lmdb store: the value of key "{key}" is not a whole number of {_codec.KINDS[code]} elements'
        )
    if unwritten:
        return np.zeros(shape, dtype)
    count = byte_length // dtype.itemsize
    if small and count > 0:
        array = np.frombuffer(data, dtype, count, start)
    else:
        array = np.empty(count, dtype)
        if byte_length > 0:
            ctypes.memmove(array.ctypes.data, address + start, byte_length)
    return array if len(shape) == 1 and shape[0] == count else array.reshape(shape)


def _address_of(payload):
    """Address of the bytes of `payload` (a C-contiguous memoryview or bytes), valid while it lives."""
    if isinstance(payload, bytes):
        return ctypes.cast(ctypes.c_char_p(payload), ctypes.c_void_p).value
    return np.frombuffer(payload, np.uint8).ctypes.data


def _full_report(asked, value_bytes, used, capacity, eviction, held=0, unread=0, in_flight=0, unwritten=0):
    return {
        "asked": asked,
        "value_bytes": value_bytes,
        "used": used,
        "capacity": capacity,
        "eviction": eviction,
        "held": held,
        "unread": unread,
        "in_flight": in_flight,
        "unwritten": unwritten,
    }


def _describe_full(report):
    """The StoreFullError message, worded as the TypeScript driver's."""
    free = max(0, report["capacity"] - report["used"])
    asked = report["asked"]
    head = (
        f"lmdb store is full: a value of {format_bytes(report['value_bytes'])} needs {format_bytes(asked)} "
        f"({js_number(asked)} bytes with its header and index), and {format_bytes(free)} ({js_number(free)} bytes) of "
        f"{format_bytes(report['capacity'])} is free"
    )
    if report["eviction"] == "oldest":
        kept = [
            f"{report['held']} held by a reader" if report["held"] > 0 else "",
            f"{report['unread']} not read yet" if report["unread"] > 0 else "",
            f"{report['in_flight']} waiting in a link" if report["in_flight"] > 0 else "",
            f"{report['unwritten']} allocated and not flushed" if report["unwritten"] > 0 else "",
        ]
        kept = [part for part in kept if part]
        return (
            f"{head}; eviction (settings.store_eviction: oldest) could not free enough: of the values it may not "
            f"evict, {', '.join(kept) if kept else 'none'}. Raise settings.store_size, or read and release values "
            "sooner"
        )
    return (
        f"{head}. Raise settings.store_size, delete values once every reader is done with them, give values a "
        "ttl_ms, or turn on settings.store_eviction: oldest"
    )


# ---- checks ---------------------------------------------------------------------------------------


def _check_key_type(key):
    if not isinstance(key, str):
        got = "None" if key is None else type(key).__name__
        raise TypeError(f"lmdb store: a key must be a string, got {got}: pass the key that put() returned")


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_value_size(byte_length, ndim):
    if byte_length + HEADER_FIXED_BYTES + 8 * ndim > MAX_VALUE_BYTES:
        raise ValueError(
            f"lmdb store: a value of {format_bytes(byte_length)} is over LMDB's limit of 4 GiB per value; split it "
            "into several values"
        )


def _now():
    """Milliseconds since the epoch, a whole number (JavaScript's Date.now())."""
    return time.time_ns() // 1_000_000


