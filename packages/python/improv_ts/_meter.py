"""What a Python actor host measures for `nexus.metrics()` and shows for `nexus.tap()`.

The Python end of `packages/core/src/worker/_meter.ts` and `_summary.ts`, with the same messages
(`packages/core/src/worker/protocol.ts`) and the same formats:

- time in `run_step()`: a histogram of log-scaled buckets (the TypeScript one's: 1 µs wide below
  16 µs, then 8 per power of two, so each figure is within ±6.25%), emptied at every report. As in
  TypeScript, every step is timed while an actor makes up to `TIMED_STEPS_PER_WINDOW` steps a
  window, and above that a random sample of about that many: timing a step (two clock reads and a
  histogram entry) costs ~0.4 µs here, a fifteenth of a fast actor's whole step;
- latency: an input link's `get()`/`get_nowait()` looks at the message it returns at most once every
  5 ms; a dict with a numeric `t` (ms since the Unix epoch, as `Date.now()` or `time.time() * 1000`
  gives) is a sample of now - t (a `t` more than an hour off is some other clock and ignored);
- load, read at each report: `elu` is the share of the time the host did not wait in its poll (the
  process has no event loop; its one thread either works or waits there), `cpu` the process's CPU
  time (`time.process_time()`) in cores, `heapBytes` the process's resident set size
  (`/proc/self/statm`; where there is no /proc, `resource.getrusage`'s peak RSS) — Python has no
  cheap count of its heap;
- tap: while Nexus asks for it, every message an input link returns is counted and at most one per
  50 ms is summarised (`summarize`) and posted.

Everything goes up with the counters at most twice a second; nothing is sent per message.
"""

import json
import math
import os
import random
import re
import time

LATENCY_SAMPLE_EVERY_S = 0.005
#: Steps timed per reporting window, at most about: every step of a slower actor.
TIMED_STEPS_PER_WINDOW = 500
TAP_EVERY_S = 0.05
PLAUSIBLE_T_MS = 3_600_000

_EXACT = 16
_PER_OCTAVE = 8
_TOP_EXPONENT = 30
_BUCKETS = _EXACT + (_TOP_EXPONENT - 3) * _PER_OCTAVE


def _bucket(ms):
    us = int(min(ms * 1000, 2**31 - 1)) if ms > 0 else 0
    if us < _EXACT:
        return us
    exponent = us.bit_length() - 1
    return _EXACT + (exponent - 4) * _PER_OCTAVE + ((us >> (exponent - 3)) & (_PER_OCTAVE - 1))


def _jittered(stride):
    """A countdown of `stride` on average, at random from 1 to 2 × stride − 1 (so no periodic pattern of
    steps is sampled in step)."""
    return 1 if stride == 1 else 1 + random.randrange(2 * stride - 1)


def _midpoint_us(bucket):
    if bucket < _EXACT:
        return bucket
    exponent = 4 + (bucket - _EXACT) // _PER_OCTAVE
    step = 2 ** (exponent - 3)
    return (_PER_OCTAVE + (bucket - _EXACT) % _PER_OCTAVE) * step + step / 2


class Histogram:
    """Durations in log-scaled buckets: constant cost per sample, ±6.25% per figure."""

    __slots__ = ("counts", "total")

    def __init__(self):
        self.counts = [0] * _BUCKETS
        self.total = 0

    def add(self, ms):
        self.counts[_bucket(ms)] += 1
        self.total += 1

    def percentiles(self):
        """`{"p50", "p99"}` in ms (bucket midpoints, to 1 µs), or None without samples."""
        if self.total == 0:
            return None
        return {"p50": self._quantile(0.5), "p99": self._quantile(0.99)}

    def reset(self):
        if self.total:
            self.counts = [0] * _BUCKETS
            self.total = 0

    def _quantile(self, q):
        rank = max(1, math.ceil(q * self.total))
        seen = 0
        for bucket, count in enumerate(self.counts):
            seen += count
            if seen >= rank:
                return round(_midpoint_us(bucket)) / 1000
        return round(_midpoint_us(_BUCKETS - 1)) / 1000


def _rss_bytes():
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        # Linux and most BSDs say KiB, macOS bytes.
        return peak if os.uname().sysname == "Darwin" else peak * 1024
    except (ImportError, OSError, ValueError):
        return None


class _Watch:
    __slots__ = ("name", "latency", "next_sample", "tapping", "last_summary", "skipped")

    def __init__(self, name):
        self.name = name
        self.latency = Histogram()
        self.next_sample = 0.0
        self.tapping = False
        self.last_summary = -math.inf
        self.skipped = 0


class Meter:
    """The measuring side of the Python actor host; `post` sends tap records up."""

    def __init__(self, post):
        self.post = post
        self.measuring = False
        self.steps = Histogram()
        self._steps_in_window = 0
        self._step_countdown = 1
        self._step_stride = 1
        self.watches = {}
        self.is_key = None
        #: Seconds the host spent waiting in its poll (added by the host's `wait`).
        self.waited = 0.0
        self._last = None
        self._reported = {}

    def start(self, measure, store=None):
        """Begins measuring as init says (`measure` absent: metrics are off)."""
        self.measuring = measure is not None
        if store is not None and callable(getattr(store, "is_key", None)):
            self.is_key = store.is_key
        self._last = (time.perf_counter(), time.process_time(), self.waited)

    def step_starts(self):
        """Called before every step: the clock now when this step is timed (measuring, and its turn), else
        None. Pass it to `step_took` when the step has ended."""
        if not self.measuring:
            return None
        self._steps_in_window += 1
        self._step_countdown -= 1
        if self._step_countdown > 0:
            return None
        self._step_countdown = _jittered(self._step_stride)
        return time.perf_counter()

    def step_took(self, seconds):
        self.steps.add(seconds * 1000)

    def watch(self, name):
        found = self.watches.get(name)
        if found is None:
            found = self.watches[name] = _Watch(name)
        return found

    def wrap(self, name, link):
        """The link as the actor sees it: an input link is watched, an output link returned as it is."""
        if not hasattr(link, "get"):
            return link
        return _Watched(link, self.watch(name), self)

    def tap(self, name, on):
        watch = self.watch(name)
        watch.tapping = bool(on)
        watch.skipped = 0
        watch.last_summary = -math.inf

    def due(self, watch):
        return watch.tapping or (self.measuring and time.monotonic() >= watch.next_sample)

    def seen(self, watch, message):
        now = time.monotonic()
        if self.measuring and now >= watch.next_sample:
            watch.next_sample = now + LATENCY_SAMPLE_EVERY_S
            t = message.get("t") if isinstance(message, dict) else None
            if isinstance(t, (int, float)) and not isinstance(t, bool):
                ms = time.time() * 1000 - t
                if abs(ms) < PLAUSIBLE_T_MS:
                    watch.latency.add(ms)
        if not watch.tapping:
            return
        if now - watch.last_summary < TAP_EVERY_S:
            watch.skipped += 1
            return
        watch.last_summary = now
        try:
            summary = summarize(message, self.is_key)
        except Exception as error:  # noqa: BLE001 - a summary must never break the actor
            summary = f"(could not be summarised: {error})"
        # A float, as Date.now() is sent from TypeScript (an int would do too: TypeScript reads a 64-bit integer in the safe range as a number).
        self.post({"type": "tap", "link": watch.name, "time": float(round(time.time() * 1000)), "summary": summary,
                   "skipped": watch.skipped})
        watch.skipped = 0

    def report(self, steps, errors, changed):
        """The counters message of the window that ends now, or None when it says nothing new."""
        message = {"type": "counters", "steps": steps, "errors": errors}
        if not self.measuring:
            return message if changed else None
        news = changed
        step_ms = self.steps.percentiles()
        self.steps.reset()
        self._step_stride = max(1, round(self._steps_in_window / TIMED_STEPS_PER_WINDOW))
        self._step_countdown = min(self._step_countdown, self._step_stride)
        self._steps_in_window = 0
        if step_ms is not None:
            message["stepMs"] = step_ms
            news = True
        for watch in self.watches.values():
            latency = watch.latency.percentiles()
            watch.latency.reset()
            if latency is not None:
                message.setdefault("latencyMs", {})[watch.name] = latency
                news = True
        load = self._load()
        message.update(load)
        before = self._reported
        if (
            _moved(before.get("elu"), load.get("elu"), 0.01)
            or _moved(before.get("cpu"), load.get("cpu"), 0.01)
            or _moved(before.get("heapBytes"), load.get("heapBytes"), 0.01 * (before.get("heapBytes") or 0))
        ):
            news = True
        if not news:
            return None
        self._reported = load
        return message

    def _load(self):
        wall, cpu, waited = time.perf_counter(), time.process_time(), self.waited
        load = {}
        if self._last is not None:
            last_wall, last_cpu, last_waited = self._last
            span = wall - last_wall
            if span > 0:
                load["elu"] = round(min(1.0, max(0.0, 1 - (waited - last_waited) / span)), 3)
                load["cpu"] = round(max(0.0, cpu - last_cpu) / span, 3)
        self._last = (wall, cpu, waited)
        rss = _rss_bytes()
        if rss:
            load["heapBytes"] = float(rss)
        return load


def _moved(before, now, tolerance):
    if before is None or now is None:
        return before is not now
    return abs(now - before) > tolerance


class _Watched:
    """An input link whose messages the meter may look at; everything else is the link's own."""

    def __init__(self, link, watch, meter):
        self._link = link
        self._watch = watch
        self._meter = meter

    def __getattr__(self, name):
        return getattr(self._link, name)

    def get(self, *args, **kwargs):
        # Not tapped, and not measured or not the time for a latency sample (most calls): the link's own get.
        watch = self._watch
        if not watch.tapping and (not self._meter.measuring or time.monotonic() < watch.next_sample):
            return self._link.get(*args, **kwargs)
        due = self._meter.due(watch)
        message = self._link.get(*args, **kwargs)
        if due:
            self._meter.seen(self._watch, message)
        return message

    def get_nowait(self):
        due = self._meter.due(self._watch)
        message = self._link.get_nowait()
        if due:
            self._meter.seen(self._watch, message)
        return message


# -- summaries: the format of packages/core/src/worker/_summary.ts

SUMMARY_MAX = 200
_STRING_MAX = 24
_KEY_MAX = 32
_ITEMS_MAX = 8
_COLLAPSE_AT = 2
#: TypeScript's typed array class by improv dtype code (see `_codec.KINDS`).
_ARRAY_NAMES = [None, "Int8Array", "Uint8Array", "Uint8ClampedArray", "Int16Array", "Uint16Array", "Int32Array",
                "Uint32Array", "Float32Array", "Float64Array", "BigInt64Array", "BigUint64Array"]
_IDENTIFIER = re.compile(r"[A-Za-z_$][\w$]*\Z")


def summarize(message, is_key=None, limit=SUMMARY_MAX):
    """One line that says what `message` is without its data (`nexus.tap()`), as the TypeScript host writes it."""
    text = _render(message, 0, is_key, limit + 1, None)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _render(value, depth, is_key, budget, shape):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, str):
        return _string(value, is_key)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"Uint8Array[{len(value)}]"
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy is a dependency
        np = None
    if np is not None:
        if isinstance(value, np.ndarray):
            return _array(value, shape)
        if isinstance(value, np.generic):
            return _render(value.item(), depth, is_key, budget, shape)
    if isinstance(value, (list, tuple)):
        if depth >= _COLLAPSE_AT:
            return f"[…{len(value)}]"
        return "[" + _items(value[:_ITEMS_MAX], len(value), depth, is_key, budget) + "]"
    if isinstance(value, (set, frozenset)):
        if depth >= _COLLAPSE_AT:
            return f"Set({len(value)})"
        inner = _items(list(value)[:_ITEMS_MAX], len(value), depth, is_key, budget)
        return f"Set({len(value)}) {{{' ' + inner + ' ' if inner else ''}}}"
    if isinstance(value, dict):
        if depth >= _COLLAPSE_AT:
            return "{…}"
        if not value:
            return "{}"
        field_shape = _shape_of(value.get("shape"))
        parts = []
        used = 0
        for key, item in value.items():
            if used >= budget:
                break
            name = key if isinstance(key, str) and _IDENTIFIER.match(key) else json.dumps(str(key), ensure_ascii=False)
            part = f"{name}: {_render(item, depth + 1, is_key, budget, field_shape)}"
            parts.append(part)
            used += len(part) + 2
        more = len(value) - len(parts)
        return "{ " + ", ".join(parts) + (f", …+{more}" if more > 0 else "") + " }"
    return type(value).__name__


def _items(values, total, depth, is_key, budget):
    parts = []
    used = 0
    for item in values:
        if used >= budget:
            break
        part = _render(item, depth + 1, is_key, budget, None)
        parts.append(part)
        used += len(part) + 2
    more = total - len(parts)
    return ", ".join(parts) + ((", " if parts else "") + f"…+{more}" if more > 0 else "")


def _array(array, shape):
    try:
        from ._codec import dtype_code

        name = _ARRAY_NAMES[dtype_code(array)]
    except (TypeError, ImportError, IndexError):
        name = f"ndarray<{array.dtype}>"
    dims = list(array.shape) if array.ndim > 1 else None
    if dims is None and shape is not None and math.prod(shape) == array.size:
        dims = shape
    return f"{name}[{'×'.join(str(dim) for dim in dims) if dims else array.size}]"


def _number(value):
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    shown = float(f"{value:.6g}")
    return str(int(shown)) if shown.is_integer() and abs(shown) < 1e21 else repr(shown)


def _string(value, is_key):
    key = False
    if is_key is not None:
        try:
            key = bool(is_key(value))
        except Exception:  # noqa: BLE001 - a store that cannot tell makes it a plain string
            key = False
    if key:
        shown = f"{value[:8]}…{value[-6:]}" if len(value) > _KEY_MAX else value
        return json.dumps(shown, ensure_ascii=False) + " (store key)"
    return json.dumps(value[:_STRING_MAX] + "…" if len(value) > _STRING_MAX else value, ensure_ascii=False)


def _shape_of(value):
    if not isinstance(value, (list, tuple)) or not 0 < len(value) <= 8:
        return None
    if all(isinstance(dim, int) and not isinstance(dim, bool) and dim >= 0 for dim in value):
        return list(value)
    return None
