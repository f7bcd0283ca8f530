"""improv's msgpack codec in Python: the extension types of `@improv/core`'s codec.ts."""

import datetime

import msgpack
import numpy as np
import pytest

from improv_ts._codec import DTYPES, KINDS, array_bytes, dtype_code, packb, unpackb


@pytest.mark.parametrize("code", range(1, 12))
def test_every_dtype_round_trips_bit_exact(code):
    dtype = np.dtype(DTYPES[code])
    raw = np.random.default_rng(code).integers(0, 256, size=dtype.itemsize * 7, dtype=np.uint8).tobytes()
    array = np.frombuffer(raw, dtype)
    data = packb({"a": array})
    # On the wire: extension type code - 1 with the raw bytes, as TypeScript writes a typed array.
    ext = msgpack.unpackb(data, raw=False, ext_hook=lambda c, d: (c, d))["a"]
    if KINDS[code] != "uint8clamped":
        assert ext == (dtype_code(array) - 1, raw)
    back = unpackb(data)["a"]
    assert back.dtype == dtype and back.tobytes() == raw


def test_arrays_are_sent_flat_and_come_back_owned():
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    back = unpackb(packb(array))
    assert back.shape == (12,) and back.tobytes() == array.tobytes()
    back[0] = 99  # a copy of its own, writable
    assert back[0] == 99


def test_big_endian_and_bool_arrays_are_sent_as_little_endian_bytes():
    big = np.arange(4, dtype=">i4")
    assert unpackb(packb(big)).tolist() == [0, 1, 2, 3]
    assert bytes(array_bytes(np.array([True, False]))) == b"\x01\x00"


def test_a_bool_array_comes_back_a_bool_array_as_extension_type_14():
    mask = np.array([True, False, True])
    data = packb({"mask": mask})
    assert b"\xc7\x03\x0e\x01\x00\x01" in data  # ext 8: 3 bytes of type 14
    back = unpackb(data)["mask"]
    assert back.dtype == np.bool_ and back.tolist() == [True, False, True]


def test_a_dtype_typescript_has_no_array_for_is_a_clear_error():
    with pytest.raises(TypeError, match=r"dtype complex128 has no TypeScript typed array"):
        packb(np.zeros(2, complex))


def test_maps_sets_bytes_dates_and_64_bit_integers():
    when = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    value = {"set": {1, 2}, "bytes": b"\x00\x01", "when": when, "big": 2**63 + 1, "neg": -(2**63), "n": np.int64(5)}
    back = unpackb(packb(value))
    assert back == {"set": {1, 2}, "bytes": b"\x00\x01", "when": when, "big": 2**63 + 1, "neg": -(2**63), "n": 5}
    # TypeScript's Map (extension 11) with keys that are not strings.
    assert unpackb(msgpack.packb(msgpack.ExtType(11, msgpack.packb([[1, "a"], [[2, 3], "b"]])))) == {1: "a", (2, 3): "b"}


def test_a_set_of_sets_or_maps_from_typescript_comes_back_hashable():
    # TypeScript's new Set([new Set([1]), new Map([[1, 2]])]): extension 12 holding extensions 12 and 11.
    inner_set = msgpack.ExtType(12, msgpack.packb([1]))
    inner_map = msgpack.ExtType(11, msgpack.packb([[1, 2]]))
    back = unpackb(msgpack.packb(msgpack.ExtType(12, msgpack.packb([inner_set, inner_map]))))
    assert back == {frozenset({1}), ((1, 2),)}


def test_values_msgpack_cannot_carry_are_a_clear_error():
    with pytest.raises(TypeError, match=r"cannot send or store a value of type object"):
        packb(object())


def test_an_empty_multidimensional_array_and_an_integer_past_64_bits():
    assert bytes(array_bytes(np.zeros((3, 0, 2), np.float32))) == b""
    with pytest.raises(OverflowError, match=r"does not fit in 64 bits"):
        packb(2**64)


def test_a_typed_array_whose_bytes_are_no_whole_number_of_elements_is_a_clear_error():
    # Extension type 8 is a float64 array (dtype code 9): 12 bytes are a corrupt message.
    body = msgpack.packb({"d": msgpack.ExtType(8, b"\0" * 12)}, use_bin_type=True)
    with pytest.raises(ValueError, match=r"corrupt float64 array \(12 bytes is not a multiple of 8\)"):
        unpackb(body)
    # A whole number of them is an array of its own memory, writable.
    value = unpackb(msgpack.packb({"d": msgpack.ExtType(8, b"\0" * 16)}, use_bin_type=True))["d"]
    assert value.dtype == np.float64 and value.tolist() == [0.0, 0.0] and value.flags.writeable
