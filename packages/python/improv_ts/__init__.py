"""improv_ts: Python actors for improv for TypeScript.

A pipeline's `.py` actors run in a Python process of their own, started by Nexus with this package
on their path: `improv_ts.Actor` is the base class, the links are `transport-zmq`'s, the store is
the pipeline's lmdb or redis store, and improv's own actor files run unchanged through the `improv`
compatibility package that ships beside this one.
"""

from .actor import Actor
from .errors import (
    Empty,
    LinkClosedError,
    LinkMessageTooLargeError,
    LinkSourcesGoneError,
    ObjectNotFoundError,
    StoreFullError,
    StoreUnavailableError,
)

__all__ = [
    "Actor",
    "Empty",
    "LinkClosedError",
    "LinkMessageTooLargeError",
    "LinkSourcesGoneError",
    "ObjectNotFoundError",
    "StoreFullError",
    "StoreUnavailableError",
]
