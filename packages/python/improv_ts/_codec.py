"""The msgpack codec of improv's messages and stored values, as `@improv/core`'s `codec.ts` defines it.

- Typed arrays travel as msgpack extension types 0..10, one per dtype code - 1, holding the raw
  little-endian bytes: a numpy array is sent as its flat data (a message keeps no shape; the store
  does), and one comes back as a 1-D array that owns its memory. A bool array (dtype code 12, one
  byte per element) travels as extension type 14: TypeScript reads it as a Uint8Array, Python as bool.
- 11 is a Map (a msgpack array of [key, value] pairs), 12 a Set (an array of items), 13 an
  ArrayBuffer (its bytes), -1 msgpack's own timestamp (a Date).
- 64-bit integers are plain msgpack integers: TypeScript reads one as a number when it is a safe
  integer (|n| <= 2**53 - 1) and as a bigint beyond, and writes its integral numbers beyond 32 bits
  (Date.now()) as 64-bit integers, so they arrive here as ints.
"""

import datetime
import functools

import msgpack
import numpy as np

#: numpy dtypes by improv dtype code (1..11); code 0 is "a msgpack value".
DTYPES = [None, "i1", "u1", "u1", "<i2", "<u2", "<i4", "<u4", "<f4", "<f8", "<i8", "<u8", "?"]
#: The kind names of `@improv/core` by dtype code.
KINDS = [None, "int8", "uint8", "uint8clamped", "int16", "uint16", "int32", "uint32", "float32", "float64", "bigint64", "biguint64", "bool"]
#: numpy's bool: a Uint8Array in TypeScript, a bool array here again.
BOOL_CODE = 12

_CODE_BY_DTYPE = {
    np.dtype("i1"): 1,
    np.dtype("u1"): 2,
    np.dtype("bool"): BOOL_CODE,
    np.dtype("<i2"): 4,
    np.dtype("<u2"): 5,
    np.dtype("<i4"): 6,
    np.dtype("<u4"): 7,
    np.dtype("<f4"): 8,
    np.dtype("<f8"): 9,
    np.dtype("<i8"): 10,
    np.dtype("<u8"): 11,
}

EXT_MAP = 11
EXT_SET = 12
EXT_ARRAY_BUFFER = 13
EXT_BOOL = 14


def dtype_code(array):
    """The improv dtype code (1..12) of a numpy array; TypeError for a dtype TypeScript has no typed array for."""
    dtype = array.dtype
    if dtype.byteorder == ">":
        dtype = dtype.newbyteorder("<")
    code = _CODE_BY_DTYPE.get(dtype)
    if code is None:
        raise TypeError(
            f"improv: a numpy array of dtype {array.dtype} has no TypeScript typed array; "
            "use bool, int8/16/32/64, uint8/16/32/64, float32 or float64 (e.g. array.astype(np.float32))"
        )
    return code


def array_bytes(array):
    """The array's data as little-endian, C-ordered bytes (a view where it already is)."""
    if array.dtype.byteorder == ">" or (array.dtype.byteorder == "=" and np.little_endian is False):
        array = array.astype(array.dtype.newbyteorder("<"))
    if array.dtype == np.bool_:
        array = array.view(np.uint8)
    # Flat first: memoryview cannot cast a view whose shape has a 0 in it, e.g. (3, 0, 2).
    return memoryview(np.ascontiguousarray(array).reshape(-1)).cast("B")


#: numpy's dtype of each dtype code (None for code 0), built once.
_NP_DTYPES = tuple(None if name is None else np.dtype(name) for name in DTYPES)


def array_from_bytes(code, data, shape=None):
    """A numpy array of dtype `code` over a copy of `data` (owned, aligned), with `shape` if given."""
    dtype = _NP_DTYPES[code]
    if len(data) % dtype.itemsize != 0:
        raise ValueError(f"msgpack: corrupt {KINDS[code]} array ({len(data)} bytes is not a multiple of {dtype.itemsize})")
    array = np.frombuffer(bytearray(data), dtype)
    return array if shape is None else array.reshape(shape)


def _default(value):
    if isinstance(value, np.ndarray):
        code = dtype_code(value)
        return msgpack.ExtType(EXT_BOOL if code == BOOL_CODE else code - 1, bytes(array_bytes(value)))
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (set, frozenset)):
        return msgpack.ExtType(EXT_SET, packb(list(value)))
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return msgpack.Timestamp.from_datetime(value)
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, int):
        raise OverflowError(f"improv: the integer {value} does not fit in 64 bits, which is what msgpack and TypeScript's bigints carry")
    raise TypeError(
        f"improv: cannot send or store a value of type {type(value).__name__}; use dicts, lists, strings, "
        "numbers, booleans, None, bytes, sets, datetimes and numpy arrays"
    )


def _hashable(value):
    if isinstance(value, list):
        return tuple(_hashable(item) for item in value)
    if isinstance(value, dict):
        return tuple((key, _hashable(item)) for key, item in value.items())
    if isinstance(value, set):
        return frozenset(_hashable(item) for item in value)
    return value


def _ext_hook(code, data):
    if 0 <= code <= 10:
        # array_from_bytes inline (it words the error): every typed array of a message comes through here.
        dtype = _NP_DTYPES[code + 1]
        if len(data) % dtype.itemsize != 0:
            return array_from_bytes(code + 1, data)
        return np.frombuffer(bytearray(data), dtype)
    if code == EXT_MAP:
        return {_hashable(key): value for key, value in unpackb(data)}
    if code == EXT_SET:
        return {_hashable(item) for item in unpackb(data)}
    if code == EXT_ARRAY_BUFFER:
        return bytes(data)
    if code == EXT_BOOL:
        return array_from_bytes(BOOL_CODE, data)
    if code == -1:
        return msgpack.Timestamp.from_bytes(data).to_datetime()
    return msgpack.ExtType(code, data)


def packb(value):
    """msgpack bytes of `value` with improv's extension types."""
    return msgpack.packb(value, default=_default, use_bin_type=True, datetime=False, strict_types=False)


#: `unpackb(data)`: the value of msgpack bytes with improv's extension types (maps with non-string keys
#: allowed). A partial, not a function: no Python frame of its own at every message a link decodes.
unpackb = functools.partial(msgpack.unpackb, ext_hook=_ext_hook, raw=False, strict_map_key=False, timestamp=3)
unpackb.__doc__ = "The value of msgpack bytes with improv's extension types (maps with non-string keys allowed)."
