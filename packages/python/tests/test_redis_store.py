"""The Python redis store client against a store the TypeScript driver opened.

Each store here is opened by `@improv/store/redis` in a small Node process (`node --import tsx`, from
the repository root): it starts its own redis-server on a free loopback port that wants a password
(`server.bind`), prints its descriptor and the driver's Lua scripts, then answers JSON lines on its
stdin — the TypeScript client reading what Python stored — until stdin closes. So every test runs
against the TypeScript layout, and what Python writes is checked by the TypeScript reader too.

Run: /usr/bin/python3 -m pytest packages/python/tests/test_redis_store.py
Skipped when node, tsx or redis-server is missing.
"""

import datetime
import hashlib
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "packages" / "python"))

redis = pytest.importorskip("redis")

from improv_ts.errors import ObjectNotFoundError, StoreFullError, StoreUnavailableError  # noqa: E402
from improv_ts.stores import redis as redis_store  # noqa: E402

import _ts_store  # noqa: E402
from _ts_store import node_with_tsx  # noqa: E402

if not node_with_tsx() or shutil.which("redis-server") is None:
    pytest.skip("needs node with tsx (npm install at the repository root) and redis-server", allow_module_level=True)

MiB = 1024 * 1024


class TsStore(_ts_store.TsStore):
    """A redis store opened by the TypeScript driver (its own server, with a password), and its client there."""

    def __init__(self, **options):
        super().__init__("redis", {"server": {"bind": "127.0.0.1"}}, options, release_each=True)
        self._raw = None

    def raw(self):
        """A plain redis-py connection to the store's server (to look at its keys)."""
        if self._raw is None:
            d = self.descriptor
            self._raw = redis.Redis(host=d["host"], port=d["port"], password=d.get("password"))
        return self._raw

    def close(self):
        if self._raw is not None:
            self._raw.close()
        super().close()


@pytest.fixture(scope="module")
def ts_store():
    store = TsStore(sizeBytes=64 * MiB)
    yield store
    store.close()


@pytest.fixture
def store(ts_store):
    client = redis_store.connect(ts_store.descriptor)
    yield client
    client.close()


@pytest.fixture
def small_store(request):
    """A store of its own, opened with `request.param`; yields (TypeScript side, Python client)."""
    ts = TsStore(**request.param)
    client = redis_store.connect(ts.descriptor)
    yield ts, client
    client.close()
    ts.close()


def counted(value_bytes, ndim):
    """What a value counts in the store: its data and its header."""
    return value_bytes + 16 + 8 * ndim


def stored_names(ts):
    """The `<k>` of every value string of the store on the server."""
    prefix = ts.descriptor["prefix"] + "v:"
    return {key.decode()[len(prefix) :] for key in ts.raw().scan_iter(match=prefix + "*")}


# ---- the scripts ---------------------------------------------------------------------------------


def test_the_client_runs_the_scripts_the_typescript_opener_published(ts_store, store):
    scripts = store._connection.scripts
    assert {name: script.source for name, script in scripts.items()} == ts_store.scripts
    for name, source in ts_store.scripts.items():
        assert scripts[name].sha == hashlib.sha1(source.encode()).hexdigest()


def test_a_store_that_published_no_scripts_is_a_clear_error(ts_store):
    raw = ts_store.raw()
    key = ts_store.descriptor["prefix"] + "scripts"
    saved = raw.hgetall(key)
    raw.delete(key)
    try:
        with pytest.raises(StoreUnavailableError, match=r"publishes no put, read, .* scripts .* older than this improv_ts"):
            redis_store.connect(ts_store.descriptor)
    finally:
        raw.hset(key, mapping=saved)


def test_a_server_that_forgot_the_scripts_gets_them_again(ts_store, store):
    ts_store.raw().script_flush()
    small = store.put(np.arange(10, dtype=np.int32))
    ts_store.raw().script_flush()
    large = store.put(np.ones(200_000, dtype=np.float64))  # over 128 KiB: the MULTI path
    ts_store.raw().script_flush()
    assert store.get(small).tolist() == list(range(10))
    assert store.get(large).sum() == 200_000
    assert ts_store.ask(op="array", key=large)["shape"] == [200_000]


# ---- arrays --------------------------------------------------------------------------------------

DTYPES = ["int8", "uint8", "int16", "uint16", "int32", "uint32", "float32", "float64", "int64", "uint64"]
#: `@improv/core`'s kind names, which info() and the TypeScript client give.
KIND = {**{dtype: dtype for dtype in DTYPES}, "int64": "bigint64", "uint64": "biguint64"}
SHAPES = [(), (0,), (1,), (7,), (3, 4), (2, 3, 4), (2, 1, 3, 1, 2)]


def random_array(dtype, shape):
    """Random bytes as `dtype`: every bit pattern, NaN payloads and negative zeros included."""
    count = int(np.prod(shape, dtype=np.int64))
    return np.frombuffer(os.urandom(count * np.dtype(dtype).itemsize), dtype).reshape(shape)


def assert_bit_exact(got, want):
    assert isinstance(got, np.ndarray)
    assert got.dtype == np.dtype(want.dtype).newbyteorder("<")
    assert got.shape == want.shape
    assert got.tobytes() == np.ascontiguousarray(want, want.dtype.newbyteorder("<")).tobytes()


def ts_sees(ts, key, array, kind):
    reply = ts.ask(op="array", key=key)
    data = np.ascontiguousarray(array, array.dtype.newbyteorder("<")).tobytes()
    assert reply == {"dtype": kind, "shape": list(array.shape), "sha256": hashlib.sha256(data).hexdigest()}


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_dtype_and_shape_comes_back_bit_exact_here_and_in_typescript(ts_store, store, dtype):
    for shape in SHAPES:
        array = random_array(dtype, shape)
        key = store.put(array)
        got = store.get(key)
        assert_bit_exact(got, array)
        assert got.flags.writeable
        assert store.info(key) == {"dtype": KIND[dtype], "shape": list(shape), "bytes": array.nbytes}
        ts_sees(ts_store, key, array, KIND[dtype])


def test_a_4_mib_array_both_ways(ts_store, store):
    array = random_array("float32", (1024, 1024))
    key = store.put(array)
    assert_bit_exact(store.get(key), array)
    ts_sees(ts_store, key, array, "float32")
    assert store.info(key)["bytes"] == 4 * MiB


def test_arrays_in_other_layouts_are_stored_as_their_values_in_c_order(ts_store, store):
    base = random_array("float64", (6, 8))
    for array in (base[::2, 1::3], np.asfortranarray(base), base.astype(">f8"), base.T):
        key = store.put(array)
        got = store.get(key)
        assert got.dtype == np.float64 and got.shape == array.shape
        assert got.tobytes() == np.ascontiguousarray(array, "<f8").tobytes()
        ts_sees(ts_store, key, array, "float64")
    flags = np.array([True, False, True])
    key = store.put(flags)
    got = store.get(key)
    assert got.dtype == np.bool_ and got.tolist() == [True, False, True] and store.info(key)["dtype"] == "bool"
    ts_sees(ts_store, key, flags.view(np.uint8), "bool")


def test_shape_gives_a_flat_array_its_shape(ts_store, store):
    flat = np.arange(24, dtype=np.uint16)
    key = store.put(flat, shape=(2, 3, 4))
    assert store.get(key).shape == (2, 3, 4)
    assert store.get(key).ravel().tolist() == list(range(24))
    assert ts_store.ask(op="array", key=key)["shape"] == [2, 3, 4]
    with pytest.raises(ValueError, match="holds 25 elements but the array has 24"):
        store.put(flat, shape=(5, 5))
    with pytest.raises(TypeError, match="shapes describe numpy arrays only"):
        store.put([1, 2, 3], shape=(3,))


def test_arrays_typescript_has_no_typed_array_for_are_refused(store):
    for array in (np.zeros(3, np.float16), np.zeros(3, np.complex64), np.array(["a"])):
        with pytest.raises(TypeError, match="no TypeScript typed array"):
            store.put(array)


# ---- msgpack values ------------------------------------------------------------------------------


def test_msgpack_values_come_back_here_and_typescript_reads_them(ts_store, store):
    big = [2**53 + 1, 2**63 - 1, -(2**63), 2**64 - 1]
    # Whole milliseconds that are exact in binary: msgpack 1.0.3's Timestamp.to_datetime goes through a
    # float and turns .123 s into .122999 s (a bug of that msgpack version, not of the store).
    when = datetime.datetime(2025, 3, 4, 5, 6, 7, 250000, tzinfo=datetime.timezone.utc)
    cases = [
        ({"a": 1, "b": [True, None, 2.5, "tö"]}, {"a": 1, "b": [True, None, 2.5, "tö"]}),
        ([1, [2, [3, {"x": -4}]]], [1, [2, [3, {"x": -4}]]]),
        (big, [{"$bigint": str(n)} for n in big]),
        ({"frames": [np.arange(4, dtype=np.int16), np.array([0.5, -1.0], np.float32)]},
         {"frames": [{"$array": "Int16Array", "hex": np.arange(4, dtype="<i2").tobytes().hex()},
                     {"$array": "Float32Array", "hex": np.array([0.5, -1.0], "<f4").tobytes().hex()}]}),
        ({3, "three"}, None),
        (b"\x00\xffraw", {"$array": "Uint8Array", "hex": "00ff726177"}),
        (when, {"$date": round(when.timestamp() * 1000)}),
        ([float("inf"), float("-inf")], [{"$number": "Infinity"}, {"$number": "-Infinity"}]),
        ("", ""),
        (None, None),
        (np.float32(1.5), 1.5),
    ]
    for value, typescript in cases:
        key = store.put(value)
        got = store.get(key)
        assert store.info(key)["dtype"] is None
        if isinstance(value, dict) and "frames" in value:
            assert [a.tolist() for a in got["frames"]] == [a.tolist() for a in value["frames"]]
            assert [a.dtype for a in got["frames"]] == [np.dtype("<i2"), np.dtype("<f4")]
        else:
            assert got == value
        seen = ts_store.ask(op="value", key=key)
        if isinstance(value, set):
            assert sorted(map(str, seen["value"]["$set"])) == ["3", "three"]
        else:
            assert seen == {"value": typescript}


def test_values_msgpack_cannot_hold_are_refused(store):
    with pytest.raises(TypeError, match="type int"):
        store.put(2**64)  # over 64 bits
    with pytest.raises(TypeError, match="cannot send or store a value of type object"):
        store.put(object())


# ---- keys, delete, not found ---------------------------------------------------------------------


def test_delete_has_and_is_key(ts_store, store):
    key = store.put({"n": 1})
    other = ts_store.descriptor["keyPrefix"].replace("r", "rx", 1) + key.split("-", 1)[1]
    assert store.is_key(key) and store.has(key)
    for value in (other, key + "!", key.replace(".", ""), "", None, 7, key.encode()):
        assert not store.is_key(value)
        assert not store.has(value)
        assert not store.delete(value)
    assert store.delete(key) is True
    assert store.delete(key) is False
    assert not store.has(key)
    assert store.is_key(key)  # still of this store's form: a read says it is gone
    assert ts_store.ask(op="value", key=key)["error"] == "ObjectNotFoundError"


def test_keys_of_two_clients_never_collide_and_each_reads_the_others(ts_store, store):
    second = redis_store.connect(ts_store.descriptor)
    try:
        assert second.owner_id != store.owner_id and store.owner_id >= 1
        keys = [client.put(i) for i in range(50) for client in (store, second)]
        assert len(set(keys)) == 100
        assert [second.get(k) for k in keys[::2]] == list(range(50))
        assert [store.get(k) for k in keys[1::2]] == list(range(50))
    finally:
        second.close()


def test_reading_a_missing_key_says_why(ts_store, store):
    key = store.put(1)
    store.delete(key)
    foreign = "rzzzzzzzzzzzzzz-1abcd.1"
    for read in (store.get, store.info):
        with pytest.raises(ObjectNotFoundError) as caught:
            read(key)
        assert str(caught.value) == (
            f'redis store: no value under key "{key}": it was deleted, or never stored. A key stays readable until '
            "delete(key); keep it until every reader is done. Under fan-out (one message to several sinks) only one "
            "actor may delete it, or let the store free it: a time to live at put (ttlMs; ttl_ms in Python), or "
            "settings.store_eviction: oldest"
        )
        assert isinstance(caught.value, KeyError)
        with pytest.raises(ObjectNotFoundError, match="is not a key of this store"):
            read(foreign)
        with pytest.raises(TypeError, match="a key must be a string"):
            read(None)
    # The TypeScript client words it the same way.
    assert ts_store.ask(op="value", key=key)["message"] == str(pytest.raises(ObjectNotFoundError, store.get, key).value)


def test_a_value_someone_else_overwrote_is_reported_not_misread(ts_store, store):
    key = store.put(np.zeros((2, 2), np.float32))
    ts_store.raw().hset(f"{ts_store.descriptor['prefix']}m:{store._name(key)}", "h", b"not a header")
    with pytest.raises(RuntimeError, match="is not in the store's format"):
        store.get(key)


# ---- capacity, eviction, TTL ---------------------------------------------------------------------


@pytest.mark.parametrize("small_store", [{"sizeBytes": MiB}], indirect=True)
def test_a_put_past_the_capacity_is_refused_and_counts_nothing(small_store):
    ts, store = small_store
    kept = store.put(np.zeros(1_000_000, np.uint8))
    before = store.usage()
    assert before == {"used_bytes": counted(1_000_000, 1), "capacity_bytes": MiB, "objects": 1}
    # Small values go inline with the script, large ones (over 128 KiB) as a SET before it.
    for value in (np.zeros(60_000, np.uint8), np.zeros(120_000, np.float64), b"x" * 100_000, b"x" * 200_000):
        with pytest.raises(StoreFullError) as caught:
            store.put(value)
        assert str(caught.value).startswith("redis store is full: a value of ")
        assert "Raise settings.store_size" in str(caught.value)
        assert store.usage() == before
        assert stored_names(ts) == {store._name(kept)}  # the refused bytes did not stay on the server
    with pytest.raises(StoreFullError) as caught:
        store.put(np.zeros(1_000_000))
    assert str(caught.value) == (
        "redis store is full: a value of 7.63 MiB needs 7.63 MiB (8000024 bytes with the header), and 47.41 KiB "
        "(48552 bytes) of 1.00 MiB is free. Raise settings.store_size, or delete values once every reader is done "
        "with them"
    )
    assert ts.ask(op="usage") == {"usedBytes": before["used_bytes"], "capacityBytes": MiB, "objects": 1}


@pytest.mark.parametrize("small_store", [{"sizeBytes": MiB, "eviction": "oldest"}], indirect=True)
def test_eviction_frees_the_oldest_read_values_that_nobody_holds(small_store):
    ts, store = small_store
    keys = [store.put(np.full(50_000, i, np.float32)) for i in range(4)]  # 4 × 200 KiB
    for key in keys[:3]:
        store.get(key)  # read, and held by this client
    # Held or unread: nothing may go, so the put is refused and says why.
    with pytest.raises(StoreFullError, match="of the 4 values, 3 are held by a reader, 1 were not read yet and 0 have"):
        store.put(np.zeros(100_000, np.float32))
    store.release(keys[2])
    store.release()
    store.track([keys[1]], 1)  # a message carries it: it stays
    newer = store.put(np.zeros(100_000, np.float32))  # 400 KiB: the oldest read ones nobody holds go
    gone = [key for key in keys if not store.has(key)]
    assert gone == [keys[0], keys[2]]
    for key in gone:
        with pytest.raises(ObjectNotFoundError, match="was evicted"):
            store.get(key)
        assert "was evicted" in ts.ask(op="value", key=key)["message"]
    assert store.get(keys[3]).max() == 3 and store.has(newer)
    usage = store.usage()
    assert usage["objects"] == len(keys) - len(gone) + 1
    assert usage["used_bytes"] == (len(keys) - len(gone)) * counted(200_000, 1) + counted(400_000, 1)
    assert stored_names(ts) == {store._name(key) for key in keys if key not in gone} | {store._name(newer)}
    store.track([keys[1]], -1)


def test_a_read_holds_only_where_a_ttl_or_eviction_could_free_the_value(ts_store, store):
    def holds():
        return len(ts_store.raw().keys(f"{ts_store.descriptor['prefix']}h:*"))

    before = holds()
    lasting = store.put(np.arange(4, dtype=np.int32))
    assert store.get(lasting).tolist() == [0, 1, 2, 3]
    assert holds() == before  # only a delete can free it: no hold, nothing to release
    timed = store.put(np.arange(4, dtype=np.int32), ttl_ms=60_000)
    store.get(timed)
    assert holds() == before + 1
    store.release()
    assert holds() == before
    store.delete(lasting)
    store.delete(timed)


def test_a_value_with_a_ttl_expires_unless_held(ts_store, store):
    key = store.put({"short": True}, ttl_ms=50)
    deadline = time.monotonic() + 30  # a guard, not a bound: the value goes once 50 ms have passed
    while store.has(key) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not store.has(key)
    with pytest.raises(ObjectNotFoundError, match="expired"):
        store.get(key)

    # A read holds the value; should the TTL pass before the read (a very slow machine), try longer.
    for ttl_ms in (200, 2000, 20_000):
        held = store.put(np.arange(3), ttl_ms=ttl_ms)
        try:
            assert store.get(held).tolist() == [0, 1, 2]
            break
        except ObjectNotFoundError:
            continue
    time.sleep(ttl_ms / 1000 + 0.05)  # the server's clock has passed the TTL now; the hold keeps it
    assert store.has(held) and store.get(held).tolist() == [0, 1, 2]
    store.release()
    assert not store.has(held)
    with pytest.raises(ObjectNotFoundError, match="expired"):
        store.get(held)

    for ttl, error in ((0, ValueError), (-5, ValueError), (float("nan"), ValueError), ("1", TypeError), (True, TypeError)):
        with pytest.raises(error, match="ttl_ms"):
            store.put(1, ttl_ms=ttl)


def test_usage_agrees_with_the_typescript_client(ts_store, store):
    store.put(np.zeros((3, 5), np.int64))
    mine = store.usage()
    theirs = ts_store.ask(op="usage")
    assert theirs == {"usedBytes": mine["used_bytes"], "capacityBytes": mine["capacity_bytes"], "objects": mine["objects"]}


# ---- connecting ----------------------------------------------------------------------------------


@pytest.mark.parametrize("small_store", [{"sizeBytes": MiB}], indirect=True)
def test_a_store_whose_run_ended_takes_no_more_values(small_store):
    ts, store = small_store
    store.put(1)
    # What closing a store on a server of the user's leaves behind (the TypeScript removeStore()).
    ts.raw().set(ts.descriptor["prefix"] + "closed", "1")
    with pytest.raises(StoreUnavailableError, match="was closed .its pipeline run ended.; nothing more can be stored"):
        store.put(2)
    with pytest.raises(StoreUnavailableError, match="was closed .its pipeline run ended. and its values are gone"):
        redis_store.connect(ts.descriptor)


def test_the_descriptor_carries_the_password_and_a_wrong_one_is_refused(ts_store):
    descriptor = ts_store.descriptor
    assert descriptor["password"]
    for password in ("wrong", None):
        with pytest.raises(StoreUnavailableError, match=r"127\.0\.0\.1:\d+"):
            redis_store.connect({**descriptor, "password": password})


def test_an_unreachable_server_is_store_unavailable(ts_store):
    probe = __import__("socket").socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    with pytest.raises(StoreUnavailableError, match=f"cannot connect to the Redis server at 127.0.0.1:{port}.*refused"):
        redis_store.connect({**ts_store.descriptor, "port": port})


def test_a_descriptor_of_another_driver_is_refused():
    with pytest.raises(TypeError, match="not an open redis store"):
        redis_store.connect({"driver": "lmdb", "path": "/tmp/x"})


def test_a_closed_client_says_so(ts_store):
    client = redis_store.connect(ts_store.descriptor)
    key = client.put(1)
    client.close()
    client.close()
    with pytest.raises(StoreUnavailableError, match="this client was closed"):
        client.get(key)
