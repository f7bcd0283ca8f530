"""The base class of Python actors.

```python
from improv_ts import Actor

class Analysis(Actor):
    def setup(self):
        self.threshold = self.options.get("threshold", 3.0)

    def run_step(self):                      # runStep is accepted too; so is `async def`
        msg = self.q_in.get(timeout=0.1)     # raises queue.Empty on timeout
        frame = self.store.get(msg["key"])   # a numpy array with its dtype and shape
        self.q_out.put({"key": self.store.put(frame.mean(axis=0))})
```

An actor has `name`, `options` (its YAML keys besides package and class), `links` (by name, and each
link as an attribute: `self.q_in`), `store` (the pipeline's store) and `log` (a `logging.Logger`;
any `logging` record and anything printed reaches the pipeline's log); `publish(name, value)` sends a
value to the dashboard. `setup()`, `run_step()` and
`stop()` are called as for a TypeScript actor: setup once, run_step again and again while the
pipeline runs, stop when it stops.
"""

import logging
import time

from .errors import _Quitting


class Actor:
    """Subclass it, and define `run_step()` (and `setup()`/`stop()` when needed)."""

    def __init__(self, *args, **kwargs):
        pass

    @classmethod
    def _improv_create(cls, context):
        """Makes the instance for the actor host: the attributes first, so `__init__` can use them."""
        actor = cls.__new__(cls)
        actor._improv_attach(context)
        actor.__init__()
        return actor

    def _improv_attach(self, context):
        self.name = context["name"]
        self.options = dict(context["options"])
        self.links = dict(context["links"])
        self.store = context["store"]
        self.log = logging.getLogger(f"improv.actor.{self.name}")
        self._improv_loop = context.get("loop")
        self._improv_publisher = context.get("publisher")
        # Each link is also an attribute of the instance, where neither the class nor the attributes above
        # have its name (__getattr__ finds it then too): `self.q_in` at every step through __getattr__
        # cost a failed lookup and a Python call, a third of a queued message's get.
        for name, link in self.links.items():
            if name not in self.__dict__ and not hasattr(type(self), name):
                self.__dict__[name] = link

    def publish(self, name, value):
        """Sends `value` to whoever watches this actor's stream `name` (the dashboard draws it), without
        a link; while nobody watches it returns at once and keeps nothing. A number or a dict of numbers
        is a point of a time series (every point reaches the page); anything else (a 1-D numpy array: a
        line; a 2-D one: an image; `{"x": ..., "y": ...}`: a scatter) is copied, and the newest reaches
        the page, at most ~60 times a second. numpy scalars are numbers. A numpy array of a dtype
        TypeScript has no typed array for (float16, complex) is a TypeError, and arrays of more than
        48 MiB in one value a ValueError (publish a smaller view).

        ```python
        self.publish("dff", {"n0": 0.4, "n1": 0.1})
        if self.publishing:
            self.publish("frame", frame)   # a 2-D numpy array: an image
        ```"""
        publisher = self.__dict__.get("_improv_publisher")
        if publisher is not None:
            publisher.publish(name, value)

    @property
    def publishing(self):
        """True while somebody watches what this actor publishes: skip preparing values nobody sees."""
        publisher = self.__dict__.get("_improv_publisher")
        return publisher is not None and publisher.on

    def sleep(self, seconds):
        """Waits `seconds` (0: none) while the process goes on serving Nexus — unlike `time.sleep`,
        which holds every signal back until it returns. Like a link call, it is a place where pause
        and stop park the step (it goes on after run or resume) and where quit ends it (the rest of
        the step does not run).
        Changes this actor made to shared memory (a SharedArrayBuffer in its options) are published first."""
        loop = self.__dict__.get("_improv_loop")
        if loop is None:
            time.sleep(seconds)
            return
        loop.flush()
        until = time.monotonic() + seconds
        while True:
            # Quit: the step unwinds now. Pause or stop: the step stays parked here, as in a link call,
            # until run or resume (stop() runs meanwhile, and no more of this step after it).
            if loop.quitting:
                raise _Quitting
            left = until - time.monotonic()
            if loop.running and left <= 0:
                return
            loop.wait([], max(0.0, left) if loop.running else None)

    def __getattr__(self, name):
        # Links by name, as attributes: self.q_in, self.q_out. Only reached when nothing else has the name.
        links = self.__dict__.get("links")
        if links is not None and name in links:
            return links[name]
        raise AttributeError(
            f"{type(self).__name__!s} has no attribute {name!r}"
            + (f" (its links are {', '.join(sorted(links))})" if links else "")
        )

    def setup(self):
        """Called once, on the setup signal, before the first step."""

    def stop(self):
        """Called when the pipeline stops (after the last step)."""

    def __repr__(self):
        links = self.__dict__.get("links") or {}
        return f"{self.__dict__.get('name', type(self).__name__)}: {list(links)}"
