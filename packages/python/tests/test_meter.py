"""The Python actor host's meter (`improv_ts._meter`): the same histogram, summaries and reports as
the TypeScript host's (`packages/core/src/worker/_meter.ts`, `_summary.ts`)."""

import time

import numpy as np

from improv_ts import _meter
from improv_ts._meter import TIMED_STEPS_PER_WINDOW, Histogram, Meter, summarize


def is_key(value):
    return value.startswith("m1") and "." in value


def test_summaries_read_as_the_typescript_ones():
    message = {"key": "m1b2c3.4", "t": 1733312345678, "frame": np.zeros(512 * 512, dtype=np.float32), "shape": [512, 512]}
    assert summarize(message, is_key) == (
        '{ key: "m1b2c3.4" (store key), t: 1733312345678, frame: Float32Array[512×512], shape: [512, 512] }'
    )
    # A numpy array keeps its own shape; without one that fits, the length.
    assert summarize({"image": np.zeros((3, 4), dtype=np.uint16)}) == "{ image: Uint16Array[3×4] }"
    assert summarize({"data": np.zeros(10, dtype=np.int32), "shape": [3, 3]}) == "{ data: Int32Array[10], shape: [3, 3] }"
    assert summarize(3.14159265) == "3.14159"
    assert summarize(2.0) == "2"
    assert summarize(None) == "null"
    assert summarize(True) == "true"
    assert summarize("a" * 30) == '"' + "a" * 24 + '…"'
    assert summarize(b"abc") == "Uint8Array[3]"
    assert summarize({"a": {"b": {"c": 1}, "list": [1, [2, 3]]}}) == "{ a: { b: {…}, list: […2] } }"
    assert summarize([{"a": 1}, [2, [3]]]) == "[{ a: 1 }, [2, […1]]]"
    assert summarize(list(range(20))) == "[0, 1, 2, 3, 4, 5, 6, 7, …+12]"
    assert summarize({"two words": np.float64(0.5)}) == '{ "two words": 0.5 }'
    long = summarize({f"field{i}": i for i in range(100)})
    assert len(long) == 200 and long.endswith("…") and long.startswith("{ field0: 0, field1: 1,")


def test_histogram_percentiles_within_7_percent():
    histogram = Histogram()
    assert histogram.percentiles() is None
    for ms in range(1, 1001):
        histogram.add(ms)
    p = histogram.percentiles()
    assert abs(p["p50"] - 500) / 500 < 0.07
    assert abs(p["p99"] - 990) / 990 < 0.07
    histogram.reset()
    for _ in range(10):
        histogram.add(0.005)
    assert histogram.percentiles() == {"p50": 0.005, "p99": 0.005}


class FakeIn:
    def __init__(self, messages):
        self.messages = list(messages)
        self.name = "q_in"

    def get(self, timeout=None):
        return self.messages.pop(0)

    def get_nowait(self):
        return self.messages.pop(0)

    def qsize(self):
        return len(self.messages)


def test_latency_step_times_load_and_what_a_report_says():
    posted = []
    meter = Meter(posted.append)
    meter.start({"ownProcess": True})
    now = time.time() * 1000
    link = meter.wrap("q_in", FakeIn([{"t": now - 20}, {"t": now - 20}, {"t": 12.5}]))
    assert link.get() == {"t": now - 20}
    assert link.qsize() == 2  # everything else is the link's own
    link.get_nowait()  # within 5 ms of the last sample: not looked at
    time.sleep(0.006)
    link.get()  # a t of another clock: ignored
    meter.step_took(0.002)
    report = meter.report(1, 0, True)
    assert report["steps"] == 1 and report["errors"] == 0
    assert 18 <= report["latencyMs"]["q_in"]["p50"] < 200
    assert abs(report["stepMs"]["p50"] - 2) < 0.15
    assert 0 <= report["elu"] <= 1 and report["cpu"] >= 0
    assert report["heapBytes"] > 0 and isinstance(report["heapBytes"], float)
    assert posted == []
    # The windows start over: no latency or step times in the next report (if the load moved, there is one).
    following = meter.report(1, 0, False)
    assert following is None or ("latencyMs" not in following and "stepMs" not in following)


def test_every_step_of_a_slow_actor_is_timed_and_a_sample_of_a_fast_ones():
    meter = Meter(lambda message: None)
    meter.start({"ownProcess": True})
    # A first window of ten steps: each one timed.
    for _ in range(10):
        started = meter.step_starts()
        assert started is not None
        meter.step_took(time.perf_counter() - started)
    assert meter.steps.total == 10
    meter.report(10, 0, True)
    # A fast actor: 100 times the steps a window that are timed.
    steps = 100 * TIMED_STEPS_PER_WINDOW
    for _ in range(steps):
        started = meter.step_starts()
        if started is not None:
            meter.step_took(time.perf_counter() - started)
    assert meter.steps.total == steps  # the stride follows the last window: every step still timed
    meter.report(10 + steps, 0, True)
    timed = 0
    for _ in range(steps):
        started = meter.step_starts()
        if started is not None:
            meter.step_took(time.perf_counter() - started)
            timed += 1
    # About TIMED_STEPS_PER_WINDOW, each countdown random from 1 to 2 × stride − 1.
    assert TIMED_STEPS_PER_WINDOW / 2 < timed < 2 * TIMED_STEPS_PER_WINDOW
    assert "stepMs" in meter.report(10 + 2 * steps, 0, True)
    # Metrics off: no step is timed.
    meter.start(None)
    assert meter.step_starts() is None


def test_metrics_off_reports_the_counters_alone():
    meter = Meter(lambda message: None)
    meter.start(None)
    meter.step_took(0.001)
    assert meter.report(3, 1, True) == {"type": "counters", "steps": 3, "errors": 1}
    assert meter.report(3, 1, False) is None


def test_tap_summarises_at_most_one_message_per_50_ms_and_counts_the_rest():
    posted = []
    meter = Meter(posted.append)
    meter.start(None, store=type("Store", (), {"is_key": staticmethod(is_key)})())
    link = meter.wrap("q_in", FakeIn([{"n": n, "key": f"m1x.{n}"} for n in range(12)]))
    meter.tap("q_in", True)
    for _ in range(10):
        link.get()
    time.sleep(_meter.TAP_EVERY_S + 0.01)
    link.get()
    assert [(record["summary"], record["skipped"]) for record in posted] == [
        ('{ n: 0, key: "m1x.0" (store key) }', 0),
        ('{ n: 10, key: "m1x.10" (store key) }', 9),
    ]
    assert posted[0]["type"] == "tap" and posted[0]["link"] == "q_in" and isinstance(posted[0]["time"], float)
    meter.tap("q_in", False)
    time.sleep(_meter.TAP_EVERY_S + 0.01)
    link.get()
    assert len(posted) == 2


def test_output_links_are_left_as_they_are():
    class Out:
        def put(self, message):
            pass

    out = Out()
    assert Meter(lambda message: None).wrap("q_out", out) is out
