"""`self.publish(name, value)` in a Python actor: what the dashboard plots.

The same as the TypeScript actor host's (`packages/core/src/worker/_publisher.ts`): while nobody
watches, publishing is one boolean test. While somebody does, numbers (and dicts of numbers) are kept
point by point and other values newest-only, and what was kept goes up the control channel at most
every 16 ms: `{"type": "published", "name", "data"}` with `data` either
`{"kind": "series", "times", "values": {field: [...]}, "skipped"}` or
`{"kind": "latest", "time", "value", "skipped"}`. A 2-D numpy array goes as `{"array": <flat>, "shape"}`
(an image on the page); other numpy arrays as they are (typed arrays in TypeScript).
"""

import numbers
import time

import numpy as np

#: Deliveries at most this often (~60 a second, as often as a page draws).
PUBLISH_EVERY_S = 0.016
#: Points of one series in one delivery at most; past that the oldest go (and are counted as skipped).
SERIES_LIMIT = 10_000
#: Fields of a dict of numbers at most (a wider dict is a value, shown newest-only).
MAX_FIELDS = 32


def _is_number(value):
    return isinstance(value, (numbers.Real, np.number)) and not isinstance(value, (bool, np.bool_))


def _number_fields(value):
    if isinstance(value, dict) and 0 < len(value) <= MAX_FIELDS and all(
        isinstance(key, str) and _is_number(field) for key, field in value.items()
    ):
        return [(key, float(field)) for key, field in value.items()]
    return None


def _own_copy(value, depth=4):
    """A copy that owns its memory (an array may be rewritten after the step); 2-D arrays as images."""
    if isinstance(value, np.ndarray):
        if value.ndim >= 2:
            return {"array": np.ascontiguousarray(value).ravel().copy(), "shape": list(value.shape)}
        return np.array(value, copy=True)
    if isinstance(value, np.generic):
        return value.item()
    if depth == 0:
        return value
    if isinstance(value, dict):
        return {key: _own_copy(item, depth - 1) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_own_copy(item, depth - 1) for item in value]
    return value


def _now_ms():
    # A float: msgpack sends an int above 2**32 as a 64-bit integer, which TypeScript reads as a bigint.
    return float(round(time.time() * 1000))


class Publisher:
    def __init__(self, post):
        self._post = post
        self.on = False
        self._series = {}
        self._latest = {}
        self._due = None

    def set(self, on):
        """Nexus says whether somebody watches; off drops whatever was kept."""
        self.on = bool(on)
        if not self.on:
            self._series.clear()
            self._latest.clear()
            self._due = None

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
            previous = self._latest.get(name)
            self._latest[name] = {
                "kind": "latest",
                "time": now,
                "value": _own_copy(value),
                "skipped": 0 if previous is None else previous["skipped"] + 1,
            }
        if self._due is None:
            self._due = time.monotonic() + PUBLISH_EVERY_S
        self.tick()

    def tick(self):
        """Sends what was kept once it is due (the host calls it as its loop turns)."""
        if self._due is not None and time.monotonic() >= self._due:
            self.flush()

    def flush(self):
        self._due = None
        for name, data in self._series.items():
            self._post({"type": "published", "name": name, "data": data})
        for name, data in self._latest.items():
            self._post({"type": "published", "name": name, "data": data})
        self._series = {}
        self._latest = {}

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
                column = values[field] = [float("nan")] * length
            column.append(number)
        for column in values.values():
            if len(column) == length:
                column.append(float("nan"))
