"""The Python client of the pipeline's `redis` store: the same store the TypeScript driver
(`@improv/store/redis`, `packages/store/src/redis.ts`) opens, read and written exactly as it does.

A Python actor process gets the store's descriptor (plain JSON: address, password, key prefixes,
capacity, eviction, lease) and calls `connect(descriptor)`; its client then shares the store with
every TypeScript worker and process at the same time. What makes that safe:

- **The same Lua scripts.** Every compound operation (put with the capacity check and eviction, a
  read that holds, delete, release, track, reaping values whose TTL passed) is one script, atomic on
  the server across all clients. The store's opener publishes the TypeScript driver's scripts
  (`packages/store/src/_redis-scripts.ts`) in the hash `<prefix>scripts`, and this client runs
  exactly those: one copy of each script, whichever language calls it (same SHA1, same script cache).
- **The same layout** (docs: `packages/store/docs/redis.md`): a value's Redis string is its data
  alone (a numpy array's raw little-endian bytes, or msgpack of `improv_ts._codec`), and its header
  (format version, dtype code, ndim, byte length, shape) sits in its metadata hash, field `h`.
  Arrays come back with their dtype and shape, bit for bit.
- **The same accounting and errors**: keys `r<storeId>-<client tag>.<n>`, a client id from
  `INCR <prefix>clients` (`owner_id`), holds with leases, `StoreFullError` and `ObjectNotFoundError`
  worded as the TypeScript driver words them, times taken from the server's clock.

One thing the TypeScript client has that this one does not: `allocate()`/`flush()` (writing into
store memory in place); a Python actor builds its array and `put()`s it.

Example::

    from improv_ts.stores.redis import connect

    store = connect(descriptor)
    key = store.put(np.zeros((512, 512), np.float32))
    frame = store.get(key)            # float32, shape (512, 512), a copy of its own
    store.release()                   # the holds of this client's reads end
    store.delete(key)
    store.close()
"""

import hashlib
import itertools
import math
import re
import secrets
import struct
import threading

import numpy as np

try:
    import redis as _redis
except ImportError as _error:  # pragma: no cover - depends on the machine
    raise ImportError(
        "improv_ts: the redis store needs the redis package (redis-py 4 or newer) in this Python: "
        "pip install 'improv-ts[redis]' (or pip install redis; Debian/Ubuntu: apt install python3-redis)"
    ) from _error

from .._codec import DTYPES, KINDS, array_bytes, dtype_code, unpackb
from ..errors import StoreFullError, StoreUnavailableError
from ._common import MAX_DIMENSIONS, base36, check_shape, check_ttl, encode_value, format_bytes, js_number, object_not_found

__all__ = ["RedisStoreClient", "connect"]

# ---- the layout (packages/store/src/_redis-codec.ts) -------------------------------------------

#: Format version in byte 0 of a header.
FORMAT_VERSION = 1
#: Fixed part of a header: version, dtype code, ndim, 5 zero bytes, byte length (uint64 LE).
HEADER_BYTES = 16
#: Largest value: one Redis string, and Redis refuses a larger bulk string (proto-max-bulk-len).
MAX_VALUE_BYTES = 512 * 1024 * 1024
#: Values up to this size travel inline with their script call; larger ones as a SET or GET of their own.
INLINE_BYTES = 128 * 1024
#: Keys per script call of release() and track().
KEYS_PER_CALL = 1000
#: With eviction, a put that would take the store above this share of its capacity evicts…
EVICTION_HIGH_WATER = 0.95
#: …values until the store is below this share (`@improv/core`'s store/keys.ts).
EVICTION_LOW_WATER = 0.85
#: Transfer rate a large put is given time for on top of commandTimeoutMs: 50 MB/s, as in TypeScript.
BYTES_PER_MS = 50_000

DEFAULT_COMMAND_TIMEOUT_MS = 2000
DEFAULT_CONNECT_TIMEOUT_MS = 5000
DEFAULT_LEASE_MS = 60_000

#: `<client tag>.<counter>`, both base 36: the part of a key after the store's key prefix.
_KEY_NAME = re.compile(r"[0-9a-z]{1,16}\.[0-9a-z]{1,11}")


def encode_header(code, byte_length, shape):
    """The header of a value: `code` 0 (msgpack, no shape) or a dtype code (1..11) with its shape."""
    dims = () if shape is None else tuple(shape)
    return struct.pack(f"<BBB5xQ{len(dims)}Q", FORMAT_VERSION, code, len(dims), byte_length, *dims)


def read_header(data):
    """`(code, shape, byte_length)` of a header, or None when it is not one of ours."""
    if len(data) < HEADER_BYTES or data[0] != FORMAT_VERSION:
        return None
    code, ndim = data[1], data[2]
    if code >= len(DTYPES) or ndim > MAX_DIMENSIONS or (code == 0 and ndim != 0):
        return None
    if len(data) != HEADER_BYTES + 8 * ndim:
        return None
    (byte_length,) = struct.unpack_from("<Q", data, 8)
    shape = list(struct.unpack_from(f"<{ndim}Q", data, HEADER_BYTES))
    if code != 0 and math.prod(shape) * np.dtype(DTYPES[code]).itemsize != byte_length:
        return None
    return code, shape, byte_length


# ---- the Lua scripts ----------------------------------------------------------------------------
# Every compound operation is one of the TypeScript driver's Lua scripts (packages/store/src/
# _redis-scripts.ts documents each). The store's opener publishes them in the hash `<prefix>scripts`
# (name → source), and a Python client runs exactly those: one copy of each script, whichever
# language runs it.


class _Script:
    """A script: its name, its source, its SHA1 (for EVALSHA)."""

    __slots__ = ("name", "source", "sha")

    def __init__(self, name, source):
        self.name = name
        self.source = source
        self.sha = hashlib.sha1(source.encode("utf-8")).hexdigest()


#: The scripts a client calls, by their TypeScript names.
SCRIPT_NAMES = ("put", "read", "delete", "flushed", "release", "track", "usage", "recover")


def _published_scripts(connection, descriptor):
    """The scripts the store's opener published, or `StoreUnavailableError` saying why there are none."""
    published = connection.call(lambda r: r.hgetall(f"{descriptor['prefix']}scripts"))
    sources = {
        (name.decode() if isinstance(name, bytes) else name): (source.decode() if isinstance(source, bytes) else source)
        for name, source in published.items()
    }
    missing = [name for name in SCRIPT_NAMES if name not in sources]
    if missing:
        raise StoreUnavailableError(
            f"redis store: the store {descriptor.get('storeId')} on {connection.where} publishes no "
            f"{', '.join(missing)} script{'s' if len(missing) > 1 else ''} (key {descriptor['prefix']}scripts): it was "
            "opened by an @improv/store older than this improv_ts; use the same improv version on both sides"
        )
    return {name: _Script(name, sources[name]) for name in SCRIPT_NAMES}


# ---- the client ----------------------------------------------------------------------------------


def connect(descriptor):
    """A client of the redis store `descriptor` describes (the descriptor of the TypeScript
    `createRedisStore().open()`, unchanged), with a connection of its own and a client id of its own.

    Raises `StoreUnavailableError` when the server cannot be reached within the descriptor's
    `connectTimeoutMs`, refuses the login, or the store was closed (its run ended).
    """
    if (
        not isinstance(descriptor, dict)
        or descriptor.get("driver") != "redis"
        or not isinstance(descriptor.get("host"), str)
        or not _is_int(descriptor.get("port"))
        or not isinstance(descriptor.get("prefix"), str)
        or not isinstance(descriptor.get("keyPrefix"), str)
        or not isinstance(descriptor.get("capacityBytes"), (int, float))
    ):
        driver = descriptor.get("driver") if isinstance(descriptor, dict) else None
        raise TypeError(
            f'redis store: connect got a descriptor of driver "{driver}" that is not an open redis store '
            "(it needs host, port, prefix, keyPrefix and capacityBytes); pass the descriptor of "
            "createRedisStore().open() unchanged"
        )
    connection = _Connection(descriptor)
    try:
        connection.open()
        if connection.call(lambda r: r.exists(f"{descriptor['prefix']}closed")) == 1:
            raise StoreUnavailableError(
                f"redis store: the store {descriptor.get('storeId')} on {connection.where} was closed "
                "(its pipeline run ended) and its values are gone"
            )
        owner_id = int(connection.call(lambda r: r.incr(f"{descriptor['prefix']}clients")))
        connection.scripts = _published_scripts(connection, descriptor)
        connection.load_scripts()
    except BaseException:
        connection.close()
        raise
    return RedisStoreClient(descriptor, connection, owner_id)


class RedisStoreClient:
    """One client of a redis store (see the module's docstring). Thread-safe: it may be shared by the
    threads of one process, as redis-py's connection pool is.
    """

    #: Each delete is done on the server at once (the lmdb client's `batches_deletes` can be True).
    batches_deletes = False

    def __init__(self, descriptor, connection, owner_id):
        """Use `connect(descriptor)`."""
        self.descriptor = descriptor
        #: Id of this client in the store (≥ 1), as the TypeScript client's `ownerId`: the opener's
        #: `recoverFromDeadOwner(owner_id)` ends its holds if this process dies.
        self.owner_id = owner_id
        self._connection = connection
        self._prefix = descriptor["prefix"]
        self._key_prefix = descriptor["keyPrefix"]
        self._capacity = int(descriptor["capacityBytes"])
        self._eviction = descriptor.get("eviction", "none")
        self._evicting_arg = "1" if self._eviction == "oldest" else ""
        self._owner_arg = str(owner_id)
        self._lease_arg = str(js_number(descriptor.get("leaseMs", DEFAULT_LEASE_MS)))
        # Part of every key this client makes: its id and a random salt (ids restart with a wiped server).
        self._tag = f"{base36(owner_id)}{base36(secrets.randbelow(36**4)).rjust(4, '0')}"
        self._counter = itertools.count(1)
        self._closed = False
        # Whether this client took a hold (a read) since its last release(): else release() has nothing to do.
        self._holding = False
        # Keys of puts that failed with the server away: they may have been stored; deleted once it answers.
        self._orphans = set()
        self._lock = threading.Lock()

    def __repr__(self):
        state = "closed" if self._closed else self._connection.where
        return f"<RedisStoreClient {self.descriptor.get('storeId')} owner {self.owner_id} ({state})>"

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    # ---- values ----------------------------------------------------------------------------------

    def put(self, value, *, shape=None, ttl_ms=None):
        """Stores `value` and returns its new key.

        A numpy array is stored raw with its dtype and shape (int8/16/32/64, uint8/16/32/64,
        float32/64; bool as uint8); `shape` gives a flat array its shape (the product must be its
        size). Any other value is stored as msgpack (dicts, lists, strings, numbers, ints of any
        size up to 64 bits, bytes, sets, datetimes, nested numpy arrays as flat typed arrays).
        `ttl_ms`: the value is freed that many milliseconds after the put unless a reader holds it.

        Raises `StoreFullError` when it does not fit (after eviction, with `store_eviction: oldest`),
        `TypeError` for a value that cannot be stored, `ValueError` for a shape that does not fit or
        a value over Redis's 512 MiB.
        """
        self._assert_open()
        ttl_ms = check_ttl("redis", "put()", ttl_ms)
        ttl = "" if ttl_ms is None else str(math.ceil(ttl_ms))
        if isinstance(value, np.ndarray):
            code = dtype_code(value)
            dims = check_shape("redis", "put()", value.shape if shape is None else shape, value.size)
            data = array_bytes(value)
            size = data.nbytes
            _check_value_size(size)
            header = encode_header(code, size, dims)
        else:
            if shape is not None:
                raise TypeError(
                    f"redis store: put() got a shape for a value of type {type(value).__name__}; shapes "
                    "describe numpy arrays only. Drop the shape, or store a numpy array"
                )
            data = encode_value("redis", value)
            size = len(data)
            _check_value_size(size)
            header = encode_header(0, size, None)
        key = f"{self._key_prefix}{self._tag}.{base36(next(self._counter))}"
        self._store(key, data, size, header, ttl)
        return key

    def get(self, key):
        """The value under `key`: a numpy array with its dtype and shape (a writable copy of its own),
        or the decoded msgpack value. Holds it for this client (eviction and TTL leave it alone)
        until `release()` or the end of its lease (the descriptor's `leaseMs`), like the TypeScript
        `get`. Raises `ObjectNotFoundError` (saying evicted, expired, unknown, or another store's key).
        """
        self._assert_open()
        name = self._name_of(key)
        status = self._script(
            "read", name, self._owner_arg, self._lease_arg, str(INLINE_BYTES), self._evicting_arg
        )
        self._check_found(key, status)
        # Held only where eviction or the value's TTL could free it (else a hold protects nothing).
        if int(status[2]) == 1:
            self._holding = True
        code, shape, byte_length = self._header_of(key, status)
        if len(status) > 3:
            data = status[3]
        else:
            # A large value is fetched now: this client's hold, or the absence of eviction and TTL,
            # keeps it (only a delete can take it away in between).
            data = self._connection.call(lambda r: r.get(f"{self._prefix}v:{name}"))
            if data is None:
                raise object_not_found("redis", key, "unknown")
        if code == 0:
            if len(data) != byte_length:
                raise self._corrupt(key)
            return unpackb(data)
        return _array_of(data, code, shape, byte_length)

    def info(self, key):
        """What is under `key`, without reading or holding it: `{"dtype": kind name (e.g. "float32")
        or None for a msgpack value, "shape": list (None for a msgpack value), "bytes": data bytes}`.
        Raises `ObjectNotFoundError` as `get` does.
        """
        self._assert_open()
        name = self._name_of(key)
        status = self._script("read", name, "", self._lease_arg)
        code, shape, byte_length = self._header_of(key, status)
        if code == 0:
            return {"dtype": None, "shape": None, "bytes": byte_length}
        return {"dtype": KINDS[code], "shape": shape, "bytes": byte_length}

    def has(self, key):
        """Whether `key` holds a value (False for anything that is not a key of this store)."""
        self._assert_open()
        if not self.is_key(key):
            return False
        status = self._script("read", self._name(key), "", self._lease_arg)
        return int(status[0]) == 1

    def delete(self, key):
        """Frees the value under `key` at once (even if a reader holds it); True when there was one."""
        self._assert_open()
        if not self.is_key(key):
            return False
        return int(self._script("delete", self._name(key))) == 1

    def flush(self):
        """Nothing to commit: each call of a redis client is done on the server when it returns (the lmdb
        client's `flush()` commits batched deletes)."""

    def staged_for(self):
        """None: a redis client stages nothing (see `flush()`)."""
        return None

    def is_key(self, value):
        """Whether `value` is a key of this store (a string with its key prefix and a key's form)."""
        if not isinstance(value, str) or not value.startswith(self._key_prefix):
            return False
        return _KEY_NAME.fullmatch(value, len(self._key_prefix)) is not None

    # ---- holds -----------------------------------------------------------------------------------

    def release(self, key=None):
        """Ends this client's hold of `key`, or of every value it holds; a value whose TTL passed
        while it was held is freed now, unless another client still holds it."""
        self._assert_open()
        if key is not None:
            if self.is_key(key):
                self._script("release", self._owner_arg, self._name(key))
            return
        if not self._holding:
            return
        self._holding = False
        try:
            self._script("release", self._owner_arg)
        except BaseException:
            self._holding = True
            raise

    def track(self, keys, delta):
        """Adds `delta` to the count of messages in flight of every key of this store in `keys`
        (others are skipped): with `store_eviction: oldest`, a value with messages in flight is
        never evicted."""
        self._assert_open()
        if not _is_int(delta):
            raise TypeError(f"redis store: track() needs an integer delta, got {delta!r}")
        if abs(delta) > 2**53 - 1:
            raise ValueError(f"redis store: track() needs a delta within ±(2^53 - 1), got {delta}")
        if delta == 0:
            return
        names = [self._name(key) for key in keys if self.is_key(key)]
        for start in range(0, len(names), KEYS_PER_CALL):
            self._script("track", str(delta), *names[start : start + KEYS_PER_CALL])

    # ---- store -----------------------------------------------------------------------------------

    def usage(self):
        """`{"used_bytes", "capacity_bytes", "objects"}`, as the TypeScript `usage()` (values whose
        TTL passed are freed first). A value counts its data plus its header (16 + 8 per dimension)."""
        self._assert_open()
        used, objects, _reaped = self._script("usage", "100")
        return {"used_bytes": int(used), "capacity_bytes": self._capacity, "objects": int(objects)}

    def close(self):
        """Ends this client's holds and closes its connections. The store and its values stay."""
        if self._closed:
            return
        try:
            self.release()
        except Exception:
            pass  # the server is away: the holds end with their leases
        self._closed = True
        self._connection.close()

    # ---- internals -------------------------------------------------------------------------------

    def _assert_open(self):
        if self._closed:
            raise StoreUnavailableError(
                "redis store: this client was closed; connect a new one with connect_store(descriptor)"
            )

    def _name(self, key):
        """The key without the store's key prefix: the `<k>` of the Redis keys."""
        return key[len(self._key_prefix) :]

    def _name_of(self, key):
        """`_name(key)`, or `ObjectNotFoundError` for a key that is not of this store."""
        if not isinstance(key, str):
            got = "None" if key is None else type(key).__name__
            raise TypeError(f"redis store: a key must be a string, got {got}: pass the key that put() returned")
        if not self.is_key(key):
            raise object_not_found("redis", key, "foreign")
        return self._name(key)

    def _script(self, name, *args):
        """A script call (P first); afterwards, deletes what failed puts may have left."""
        reply = self._connection.script(self._connection.scripts[name], (self._prefix, *args))
        if self._orphans:
            self._clean_orphans()
        return reply

    def _store(self, key, data, size, header, ttl):
        name = self._name(key)
        put_args = (
            name,
            str(size + len(header)),
            str(self._capacity),
            self._eviction,
            str(EVICTION_HIGH_WATER),
            str(EVICTION_LOW_WATER),
            ttl,
            "",
            self._lease_arg,
            header,
        )
        try:
            if size <= INLINE_BYTES:
                # Small: one script call with the data inline.
                result = self._script("put", *put_args, data)
            else:
                # Large: a plain SET (Redis keeps the bytes it read; no copy into Lua), then the script.
                put = self._connection.scripts["put"]
                replies = self._connection.transaction(
                    [("SET", f"{self._prefix}v:{name}", data), ("EVALSHA", put.sha, 0, self._prefix, *put_args)],
                    size,
                )
                result = replies[1]
                if self._orphans:
                    self._clean_orphans()
        except BaseException:
            # The server may have stored it (or its bytes) before the call failed: delete it once it answers.
            with self._lock:
                self._orphans.add(name)
            raise
        status = int(result[0])
        if status == 1:
            return
        if status == -1:
            raise StoreUnavailableError(
                f"redis store: the store {self.descriptor.get('storeId')} on {self._connection.where} was closed "
                "(its pipeline run ended); nothing more can be stored in it"
            )
        raise StoreFullError(self._describe_full(size, size + len(header), [int(n) for n in result[1:6]]))

    def _clean_orphans(self):
        with self._lock:
            names = list(self._orphans)
            self._orphans.clear()
        delete = self._connection.scripts["delete"]
        for name in names:
            try:
                self._connection.transaction(
                    [("EVALSHA", delete.sha, 0, self._prefix, name), ("DEL", f"{self._prefix}v:{name}")], 0
                )
            except Exception:
                with self._lock:
                    self._orphans.add(name)

    def _check_found(self, key, status):
        if int(status[0]) == 1:
            return
        reason = _text(status[1]) if len(status) > 1 else "unknown"
        raise object_not_found("redis", key, reason if reason in ("evicted", "expired") else "unknown")

    def _header_of(self, key, status):
        """`(code, shape, byte_length)` of a read's reply, or `ObjectNotFoundError` saying why there is none."""
        self._check_found(key, status)
        header = read_header(status[1])
        if header is None:
            raise self._corrupt(key)
        return header

    def _corrupt(self, key):
        name = self._name(key)
        return RuntimeError(
            f'redis store: the value under key "{key}" is not in the store\'s format (something else wrote to '
            f"{self._prefix}v:{name} or {self._prefix}m:{name} on {self._connection.where})"
        )

    def _describe_full(self, data_bytes, asked_bytes, counts):
        used, objects, held, unread, in_flight = counts
        capacity = self._capacity
        free = max(capacity - used, 0)
        eviction = (
            f" Eviction (settings.store_eviction: oldest) found nothing more to free: of the {objects} values, "
            f"{held} are held by a reader, {unread} were not read yet and {in_flight} have messages waiting in a link."
            if self._eviction == "oldest"
            else ""
        )
        return (
            f"redis store is full: a value of {format_bytes(data_bytes)} needs {format_bytes(asked_bytes)} "
            f"({asked_bytes} bytes with the header), and {format_bytes(free)} ({free} bytes) of "
            f"{format_bytes(capacity)} is free.{eviction} Raise settings.store_size, or delete values once "
            "every reader is done with them"
        )


class _Connection:
    """The client's connections to its server over redis-py, with what the store needs on top:

    - every failure as the store's error (`StoreUnavailableError` naming `host:port`, an `OOM`
      refusal as `StoreFullError`), never redis-py's own;
    - no automatic retry of a call (a put run twice would be counted twice); after a failure the
      next call connects again, so calls work again as soon as the server is back;
    - scripts loaded at connect and again on a `NOSCRIPT` reply (a restarted server forgot them);
    - time bounds: a small call waits at most `commandTimeoutMs` for the server. Python's
      `sendall` bounds the whole send, so large puts go over a second connection pool whose bound
      leaves time for 512 MiB at 50 MB/s.
    """

    def __init__(self, descriptor):
        self.host = descriptor["host"]
        self.port = int(descriptor["port"])
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.where = f"{host}:{self.port}"
        self._command_ms = _positive(descriptor.get("commandTimeoutMs"), DEFAULT_COMMAND_TIMEOUT_MS)
        self._connect_ms = _positive(descriptor.get("connectTimeoutMs"), DEFAULT_CONNECT_TIMEOUT_MS)
        self._options = {
            "host": self.host,
            "port": self.port,
            "db": int(descriptor.get("database") or 0),
            "username": descriptor.get("username"),
            "password": descriptor.get("password"),
            "ssl": bool(descriptor.get("tls")),
            "socket_connect_timeout": self._connect_ms / 1000,
            "socket_keepalive": True,
            "retry_on_timeout": False,
        }
        self._redis = _redis.Redis(socket_timeout=self._command_ms / 1000, **self._options)
        self._bulk = None
        self._bulk_lock = threading.Lock()

    def open(self):
        """Connects (PING) within connectTimeoutMs, or raises `StoreUnavailableError`."""
        try:
            self._redis.ping()
        except _redis.AuthenticationError as error:
            raise self._refused(error) from error
        except (_redis.ConnectionError, _redis.TimeoutError, OSError) as error:
            raise StoreUnavailableError(
                f"redis store: cannot connect to the Redis server at {self.where} within {self._connect_ms:g} ms "
                f"({_describe_cause(str(error))}). Is the pipeline's redis-server still running, and does this "
                "machine reach that address?"
            ) from error
        except _redis.ResponseError as error:
            raise self.translate(error) from error

    def call(self, command, bulk=False):
        """`command(redis)` with the store's errors."""
        try:
            return command(self._bulk_client() if bulk else self._redis)
        except _redis.RedisError as error:
            raise self.translate(error) from error
        except OSError as error:
            raise self.unavailable(_describe_cause(str(error))) from error

    def script(self, script, args):
        """EVALSHA of `script` (loading the scripts when the server does not know it)."""
        try:
            return self.call(lambda r: r.evalsha(script.sha, 0, *args))
        except _NoScript:
            self.load_scripts()
            return self.call(lambda r: r.evalsha(script.sha, 0, *args))

    def transaction(self, commands, size):
        """`MULTI`, the commands, `EXEC` in one write; the replies. A `NOSCRIPT` reply reruns it once
        after loading the scripts (our commands are all safe to run twice)."""
        replies = self._transaction_once(commands, size)
        if any(isinstance(reply, _redis.exceptions.NoScriptError) for reply in replies):
            self.load_scripts()
            replies = self._transaction_once(commands, size)
        for reply in replies:
            if isinstance(reply, Exception):
                raise self.translate(reply) from reply
        return replies

    def _transaction_once(self, commands, size):
        def run(client):
            pipe = client.pipeline(transaction=True)
            for command in commands:
                pipe.execute_command(*command)
            return pipe.execute(raise_on_error=False)

        return self.call(run, bulk=size > INLINE_BYTES)

    def load_scripts(self):
        """SCRIPT LOAD of every script, so EVALSHA finds them."""
        for script in self.scripts.values():
            sha = self.call(lambda r: r.script_load(script.source))
            sha = sha.decode() if isinstance(sha, bytes) else sha
            if sha != script.sha:  # pragma: no cover - a server that hashes differently
                raise RuntimeError(f"redis store: the server at {self.where} gave script {script.name} the SHA1 {sha}")

    def close(self):
        for client in (self._redis, self._bulk):
            if client is not None:
                try:
                    client.close()
                except Exception:
                    pass

    def _bulk_client(self):
        with self._bulk_lock:
            if self._bulk is None:
                timeout = (self._command_ms + math.ceil(MAX_VALUE_BYTES / BYTES_PER_MS)) / 1000
                self._bulk = _redis.Redis(socket_timeout=timeout, **self._options)
            return self._bulk

    def unavailable(self, why):
        return StoreUnavailableError(
            f"redis store: the Redis server at {self.where} is unavailable ({why}); this call stored and deleted "
            "nothing. The client connects again on its next call: calls work again once the server is back"
        )

    def _refused(self, error):
        return StoreUnavailableError(
            f"redis store: the Redis server at {self.where} refused the login ({error}); give the right password "
            "(settings.redis.password or the url)"
        )

    def translate(self, error):
        """A redis-py error as the store's error."""
        if isinstance(error, (StoreUnavailableError, StoreFullError)):
            return error
        if isinstance(error, _redis.exceptions.NoScriptError):
            return _NoScript(str(error))
        if isinstance(error, _redis.AuthenticationError):
            return self._refused(error)
        if isinstance(error, _redis.exceptions.BusyLoadingError):
            return self.unavailable(str(error))
        if isinstance(error, (_redis.ConnectionError, _redis.TimeoutError)):
            return self.unavailable(_describe_cause(str(error)))
        message = str(error)
        if isinstance(error, _redis.ResponseError):
            if message.startswith("OOM"):
                return StoreFullError(
                    f"redis store: the Redis server at {self.where} is out of memory (its maxmemory is reached: "
                    f"{message}); nothing was stored. Raise the server's maxmemory, lower settings.store_size, or "
                    "delete values once every reader is done with them"
                )
            if re.match(r"(LOADING|BUSY|MASTERDOWN|TRYAGAIN)\b", message):
                return self.unavailable(message)
            if re.match(r"(NOAUTH|WRONGPASS)\b", message):
                return self._refused(error)
        return RuntimeError(f"redis store: the Redis server at {self.where} answered with an error: {message}")


class _NoScript(Exception):
    """The server does not know a script (it restarted): load them and call again."""


# ---- helpers -------------------------------------------------------------------------------------


def _array_of(data, code, shape, byte_length):
    """A writable numpy array of its own from a value's bytes. Shorter data (an allocation of a
    TypeScript client not flushed yet) leaves the rest zeros, as the TypeScript client reads it."""
    dtype = np.dtype(DTYPES[code])
    if len(data) == byte_length:
        array = np.frombuffer(data, dtype).copy()
    else:
        array = np.zeros(byte_length // dtype.itemsize, dtype)
        copied = min(len(data), byte_length)
        array.view(np.uint8)[:copied] = np.frombuffer(data, np.uint8, copied)
    return array.reshape(shape)


def _check_value_size(size):
    if size > MAX_VALUE_BYTES:
        raise ValueError(
            f"redis store: put(): a value of {format_bytes(size)} ({size} bytes) is over Redis's limit of 512 MiB "
            f"({MAX_VALUE_BYTES} bytes) per value: a value is one Redis string, and Redis refuses larger ones "
            "(proto-max-bulk-len). Split it into several values"
        )


def _positive(value, fallback):
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 else fallback


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _text(value):
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _describe_cause(message):
    """A redis-py connection error in words."""
    if re.search(r"refused", message, re.I):
        return "connection refused: no server listens there"
    if re.search(r"NOAUTH|WRONGPASS|invalid password|AUTH", message, re.I):
        return f"it wants the right password, which the store's descriptor carries ({message})"
    if re.search(r"timed? ?out", message, re.I):
        return "the connection timed out"
    if re.search(r"Name or service not known|nodename nor servname|name resolution|getaddrinfo", message, re.I):
        return "the host name does not resolve"
    if re.search(r"Connection closed by server|Connection reset|Broken pipe", message, re.I):
        return "the server closed the connection"
    return message
