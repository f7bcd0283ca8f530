"""`self.publish(name, value)` in a Python actor: what the dashboard plots.

The same as the TypeScript actor host's (`packages/core/src/worker/_publisher.ts`): while nobody
watches, publishing is one boolean test. While somebody does, numbers (and dicts of numbers) are kept
point by point and other values newest-only, and what was kept goes up the control channel at most
every 16 ms: `{"type": "published", "name", "data"}` with `data` either
`{"kind": "series", "times", "values": {field: [...]}, "skipped"}` or
`{"kind": "latest", "time", "value", "skipped"}`. A 2-D numpy array goes as `{"array": <flat>, "shape"}`
(an image on the page); other numpy arrays as they are (typed arrays in TypeScript).

What cannot be sent is refused where it can be told cheaply, in the step that publishes it: a numpy
array of a dtype TypeScript has no typed array for, or a value too big for one delivery. Anything
else that cannot be encoded (an object of a class of one's own) is found when it is sent: that stream
is then dropped with one warning in the log, and the rest go on.
"""

import numbers
import time

import numpy as np

from . import _codec

#: Deliveries at most this often (~60 a second, as often as a page draws).
PUBLISH_EVERY_S = 0.016
#: Points of one series in one delivery at most; past that the oldest go (and are counted as skipped).
SERIES_LIMIT = 10_000
#: Fields of a dict of numbers at most (a wider dict is a value, shown newest-only).
MAX_FIELDS = 32
#: How deep a value is copied (`{"frame": {"array", "shape"}}` is depth 2).
COPY_DEPTH = 4
#: Bytes of numpy data in one published value at most: a delivery is one frame of the control channel,
#: which carries 64 MiB at most (a 4096×4096 float32 image is 64 MiB; no page shows that many pixels).
MAX_VALUE_BYTES = 48 * 2**20


def _is_number(value):
    """A real number: int, float, a numpy integer or float (or a 0-d array of one); not a bool."""
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, (numbers.Real, np.integer, np.floating)):
        return True
    return isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf"


def _number_fields(value):
    if isinstance(value, dict) and 0 < len(value) <= MAX_FIELDS and all(
        isinstance(key, str) and _is_number(field) for key, field in value.items()
    ):
        return [(key, float(field)) for key, field in value.items()]
    return None


def _own_copy(value, sizes, depth=COPY_DEPTH):
    """A copy that owns its memory (an array may be rewritten after the step); 2-D arrays as images.

    `sizes` (a list) gets the bytes of every array copied. A numpy array of a dtype TypeScript has
    no typed array for is a TypeError here, naming the fix."""
    if isinstance(value, np.ndarray):
        _codec.dtype_code(value)
        sizes.append(value.nbytes)
        if value.ndim >= 2:
            return {"array": np.ascontiguousarray(value).ravel().copy(), "shape": list(value.shape)}
        return np.array(value, copy=True)
    if isinstance(value, np.generic):
        return value.item()
    if depth == 0:
        return value
    if isinstance(value, dict):
        return {key: _own_copy(item, sizes, depth - 1) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_own_copy(item, sizes, depth - 1) for item in value]
    return value


def _now_ms():
    # A float, as Date.now() is sent from TypeScript (an int would do too: TypeScript reads a 64-bit integer in the safe range as a number).
    return float(round(time.time() * 1000))


class Publisher:
    """What the host keeps of `publish()` and sends up; `post` sends a message to Nexus, `warn` logs."""

    def __init__(self, post, warn=None):
        self._post = post
        self._warn = warn
        self.on = False
        self._series = {}
        self._latest = {}
        self._due = None
        #: When the last delivery went (time.monotonic()).
        self._sent_at = float("-inf")
        self._refused = set()

    def set(self, on):
        """Nexus says whether somebody watches; off drops whatever was kept."""
        self.on = bool(on)
        if not self.on:
            self._series.clear()
            self._latest.clear()
            self._due = None
            self._refused.clear()

    def publish(self, name, value):
        if not self.on:
            return
        if not isinstance(name, str) or name == "":
            raise TypeError(f"publish(name, value): name must be a non-empty string, not {name!r}")
        now = _now_ms()
        fields = [("value", float(value))] if _is_number(value) else _number_fields(value)
        if fields is not None:
            self._add(name, now, fields)
        else:
            sizes = []
            copy = _own_copy(value, sizes)
            if sum(sizes) > MAX_VALUE_BYTES:
                raise ValueError(
                    f"publish({name!r}, value): {sum(sizes) / 2**20:.0f} MiB of arrays is more than one "
                    f"delivery to the dashboard carries ({MAX_VALUE_BYTES // 2**20} MiB); publish a smaller "
                    "view of it (e.g. frame[::2, ::2], a crop, or astype(np.float32))"
                )
            previous = self._latest.get(name)
            self._latest[name] = {
                "kind": "latest",
                "time": now,
                "value": copy,
                "skipped": 0 if previous is None else previous["skipped"] + 1,
            }
        if self._due is None:
            # After a quiet period at once (at the host's next tick: the step's end, or when it waits,
            # so what one step publishes goes together); after a delivery, once PUBLISH_EVERY_S has
            # passed. Waiting a whole period after the first value lost frames of a 60 Hz stream.
            self._due = self._sent_at + PUBLISH_EVERY_S

    def due_in(self):
        """Seconds until what was kept is due to be sent (0: now); None when nothing is kept."""
        return None if self._due is None else max(0.0, self._due - time.monotonic())

    def tick(self):
        """Sends what was kept once it is due (the host calls it as its loop turns)."""
        if self._due is not None and time.monotonic() >= self._due:
            self.flush()

    def flush(self):
        """Sends what was kept (when due, and before the host quits). Never raises: a value that
        cannot be encoded drops its stream's delivery, with a warning once per stream."""
        self._due = None
        self._sent_at = time.monotonic()
        series, latest = self._series, self._latest
        self._series, self._latest = {}, {}
        for kept in (series, latest):
            for name, data in kept.items():
                try:
                    self._post({"type": "published", "name": name, "data": data})
                except Exception as error:  # noqa: BLE001 - whatever the codec refuses; the host loop goes on
                    self._refuse(name, error)

    def _refuse(self, name, error):
        if name in self._refused:
            return
        self._refused.add(name)
        if self._warn is not None:
            self._warn(
                f'publish("{name}"): the value cannot be sent to the dashboard ({type(error).__name__}: {error}); '
                "publish numbers, strings, lists, dicts and numpy arrays (said once per stream)"
            )

    def _add(self, name, now, fields):
        series = self._series.get(name)
        if series is None:
            series = self._series[name] = {"kind": "series", "times": [], "values": {}, "skipped": 0}
        times, values = series["times"], series["values"]
        if len(times) >= SERIES_LIMIT:
            del times[0]
            for column in values.values():
                del column[0]
            series["skipped"] += 1
        length = len(times)
        times.append(now)
        for field, number in fields:
            column = values.get(field)
            if column is None:
                column = values[field] = [None] * length
            column.append(number)
        for column in values.values():
            if len(column) == length:
                column.append(None)
