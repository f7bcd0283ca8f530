"""The errors of improv's Python side, named as `@improv/core`'s errors are."""

import queue


class ImprovError(Exception):
    """Base of improv's own errors."""


class ObjectNotFoundError(ImprovError, KeyError):
    """A store key holds no value (never put, deleted, evicted, expired, or of another store)."""

    def __str__(self):
        return str(self.args[0]) if self.args else "object not found"


class StoreFullError(ImprovError):
    """A put would take the store past its capacity (`settings.store_size`)."""


class StoreUnavailableError(ImprovError):
    """The store cannot be reached (its run ended, its server is gone, its files were removed)."""


class LinkClosedError(ImprovError):
    """The link was closed (its actor quit, or the run ended); it cannot be used again."""


class LinkSourcesGoneError(ImprovError):
    """`get()` on a link whose every source is gone (their actors failed or died) with no message left."""


class LinkMessageTooLargeError(ImprovError, ValueError):
    """A message is larger than the link can carry."""


#: What `link.get(timeout=...)` raises when no message came in time: `queue.Empty`, as improv's links do.
Empty = queue.Empty


class _Quitting(BaseException):
    """Raised by `Actor.sleep()` when the pipeline quits: the step unwinds as a step in a closed link does.
    A BaseException, so an actor's `except Exception` does not hold it; the actor host ends the step quietly."""
