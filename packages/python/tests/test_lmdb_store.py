"""The Python lmdb store client against a store the TypeScript driver opened.

Each store here is opened by `@improv/store/lmdb` in a small Node process (`node --import tsx`, from
the repository root): it prints its descriptor, then answers JSON lines on its stdin — the
TypeScript client reading what Python stored, or its `usage()` — until stdin closes, when it closes
the store (its files are removed). So every test runs against the TypeScript layout, with the
TypeScript run holding the environment open at the same time, and what Python writes is checked by
the TypeScript reader too.

The LMDB library is built from lmdb-js's sources on first use (a few seconds, then cached).

Run: /usr/bin/python3 -m pytest packages/python/tests/test_lmdb_store.py
Skipped when node or tsx is missing.
"""

import datetime
import hashlib
import json
import struct
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "packages" / "python"))

from improv_ts.errors import ObjectNotFoundError, StoreFullError, StoreUnavailableError  # noqa: E402
from improv_ts.stores import _liblmdb  # noqa: E402
from improv_ts.stores import lmdb as lmdb_store  # noqa: E402

import _ts_store  # noqa: E402
from _ts_store import node_with_tsx  # noqa: E402

if not node_with_tsx():
    pytest.skip("needs node with tsx (npm install at the repository root)", allow_module_level=True)

KiB = 1024
MiB = 1024 * 1024
LMDB_PACKAGE = ROOT / "node_modules" / "lmdb"


class TsStore(_ts_store.TsStore):
    """An lmdb store opened by the TypeScript driver in a Node process, and its client there."""

    def __init__(self, folder, size_bytes=64 * MiB, eviction=None, reap_interval_ms=None, keep=False):
        self.path = os.path.join(folder, "store")
        open_options = {"sizeBytes": size_bytes}
        if eviction is not None:
            open_options["eviction"] = eviction
        create = {"path": self.path}
        if keep:
            create["keep"] = True
        if reap_interval_ms is not None:
            create["reapIntervalMs"] = reap_interval_ms
        super().__init__("lmdb", create, open_options)


@pytest.fixture
def open_store(tmp_path):
    """Opens TypeScript stores (closed at the end of the test) and connects Python clients to them."""
    opened = []
    clients = []

    def open_(**options):
        store = TsStore(str(tmp_path / f"s{len(opened)}"), **options)
        opened.append(store)
        return store

    def connect(store, **options):
        client = lmdb_store.connect(store.descriptor, **options)
        clients.append(client)
        return client

    open_.connect = connect
    yield open_
    for client in clients:
        client.close()
    for store in opened:
        store.close()


@pytest.fixture
def store(open_store):
    """(TypeScript store, Python client) of a 64 MiB store."""
    ts = open_store()
    return ts, open_store.connect(ts)


def sha256(array):
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def random_array(dtype, shape, seed):
    """An array of random bytes: every bit pattern (NaNs with payloads, -0.0, denormals) is fair game."""
    dtype = np.dtype(dtype)
    count = int(np.prod(shape, dtype=np.int64))
    data = np.random.default_rng(seed).bytes(count * dtype.itemsize)
    return np.frombuffer(data, dtype).reshape(shape).copy()


DTYPES = {
    "int8": "i1",
    "uint8": "u1",
    "int16": "<i2",
    "uint16": "<u2",
    "int32": "<i4",
    "uint32": "<u4",
    "float32": "<f4",
    "float64": "<f8",
    "bigint64": "<i8",
    "biguint64": "<u8",
}
SHAPES = [(), (0,), (1,), (7,), (2, 3), (2, 3, 4), (1, 1, 1, 1, 5), (3, 0, 2)]


# ---- arrays ---------------------------------------------------------------------------------------


def test_every_dtype_and_shape_round_trips_bit_exact_and_typescript_reads_it(store):
    ts, client = store
    for kind, dtype in DTYPES.items():
        for index, shape in enumerate(SHAPES):
            array = random_array(dtype, shape, seed=index)
            key = client.put(array)
            assert client.is_key(key)
            back = client.get(key)
            assert (kind, back.dtype, back.shape) == (kind, np.dtype(dtype), shape)
            assert back.tobytes() == array.tobytes(), (kind, shape)
            assert back.flags.writeable
            assert client.info(key) == {"dtype": kind, "shape": list(shape), "bytes": array.nbytes}
            assert ts.ask("array", key) == {"dtype": kind, "shape": list(shape), "sha256": sha256(array)}


def test_get_returns_a_writable_copy(store):
    _, client = store
    key = client.put(np.arange(10, dtype=np.int32))
    first = client.get(key)
    first[:] = -1
    assert client.get(key).tolist() == list(range(10))


def test_bool_non_contiguous_and_big_endian_arrays_are_stored_as_little_endian_c_order(store):
    ts, client = store
    flags = np.array([[True, False], [False, True]])
    key = client.put(flags)
    # A mask stays a mask (numpy's bool, one byte each); TypeScript reads its bytes as a Uint8Array.
    assert client.get(key).dtype == np.bool_
    assert client.get(key).tolist() == [[True, False], [False, True]]
    assert ts.ask("array", key)["dtype"] == "bool"

    strided = np.arange(60, dtype=np.float64).reshape(6, 10)[::2, 1::3]
    key = client.put(strided)
    assert np.array_equal(client.get(key), strided)
    assert ts.ask("array", key) == {"dtype": "float64", "shape": [3, 3], "sha256": sha256(strided)}

    transposed = np.arange(6, dtype=np.int16).reshape(2, 3).T
    key = client.put(transposed)
    assert np.array_equal(client.get(key), transposed)

    big_endian = np.arange(5, dtype=">i4") * 1_000_003
    key = client.put(big_endian)
    back = client.get(key)
    assert back.dtype == np.dtype("<i4")
    assert back.tolist() == big_endian.tolist()
    assert ts.ask("array", key)["sha256"] == sha256(big_endian.astype("<i4"))


def test_shape_gives_a_flat_array_its_shape(store):
    ts, client = store
    flat = np.arange(24, dtype=np.uint16)
    key = client.put(flat, shape=(2, 3, 4))
    assert client.get(key).shape == (2, 3, 4)
    assert ts.ask("array", key)["shape"] == [2, 3, 4]
    key = client.put(np.array([7.5], np.float32), shape=[])
    assert client.get(key).shape == ()
    assert client.get(key)[()] == 7.5
    with pytest.raises(ValueError, match=r"holds 6 elements but the array has 24"):
        client.put(flat, shape=(2, 3))
    with pytest.raises(ValueError, match=r"from 0 to 2\^32"):
        client.put(flat, shape=(-1, 24))
    with pytest.raises(TypeError, match="must be an integer"):
        client.put(flat, shape=(2.0, 12))
    with pytest.raises(TypeError, match="shapes describe numpy arrays only"):
        client.put([1, 2, 3], shape=(3,))


@pytest.mark.parametrize("dtype", ["<f4", "u1"])
def test_big_4_mib_arrays_round_trip_bit_exact(store, dtype):
    ts, client = store
    itemsize = np.dtype(dtype).itemsize
    array = random_array(dtype, (4 * MiB // itemsize // 1024, 1024), seed=99)
    assert array.nbytes == 4 * MiB
    key = client.put(array)
    back = client.get(key)
    assert back.shape == array.shape
    assert back.tobytes() == array.tobytes()
    assert ts.ask("array", key)["sha256"] == sha256(array)


def test_unsupported_dtypes_are_refused_with_what_to_use(store):
    _, client = store
    for array in (np.zeros(3, np.complex64), np.zeros(3, np.float16), np.array(["a"])):
        with pytest.raises(TypeError, match="has no TypeScript typed array"):
            client.put(array)


# ---- msgpack values -------------------------------------------------------------------------------


def test_msgpack_values_round_trip_and_typescript_decodes_them(store):
    ts, client = store
    value = {
        "text": "héllo ✓",
        "numbers": [0, -1, 2.5, 1e300, -(2**31), 2**32],
        "nested": {"deeper": [[1, [2, [3]]], {"x": None, "y": True, "z": False}]},
        "frame": np.arange(4, dtype=np.float32),
        "bytes": b"\x00\xff\x10",
        "set": {1, 2, 3},
        "big": 2**63 - 1,
        "small": -(2**63),
        "huge": 2**64 - 1,
        "when": datetime.datetime(2025, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
    }
    key = client.put(value)
    back = client.get(key)
    assert back["text"] == value["text"]
    assert back["numbers"] == value["numbers"]
    assert back["nested"] == value["nested"]
    assert back["frame"].dtype == np.float32 and back["frame"].tolist() == [0, 1, 2, 3]
    assert back["bytes"] == value["bytes"]
    assert back["set"] == {1, 2, 3}
    assert (back["big"], back["small"], back["huge"]) == (2**63 - 1, -(2**63), 2**64 - 1)
    assert back["when"] == value["when"]
    assert client.info(key) == {"dtype": None, "shape": None, "bytes": len(lmdb_store._codec.packb(value))}

    seen = ts.ask("value", key)["value"]
    assert seen["text"] == value["text"]
    assert seen["nested"] == value["nested"]
    assert seen["numbers"][:5] == value["numbers"][:5]
    assert seen["frame"] == {"$array": "Float32Array", "hex": np.arange(4, dtype="<f4").tobytes().hex()}
    assert seen["bytes"] == {"$array": "Uint8Array", "hex": "00ff10"}
    assert sorted(seen["set"]["$set"]) == [1, 2, 3]
    assert seen["big"] == {"$bigint": str(2**63 - 1)}
    assert seen["small"] == {"$bigint": str(-(2**63))}
    assert seen["huge"] == {"$bigint": str(2**64 - 1)}
    assert seen["when"] == {"$date": int(value["when"].timestamp() * 1000)}
    assert ts.ask("info", key) == {"key": key, "kind": "value", "byteLength": client.info(key)["bytes"]}


def test_plain_values_round_trip(store):
    _, client = store
    for value in (None, True, 0, -7, 3.25, "", "text", [], {}, [1, "two", None], b"", {"k": {"k": {"k": []}}}):
        assert client.get(client.put(value)) == value


def test_values_msgpack_cannot_encode_are_refused(store):
    _, client = store
    with pytest.raises(TypeError, match="cannot send or store a value of type object"):
        client.put(object())
    with pytest.raises(TypeError, match="of type int"):  # over 64 bits
        client.put(2**64)
    assert client.usage()["objects"] == 0


# ---- keys, has, delete, not found -----------------------------------------------------------------


def test_has_delete_is_key_and_not_found(store):
    ts, client = store
    key = client.put(np.ones(3, np.float64))
    prefix = ts.descriptor["keyPrefix"]
    assert key.startswith(f"{prefix}{lmdb_store.base36(client.client_id)}.")
    assert client.has(key)
    assert client.delete(key) is True
    assert not client.has(key)
    assert client.delete(key) is False
    with pytest.raises(ObjectNotFoundError, match=f'lmdb store: no value under key "{key}": it was deleted'):
        client.get(key)
    with pytest.raises(ObjectNotFoundError, match="no value under key"):
        client.info(key)
    assert ts.ask("array", key)["error"] == "ObjectNotFoundError"

    foreign = "lzzzz-1.1"
    assert not client.is_key(foreign)
    assert not client.is_key(f"{prefix}1.1\n")
    assert not client.is_key(f"{prefix}1")
    assert not client.is_key(123)
    assert client.is_key(f"{prefix}1.1")
    assert not client.has(foreign)
    assert client.delete(foreign) is False
    with pytest.raises(ObjectNotFoundError, match="is not a key of this store"):
        client.get(foreign)
    with pytest.raises(ObjectNotFoundError, match="is not a key of this store"):
        client.info(foreign)
    with pytest.raises(TypeError, match="a key must be a string"):
        client.get(5)
    # Never stored, but of this store's form: unknown.
    with pytest.raises(ObjectNotFoundError, match="never stored"):
        client.get(f"{prefix}zz.zz")


def test_typescript_deletes_are_seen_by_python_and_the_other_way(store):
    ts, client = store
    key = client.put({"a": 1})
    assert ts.ask("value", key) == {"value": {"a": 1}}
    client.delete(key)
    assert ts.ask("value", key)["error"] == "ObjectNotFoundError"


def test_batched_deletes_are_gone_here_at_once_and_for_typescript_once_committed(store, open_store):
    ts, client = store
    batching = open_store.connect(ts, batch_deletes=True)
    keys = [client.put(np.full(4, index, np.int32)) for index in range(3)]
    assert batching.staged_for() is None
    assert batching.delete(keys[0]) is True
    staged = batching.staged_for()
    assert staged is not None and staged >= 0
    # Gone for the client that deleted it, and deleting it again says so.
    assert not batching.has(keys[0])
    assert batching.delete(keys[0]) is False
    with pytest.raises(ObjectNotFoundError, match="it was deleted, or never stored"):
        batching.get(keys[0])
    with pytest.raises(ObjectNotFoundError, match="it was deleted, or never stored"):
        batching.info(keys[0])
    # Not committed: the other clients still read it, and it still counts.
    assert "value" in ts.ask("value", keys[0])
    assert client.has(keys[0])
    assert ts.ask("usage")["objects"] == 3
    batching.flush()
    assert batching.staged_for() is None
    assert ts.ask("value", keys[0])["error"] == "ObjectNotFoundError"
    assert not client.has(keys[0])
    assert ts.ask("usage")["objects"] == 2
    # A write of the client commits what it staged in the same transaction.
    assert batching.delete(keys[1]) is True
    added = batching.put([1, 2])
    assert batching.staged_for() is None
    assert ts.ask("value", keys[1])["error"] == "ObjectNotFoundError"
    # usage() commits first, so it counts what this client deleted.
    assert batching.delete(keys[2]) is True
    assert batching.delete(added) is True
    assert batching.usage()["objects"] == 0
    assert ts.ask("usage")["objects"] == 0


def test_batched_deletes_commit_at_a_full_batch_at_1_mib_and_at_close(store, open_store):
    ts, client = store
    batching = open_store.connect(ts, batch_deletes=True)
    keys = [client.put(index) for index in range(lmdb_store.BATCH_MAX_DELETES + 1)]
    for key in keys[:-2]:
        batching.delete(key)
    assert ts.ask("usage")["objects"] == len(keys)
    batching.delete(keys[-2])  # the last of a batch (BATCH_MAX_DELETES): committed at once
    assert batching.staged_for() is None
    assert ts.ask("usage")["objects"] == 1
    # A large value's delete is not held back.
    large = client.put(np.zeros(MiB, np.uint8))
    batching.delete(large)
    assert batching.staged_for() is None
    assert ts.ask("value", large)["error"] == "ObjectNotFoundError"
    # What is staged when the client closes is committed.
    batching.delete(keys[-1])
    assert ts.ask("value", keys[-1])["value"] == lmdb_store.BATCH_MAX_DELETES
    batching.close()
    # The commits counted down the bytes as well (in C, improv_count_freed), to nothing, as TypeScript reads it.
    assert ts.ask("usage")["objects"] == 0
    assert ts.ask("usage")["usedBytes"] == 0


def test_batch_deletes_takes_true_or_false(store):
    ts, _ = store
    with pytest.raises(TypeError, match=r"connect\(batch_deletes=\.\.\.\) takes True or False, not 'yes'; True commits"):
        lmdb_store.connect(ts.descriptor, batch_deletes="yes")


def test_a_batched_delete_of_a_value_evicted_meanwhile_commits_cleanly(open_store):
    ts = open_store()
    client = open_store.connect(ts)
    batching = open_store.connect(ts, batch_deletes=True)
    key = client.put(np.ones(8, np.float32))
    batching.delete(key)
    client.delete(key)  # another client frees it first
    batching.flush()
    assert batching.usage() == {"used_bytes": 0, "capacity_bytes": 64 * MiB, "objects": 0}


def test_a_sink_that_reads_then_deletes_frees_everything_once(open_store):
    """The delete of a key just read commits without another lookup; a value another client freed
    between the read and the commit is not counted twice."""
    ts = open_store()
    client = open_store.connect(ts)
    sink = open_store.connect(ts, batch_deletes=True)
    # One value stays, so a double count would show (the counters never go below zero).
    client.put(np.zeros(64, np.uint8))
    kept = client.usage()
    frames = [client.put(np.full((2, 3), index, np.uint16)) for index in range(3)]
    scalar = client.put({"n": 7})
    big = client.put(np.arange(40_000, dtype=np.float32))  # past the one-copy read
    for index, key in enumerate(frames):
        frame = sink.get(key)
        assert frame.shape == (2, 3) and frame.dtype == np.uint16 and int(frame[1, 2]) == index
        frame[0, 0] = 99  # its own copy: writable, and the store keeps what was put
        assert sink.delete(key) is True
    assert client.get(frames[0])[0, 0] == 0
    assert sink.get(scalar) == {"n": 7}
    client.delete(scalar)  # freed by another client before the sink's delete commits
    assert sink.delete(scalar) is True
    assert np.array_equal(sink.get(big), np.arange(40_000, dtype=np.float32))
    assert sink.delete(big) is True
    sink.flush()
    assert client.usage() == kept
    assert ts.ask("usage") == {"usedBytes": kept["used_bytes"], "capacityBytes": 64 * MiB, "objects": 1}
    for key in [*frames, scalar, big]:
        assert ts.ask("value", key)["error"] == "ObjectNotFoundError"


def test_batched_deletes_of_keys_read_in_any_order_free_those_and_only_those(open_store):
    """The commit deletes through one cursor per database, which finds a key on the page of the last one
    without a search from the root: keys in store order, shuffled, and neighbours of kept ones."""
    ts = open_store()
    client = open_store.connect(ts)
    sink = open_store.connect(ts, batch_deletes=True)
    kept_usage = client.usage()
    keys = [client.put(np.full(100, index % 256, np.uint8)) for index in range(600)]
    kept = set(keys[::7])
    gone = [key for key in keys if key not in kept]
    order = gone[:200] + random.Random(7).sample(gone[200:], len(gone) - 200)
    for key in order:
        sink.get(key)
        assert sink.delete(key) is True
    sink.flush()
    for index, key in enumerate(keys):
        if key in kept:
            assert int(client.get(key)[0]) == index % 256
        else:
            assert not client.has(key)
    for key in kept:
        client.delete(key)
    assert client.usage() == kept_usage


class StepByStep:
    """Makes a client's improv_get (improv_lmdb.c) leave every read to the step-by-step path, and counts
    the reads the one call did itself."""

    def __init__(self, client, off):
        self.done = 0
        one_call = client._improv_get

        def improv_get(*args):
            if off:
                return 1  # IMPROV_SLOW
            code = one_call(*args)
            self.done += code == _liblmdb.IMPROV_OK
            return code

        client._improv_get = improv_get


def test_the_one_call_read_agrees_with_the_step_by_step_one(open_store):
    """Every value a sink reads in one call into C comes back as the step-by-step read gives it: dtype,
    shape, bytes, writable, its own; msgpack values too; and a delete after either frees the same."""
    ts = open_store()
    writer = open_store.connect(ts)
    fast = open_store.connect(ts, batch_deletes=True)
    slow = open_store.connect(ts, batch_deletes=True)
    fast_calls, _ = StepByStep(fast, off=False), StepByStep(slow, off=True)
    values = [random_array(dtype, shape, seed=i) for i, dtype in enumerate(DTYPES.values()) for shape in SHAPES]
    values += [np.zeros(lmdb_store.SMALL_VALUE_BYTES // 8 - 6, np.float64)]  # just within the one copy
    values += [{"n": 7, "list": [1.5, None, "x"]}, "text", 12, None, [], b"\x00\x01"]
    keys = [writer.put(value) for value in values]
    for value, key in zip(values, keys):
        for reader in (fast, slow):
            back = reader.get(key)
            if isinstance(value, np.ndarray):
                assert (back.dtype, back.shape) == (value.dtype, value.shape)
                assert back.tobytes() == value.tobytes()
                assert back.flags.writeable and back.flags.c_contiguous
                if back.size:
                    back.reshape(-1)[0] = 1  # its own copy: the next reader gets what was put
            else:
                assert back == value
        # What the delete that follows uses: the key, its charge and its record's sequence.
        assert fast._last_read == slow._last_read
        assert fast._last_read[0] == key
    # All but the first, which opens the client's read transaction (step by step).
    assert fast_calls.done == len(values) - 1
    for key in keys:
        fast.get(key)  # then the delete uses what this read kept
        assert fast.delete(key) is True
    fast.flush()
    assert writer.usage() == {"used_bytes": 0, "capacity_bytes": 64 * MiB, "objects": 0}
    for database in ("values", "objects", "order"):
        assert entries(writer, database) == [], database


def test_the_one_call_read_leaves_what_it_does_not_do_to_the_steps(open_store):
    """TTLs, big values, missing keys, corrupt records and a closed run go the step-by-step way, which
    words the error, as before the one call."""
    ts = open_store(keep=True)
    writer = open_store.connect(ts)
    reader = open_store.connect(ts, batch_deletes=True)
    calls = StepByStep(reader, off=False)
    timed = writer.put(np.arange(3, dtype=np.int32), ttl_ms=3_600_000)
    assert reader.get(timed).tolist() == [0, 1, 2]
    assert len(entries(writer, "holds")) == 1  # held: the step-by-step read did it
    big = writer.put(np.arange(lmdb_store.SMALL_VALUE_BYTES, dtype=np.uint8))
    assert np.array_equal(reader.get(big), np.arange(lmdb_store.SMALL_VALUE_BYTES, dtype=np.uint8))
    assert calls.done == 0
    with pytest.raises(ObjectNotFoundError, match="never stored"):
        reader.get(f"{ts.descriptor['keyPrefix']}zz.zz")
    # A value whose header lies about its length: the same error as the step-by-step read's.
    key = writer.put(np.arange(4, dtype=np.uint16))
    broken = raw(writer, "values", key.encode())
    broken = broken[:8] + struct.pack("<Q", 100) + broken[16:]

    def corrupt(txn):
        txn.put(writer._db["values"], key.encode(), broken)

    writer._write("test", corrupt)
    with pytest.raises(StoreUnavailableError, match="shorter than its header says"):
        reader.get(key)
    assert calls.done == 0
    # An object record whose value header is not one: a delete says so, as before the one call.
    record = raw(writer, "objects", key.encode())
    writer._write("test", lambda txn: txn.put(writer._db["objects"], key.encode(), record[:48] + b"JUNK" + record[52:]))
    with pytest.raises(RuntimeError, match="no value header \\(bad magic\\)"):
        reader.delete(key)
    fine = writer.put(np.arange(4, dtype=np.uint16))
    assert reader.get(fine).tolist() == [0, 1, 2, 3] and calls.done == 1
    ts.close()  # the run ends (the files stay): a new snapshot, a session record that is not ours
    with pytest.raises(StoreUnavailableError, match="was closed \\(the run that opened it ended\\)"):
        reader.get(fine)
    assert calls.done == 1


def test_deletes_of_keys_read_and_not_read_commit_together(open_store):
    ts = open_store()
    writer = open_store.connect(ts)
    sink = open_store.connect(ts, batch_deletes=True)
    kept = writer.put(np.zeros(5, np.uint8))
    kept_usage = writer.usage()
    read = [writer.put(np.full(3, i, np.int16)) for i in range(5)]
    unread = [writer.put(np.full(2, i, np.float32)) for i in range(3)]
    timed = writer.put([1], ttl_ms=3_600_000)
    # A read that holds (a TTL) writes, and any write commits what is staged: first, then.
    assert sink.get(timed) == [1]
    for index, key in enumerate(read):
        assert sink.get(key).tolist() == [index] * 3
        if index == 2:
            assert writer.delete(key) is True  # gone before the sink's delete commits
        assert sink.delete(key) is True
    for key in unread:
        assert sink.delete(key) is True
    assert sink.delete(timed) is True
    assert len(sink._staged) == 9
    # Read or not, a value with nothing else to remove is staged with its record's sequence (one
    # call at the commit); the one with a TTL is looked up again then, its expiry entry and holds too.
    assert [sequence is None for _, sequence, _ in sink._staged.values()] == [False] * 8 + [True]
    assert len(sink._staged_read.keys) == len(sink._staged_read.sequences) == len(sink._staged_read.charged) == 8
    sink.flush()
    assert writer.usage() == kept_usage
    assert [value for _, value in entries(writer, "order")] == [kept.encode()]
    assert entries(writer, "expiry") == [] and entries(writer, "holds") == []
    assert ts.ask("usage") == {"usedBytes": kept_usage["used_bytes"], "capacityBytes": 64 * MiB, "objects": 1}


def test_clients_get_ids_of_their_own_and_keys_never_collide(store, open_store):
    ts, first = store
    second = open_store.connect(ts)
    assert second.client_id != first.client_id
    assert first.owner_id is None
    keys = {first.put(index) for index in range(50)} | {second.put(index) for index in range(50)}
    assert len(keys) == 100
    assert {second.get(key) for key in keys} == set(range(50))


# ---- usage, capacity, eviction, TTL, holds ---------------------------------------------------------


def test_usage_counts_header_payload_and_index_and_agrees_with_typescript(store):
    ts, client = store
    start = client.usage()
    assert start == {"used_bytes": 0, "capacity_bytes": 64 * MiB, "objects": 0}
    a = client.put(np.zeros((4, 5), np.float32))  # 80 bytes + 16 + 2 * 8 header + 64 index
    b = client.put([1, 2, 3])  # 4 bytes of msgpack + 16 + 64
    assert client.usage() == {"used_bytes": 80 + 32 + 64 + 4 + 16 + 64, "capacity_bytes": 64 * MiB, "objects": 2}
    seen = ts.ask("usage")
    assert seen == {"usedBytes": 260, "capacityBytes": 64 * MiB, "objects": 2}
    client.delete(a)
    client.delete(b)
    assert client.usage() == start


def test_store_full_error_at_capacity_and_room_again_after_a_delete(open_store):
    ts = open_store(size_bytes=64 * KiB)
    client = open_store.connect(ts)
    keys = []
    with pytest.raises(StoreFullError) as caught:
        for _ in range(10):
            keys.append(client.put(np.zeros(16 * KiB, np.uint8)))
    assert len(keys) == 3  # 3 × (16 KiB + 24 + 64) fit in 64 KiB, a fourth does not
    message = str(caught.value)
    assert message.startswith(
        "lmdb store is full: a value of 16.00 KiB needs 16.09 KiB (16472 bytes with its header and index), "
        "and 15.74 KiB (16120 bytes) of 64.00 KiB is free. Raise settings.store_size"
    )
    assert "Raise settings.store_size" in message
    used = client.usage()
    assert used["objects"] == 3 and used["used_bytes"] == 3 * 16472
    assert ts.ask("usage")["usedBytes"] == used["used_bytes"]
    client.delete(keys[0])
    client.put(np.zeros(16 * KiB, np.uint8))
    assert client.usage()["objects"] == 3


def test_eviction_frees_the_oldest_read_values_never_held_unread_or_in_flight_ones(open_store):
    ts = open_store(size_bytes=64 * KiB, eviction="oldest")
    client = open_store.connect(ts)
    block = np.zeros(8 * KiB, np.uint8)
    keys = [client.put(block + index) for index in range(6)]  # 6 × 8280 = 49 680 bytes: below 95 %
    for key in keys:
        client.get(key)
    client.release()
    client.get(keys[1])  # held
    client.track([keys[2]], 1)  # a message carrying it waits in a link
    more = [client.put(block) for _ in range(2)]  # the second one crosses 95 %: evict down to 85 %
    assert not client.has(keys[0])
    with pytest.raises(ObjectNotFoundError, match="was evicted"):
        client.get(keys[0])
    assert ts.ask("array", keys[0])["error"] == "ObjectNotFoundError"
    assert client.has(keys[1]) and client.has(keys[2])
    assert all(client.has(key) for key in more)
    assert client.get(keys[1]).tolist() == (block + 1).tolist()

    # Now nothing can go: unread values (the two new ones and more), held and in flight ones.
    with pytest.raises(StoreFullError) as caught:
        for _ in range(10):
            more.append(client.put(block))
    message = str(caught.value)
    assert "eviction (settings.store_eviction: oldest) could not free enough" in message
    assert "1 held by a reader" in message and "not read yet" in message and "1 waiting in a link" in message
    usage = client.usage()
    seen = ts.ask("usage")
    assert usage == {"used_bytes": seen["usedBytes"], "capacity_bytes": 64 * KiB, "objects": seen["objects"]}


def test_a_value_past_its_ttl_reads_as_expired_unless_held(open_store):
    # The TypeScript run's reaper is kept out of the way (once an hour): Python's reads free what expired.
    ts = open_store(reap_interval_ms=3_600_000)
    client = open_store.connect(ts)
    kept = client.put(np.arange(3, dtype=np.int8), ttl_ms=60_000)
    gone = client.put("short", ttl_ms=1)
    held = client.put("held", ttl_ms=1000)
    assert client.get(held) == "held"  # read (and held) well before its TTL passes
    time.sleep(1.1)
    assert client.usage()["objects"] == 3
    assert not client.has(gone)  # has() only looks
    assert client.usage()["objects"] == 3
    with pytest.raises(ObjectNotFoundError, match="expired"):
        client.get(gone)  # a read frees it
    assert client.usage()["objects"] == 2
    assert raw(client, "gone", gone.encode())[:1] == b"\x02"  # a tombstone: expired
    assert client.get(held) == "held"  # this client holds it: still readable
    assert client.get(kept).tolist() == [0, 1, 2]
    client.release(held)
    assert not client.has(held)
    with pytest.raises(ObjectNotFoundError, match="expired"):
        client.get(held)
    assert client.usage()["objects"] == 1
    assert ts.ask("value", held)["error"] == "ObjectNotFoundError"
    with pytest.raises(ValueError, match="positive number"):
        client.put(1, ttl_ms=0)
    with pytest.raises(TypeError, match="number of milliseconds"):
        client.put(1, ttl_ms="1")


def raw(client, database, key):
    """The bytes under `key` in one of the store's databases (None when absent)."""
    return client._snapshot(lambda txn: txn.get(client._db[database], key))


def entries(client, database):
    """Every (key, value) of one of the store's databases, in key order."""

    def read(txn):
        return list(txn.range(client._db[database]))

    return client._snapshot(read)


def f64(*values):
    return struct.pack(f"<{len(values)}d", *values)


def test_the_records_follow_the_documented_layout(open_store):
    ts = open_store(reap_interval_ms=3_600_000)
    client = open_store.connect(ts)
    counters = {name.decode(): value for name, value in entries(client, "meta") if len(value) == 8}
    before = time.time_ns() // 1_000_000
    array = np.arange(6, dtype="<i2").reshape(2, 3)
    key = client.put(array, ttl_ms=1)
    after = time.time_ns() // 1_000_000
    key_bytes = key.encode()
    sequence = struct.unpack("<d", counters["nextSequence"])[0] + 1
    # The value: magic, version 1, dtype code 4 (int16), ndim 2, flags 0, payload length, shape, payload.
    header = b"IMPV" + bytes([1, 4, 2, 0]) + struct.pack("<QQQ", 12, 2, 3)
    assert raw(client, "values", key_bytes) == header + array.tobytes()
    record = raw(client, "objects", key_bytes)
    seq, charged, expires_at, in_flight, flags, created = struct.unpack_from("<6d", record)
    assert (seq, charged, in_flight, flags) == (sequence, 12 + 32 + 64, 0, 0)
    assert before <= created <= after and expires_at == created + 1
    assert record[48:] == header
    assert raw(client, "order", struct.pack(">Q", int(sequence))) == key_bytes
    assert raw(client, "expiry", struct.pack(">QQ", int(expires_at), int(sequence))) == key_bytes
    assert raw(client, "meta", b"nextSequence") == f64(sequence)
    assert raw(client, "meta", b"usedBytes") == f64(charged)
    assert raw(client, "meta", b"objects") == f64(1)
    time.sleep(0.01)
    with pytest.raises(ObjectNotFoundError, match="expired"):
        client.get(key)
    for database in ("values", "objects", "order", "expiry", "holds"):
        assert entries(client, database) == [], database
    tombstone = struct.unpack("<d", counters["nextTombstone"])[0] + 1
    assert raw(client, "gone", key_bytes) == b"\x02" + f64(tombstone)
    assert raw(client, "gone_order", struct.pack(">Q", int(tombstone))) == key_bytes
    assert raw(client, "meta", b"usedBytes") == f64(0)
    # A read of a value its TTL (or eviction) could free marks the record read (flag 1) and holds it.
    kept = client.put("kept", ttl_ms=3_600_000)
    client.get(kept)
    assert struct.unpack_from("<d", raw(client, "objects", kept.encode()), 32)[0] == 1
    hold_key = kept.encode() + b"\0" + struct.pack(">I", client.client_id)
    assert [hold for hold, _ in entries(client, "holds")] == [hold_key]
    client.track([kept], 2)
    assert struct.unpack_from("<d", raw(client, "objects", kept.encode()), 24)[0] == 2
    # Sequences past 255 still sort: the order database lists puts oldest first.
    keys = [client.put(index) for index in range(300)]
    listed = [value.decode() for _, value in entries(client, "order")]
    assert listed == [kept, *keys]


def test_holds_are_entries_of_the_holds_database_ended_by_release(open_store):
    client = open_store.connect(open_store(eviction="oldest"))
    key = client.put([1])
    holds_key = key.encode() + b"\0" + client.client_id.to_bytes(4, "big")

    def hold():
        return client._snapshot(lambda txn: txn.get(client._db["holds"], holds_key))

    before = time.time_ns() // 1_000_000
    client.get(key)
    after = time.time_ns() // 1_000_000
    until = hold()
    assert until is not None and len(until) == 8
    assert before + 60_000 <= np.frombuffer(until, "<f8")[0] <= after + 60_000  # the lease: leaseMs from the read
    client.release(key)
    assert hold() is None
    client.get(key)
    client.release()
    assert hold() is None
    with pytest.raises(TypeError, match="integer delta"):
        client.track([key], 0.5)


def test_a_read_holds_only_where_eviction_or_a_ttl_could_free_the_value(store):
    _, client = store  # no eviction

    def holds():
        return entries(client, "holds")

    def read_flag(key):
        return int(struct.unpack_from("<d", raw(client, "objects", key.encode()), 32)[0]) & 1

    plain = client.put([1])
    timed = client.put([2], ttl_ms=60_000)
    assert client.get(plain) == [1]
    assert holds() == [] and read_flag(plain) == 0  # only a delete can free it: the read wrote nothing
    assert client.get(timed) == [2]
    assert len(holds()) == 1 and read_flag(timed) == 1
    client.release()
    assert holds() == []


# ---- lifetimes ------------------------------------------------------------------------------------


def test_a_closed_client_and_a_closed_store_are_unavailable(open_store):
    ts = open_store()
    client = open_store.connect(ts)
    other = open_store.connect(ts)
    key = client.put(1)
    client.close()
    client.close()
    with pytest.raises(StoreUnavailableError, match="was closed; connect a new one"):
        client.get(key)
    assert other.get(key) == 1
    ts.close()
    with pytest.raises(StoreUnavailableError, match="is gone"):
        other.get(key)
    with pytest.raises(StoreUnavailableError, match="there is no store"):
        lmdb_store.connect(ts.descriptor)


def test_one_call_reads_check_the_files_as_often_as_typescript_reads_do(open_store):
    """A read within READ_FILES_CHECK_MS of the last look at the files reads without another one (as a
    TypeScript read does); the next one after that sees them gone."""
    ts = open_store()
    client = open_store.connect(ts)
    key = client.put(np.arange(3, dtype=np.int32))
    assert client.get(key).tolist() == [0, 1, 2]
    data = os.path.join(ts.path, "data.mdb")
    os.rename(data, data + ".away")
    try:
        client._get_context.check_every = 2**63  # the last look stands
        assert client.get(key).tolist() == [0, 1, 2]
        client._get_context.check_every = 0  # it is due
        with pytest.raises(StoreUnavailableError, match="is gone"):
            client.get(key)
    finally:
        os.rename(data + ".away", data)


def test_a_reader_notices_the_end_of_the_run_of_a_kept_store(open_store):
    """Reads of one snapshot look at the session once; the run's end (its files stay) is a new one."""
    ts = open_store(keep=True)
    client = open_store.connect(ts)
    key = client.put(np.arange(4, dtype=np.int32))
    for _ in range(3):
        assert client.get(key).tolist() == [0, 1, 2, 3]
    ts.close()
    assert os.path.exists(os.path.join(ts.path, "data.mdb"))
    with pytest.raises(StoreUnavailableError, match="was closed \\(the run that opened it ended\\)"):
        client.get(key)


def test_a_descriptor_of_another_session_is_refused(store):
    ts, _ = store
    stale = dict(ts.descriptor, session="someone-else")
    with pytest.raises(StoreUnavailableError, match="was closed \\(the run that opened it ended\\)"):
        lmdb_store.connect(stale)


def test_connect_needs_an_lmdb_descriptor(store):
    ts, _ = store
    with pytest.raises(TypeError, match="not an open lmdb store"):
        lmdb_store.connect({"driver": "redis"})
    with pytest.raises(TypeError, match="not an open lmdb store"):
        lmdb_store.connect(dict(ts.descriptor, keyPrefix=None))
    without_package = {k: v for k, v in ts.descriptor.items() if k != "lmdbPackage"}
    with pytest.raises(StoreUnavailableError, match="lmdbPackage"):
        lmdb_store.connect(without_package)


OTHER_PROCESS = """
import json, sys
sys.path.insert(0, sys.argv[1])
try:
    import lmdb  # py-lmdb and its LMDB 0.9 loaded first: ours must still be the one used
except ImportError:
    pass
import numpy as np
from improv_ts.stores.lmdb import connect
client = connect(json.loads(sys.argv[2]))
shared = client.get(sys.argv[3])
print(json.dumps({"shared": shared.tolist(), "key": client.put(np.full(3, 7, np.uint32)), "id": client.client_id}))
client.close()
"""


def test_another_python_process_shares_the_store_even_with_py_lmdb_loaded(store):
    ts, client = store
    shared = client.put(np.array([1.5, -2.5]))
    result = subprocess.run(
        [sys.executable, "-c", OTHER_PROCESS, str(ROOT / "packages" / "python"), json.dumps(ts.descriptor), shared],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["shared"] == [1.5, -2.5]
    assert seen["id"] != client.client_id
    assert client.get(seen["key"]).tolist() == [7, 7, 7]
    assert ts.ask("array", seen["key"])["dtype"] == "uint32"


# ---- building LMDB --------------------------------------------------------------------------------


def test_no_c_compiler_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(_liblmdb, "_cache_folders", lambda: iter([str(tmp_path)]))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv("CC", raising=False)
    with pytest.raises(_liblmdb.CompilerMissingError) as caught:
        _liblmdb._build(str(LMDB_PACKAGE))
    message = str(caught.value)
    assert "no C compiler (cc or gcc)" in message
    assert "sudo apt-get install gcc" in message
    assert "store: redis" in message


BUILD = """
import ctypes, sys
sys.path.insert(0, sys.argv[1])
from improv_ts.stores import _liblmdb
library = _liblmdb.load(sys.argv[2])
print(_liblmdb._build(sys.argv[2]))
print(library.mdb_version(None, None, None).decode())
"""


@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None, reason="no C compiler")
def test_two_processes_building_at_once_both_get_a_whole_library(tmp_path):
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path))
    command = [sys.executable, "-c", BUILD, str(ROOT / "packages" / "python"), str(LMDB_PACKAGE)]
    builders = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)
    ]
    outputs = [builder.communicate(timeout=300) for builder in builders]
    for builder, (_, stderr) in zip(builders, outputs):
        assert builder.returncode == 0, stderr
    paths = [stdout.splitlines()[0] for stdout, _ in outputs]
    assert paths[0] == paths[1]
    assert os.listdir(tmp_path / "improv") == [os.path.basename(paths[0])]
    name = os.path.basename(paths[0])
    assert name.startswith("liblmdb-3.") and name.endswith(".so")
    # lmdb-js's LMDB (0.9.90, data format 2), not the system's 0.9.2x.
    assert all(stdout.splitlines()[1].startswith("LMDB 0.9.90") for stdout, _ in outputs)


def test_the_library_name_follows_improvs_own_c_source(tmp_path, monkeypatch):
    """A library built before improv_lmdb.c changed (or before there was one) has another name: it is
    never taken for this version's."""
    names = [_liblmdb.library_name(str(LMDB_PACKAGE))]
    source = tmp_path / "improv_lmdb.c"
    source.write_text(Path(_liblmdb.OWN_SOURCE).read_text() + "/* another version */\n")
    monkeypatch.setattr(_liblmdb, "OWN_SOURCE", str(source))
    names.append(_liblmdb.library_name(str(LMDB_PACKAGE)))
    assert names[0] != names[1]
    assert all(name.startswith("liblmdb-3.") and name.endswith(".so") for name in names)
    monkeypatch.setattr(_liblmdb, "OWN_SOURCE", str(tmp_path / "missing.c"))
    with pytest.raises(FileNotFoundError, match="missing.c.*the improv_ts package is incomplete"):
        _liblmdb.library_name(str(LMDB_PACKAGE))


OLD_LIBRARY = """
import ctypes, os, subprocess, sys
sys.path.insert(0, sys.argv[1])
from improv_ts.stores import _liblmdb
folder = os.path.join(os.environ["XDG_CACHE_HOME"], "improv")
os.makedirs(folder)
name = sys.argv[3]
sources = os.path.join(sys.argv[2], _liblmdb.SOURCE_DIR)
# A library of LMDB alone, as improv_ts built it before improv_lmdb.c, under this version's name.
subprocess.run(["cc", *_liblmdb.CFLAGS, "-o", os.path.join(folder, name),
                *(os.path.join(sources, s) for s in _liblmdb.SOURCES), *_liblmdb.LIBS], check=True)
assert not hasattr(ctypes.CDLL(os.path.join(folder, name)), "improv_get")
"""

LOAD = """
import sys
sys.path.insert(0, sys.argv[1])
from improv_ts.stores import _liblmdb
library = _liblmdb.load(sys.argv[2])
print(_liblmdb._build(sys.argv[2]))
print(all(hasattr(library, name) for name in _liblmdb.OWN_SYMBOLS))
"""


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler (cc)")
def test_a_cached_library_without_improvs_functions_is_built_again(tmp_path):
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path))
    python = str(ROOT / "packages" / "python")
    first = subprocess.run(
        [sys.executable, "-c", LOAD, python, str(LMDB_PACKAGE)], env=env, capture_output=True, text=True, timeout=300
    )
    assert first.returncode == 0, first.stderr
    path = first.stdout.splitlines()[0]
    os.unlink(path)
    os.rmdir(os.path.dirname(path))
    old = subprocess.run(
        [sys.executable, "-c", OLD_LIBRARY, python, str(LMDB_PACKAGE), os.path.basename(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert old.returncode == 0, old.stderr
    again = subprocess.run(
        [sys.executable, "-c", LOAD, python, str(LMDB_PACKAGE)], env=env, capture_output=True, text=True, timeout=300
    )
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == [path, "True"]
    assert os.listdir(os.path.dirname(path)) == [os.path.basename(path)]
