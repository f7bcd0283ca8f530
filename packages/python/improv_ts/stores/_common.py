"""What the Python store clients (lmdb, redis) share: their errors worded as `@improv/core`'s, and
the checks of what a put is given, so both say the same thing the same way."""

import math
from decimal import ROUND_HALF_UP, Decimal

import numpy as np

from .. import _codec
from ..errors import ObjectNotFoundError

#: Most dimensions a stored array has (as the TypeScript drivers allow).
MAX_DIMENSIONS = 32
#: Most elements along one dimension, and in all (the layouts' u32 counts).
MAX_ELEMENTS = 2**32


def object_not_found(driver, key, reason):
    """The ObjectNotFoundError of `@improv/core`'s `objectNotFound`, word for word (`reason`:
    evicted, expired, foreign, or anything else for a key deleted or never stored)."""
    if reason == "evicted":
        message = (
            f'{driver} store: the value under key "{key}" was evicted (settings.store_eviction: oldest) to make room, '
            "after it had been read and was no longer held. Hold a value by reading it in the runStep that uses it, "
            "raise settings.store_size, or turn eviction off"
        )
    elif reason == "expired":
        message = (
            f'{driver} store: the value under key "{key}" expired (its time to live, ttlMs, passed before it was '
            "read). Give it a longer time to live, or read it sooner"
        )
    elif reason == "foreign":
        message = (
            f'{driver} store: key "{key}" is not a key of this store (it comes from another store or an earlier run); '
            "keys are only valid in the store that created them"
        )
    else:
        message = (
            f'{driver} store: no value under key "{key}": it was deleted, or never stored. A key stays readable until '
            "delete(key); keep it until every reader is done. Under fan-out (one message to several sinks) only one "
            "actor may delete it, or let the store free it: a time to live at put (ttlMs; ttl_ms in Python), or "
            "settings.store_eviction: oldest"
        )
    return ObjectNotFoundError(message)


def encode_value(driver, value):
    """The msgpack bytes of a value that is not an array, or a TypeError saying what can be stored."""
    try:
        return _codec.packb(value)
    except (ValueError, OverflowError) as error:  # a TypeError of the codec already says what to store
        raise TypeError(
            f"{driver} store: cannot store a value of type {type(value).__name__}: {error}. Store numpy arrays, or "
            "plain data that msgpack can encode (dicts, lists, strings, numbers, ints up to 64 bits, booleans, "
            "None, bytes, sets, datetimes)"
        ) from error


def check_ttl(driver, method, ttl_ms):
    """`ttl_ms` as a float of milliseconds (None: no time to live), or a TypeError/ValueError."""
    if ttl_ms is None:
        return None
    if isinstance(ttl_ms, bool) or not isinstance(ttl_ms, (int, float, np.integer, np.floating)):
        raise TypeError(f"{driver} store: {method}: ttl_ms must be a number of milliseconds, got {ttl_ms!r}")
    if not math.isfinite(ttl_ms) or not ttl_ms > 0:
        raise ValueError(f"{driver} store: {method}: ttl_ms must be a positive number of milliseconds, got {ttl_ms!r}")
    return float(ttl_ms)


def check_shape(driver, method, shape, length):
    """A shape as a list of ints within the layouts' limits; with `length`, its product must equal it."""
    try:
        shape = list(shape)
    except TypeError:
        raise TypeError(f"{driver} store: {method}: shape must be a sequence of lengths, got {shape!r}") from None
    text = ", ".join(str(size) for size in shape)
    if len(shape) > MAX_DIMENSIONS:
        raise ValueError(f"{driver} store: {method}: shape [{text}] has over {MAX_DIMENSIONS} dimensions")
    product = 1
    for size in shape:
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)):
            raise TypeError(f"{driver} store: {method}: every dimension of shape [{text}] must be an integer, got {size!r}")
        if not 0 <= size <= MAX_ELEMENTS:
            raise ValueError(
                f"{driver} store: {method}: every dimension of shape [{text}] must be an integer from 0 to 2^32, "
                f"got {size!r}"
            )
        product *= int(size)
    if length is not None and product != length:
        raise ValueError(
            f"{driver} store: {method}: shape [{text}] holds {product} elements but the array has {length}; pass a "
            "shape whose product is the array's size"
        )
    if product > MAX_ELEMENTS:
        raise ValueError(f"{driver} store: {method}: shape [{text}] holds over 2^32 elements")
    return [int(size) for size in shape]


def format_bytes(size):
    """`4.00 MiB`, `512 B`: sizes in messages, as the TypeScript drivers write them."""
    units = ["B", "KiB", "MiB", "GiB", "TiB"]
    value = size
    index = 0
    while value >= 1024 and index < len(units) - 1:
        value /= 1024
        index += 1
    if index == 0:
        return f"{js_number(size)} B"
    # JavaScript's toFixed(2) rounds halves up (Python's format rounds them to even).
    return f"{Decimal(value).quantize(Decimal('0.01'), ROUND_HALF_UP)} {units[index]}"


def js_number(value):
    """A number as JavaScript writes it in a template: no `.0` on whole numbers."""
    return int(value) if float(value).is_integer() else float(value)


def base36(number):
    """`number.toString(36)` of JavaScript: how keys write ids and counters."""
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while True:
        number, digit = divmod(number, 36)
        text = digits[digit] + text
        if number == 0:
            return text
