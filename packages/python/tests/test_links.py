"""The Python zmq links (`improv_ts.links`), Python to Python.

Descriptors are built here the way the TypeScript planner (`createZmqTransport().plan`) builds them:
one sink endpoint per `Actor.link` with a ROUTER address, one source endpoint per `Actor.link`, and
per edge an id and a 64-byte counters buffer that both ends hold (here the very same `bytearray`, as
two workers share a SharedArrayBuffer). A producer that has to wait runs in a thread of its own, with
its own loop; every link is used by one thread only, as in an actor process.

`ControlLoop` stands in for the actor process's loop: at a wait it runs the next scripted step first,
as the real loop handles a control message from Nexus (pause, stop, quit) in the middle of a link's
wait, so hold, release and close land on a call that waits.

Run: /usr/bin/python3 -m pytest packages/python/tests/test_links.py
"""

import faulthandler
import queue
import shutil
import socket
import struct
import sys
import tempfile
import threading
import time
from pathlib import Path

import msgpack
import numpy as np
import pytest
import zmq

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "packages" / "python"))

from improv_ts import Empty, LinkClosedError, LinkMessageTooLargeError  # noqa: E402
from improv_ts import links as links_module  # noqa: E402
from improv_ts._loop import Loop, context  # noqa: E402
from improv_ts.links import InLink, LinkSourcesGoneError, OutLink, open_link  # noqa: E402

# Counter offsets, as `_protocol.ts` lays them out (float64 counts at 8*i, int32 flags at 4*i).
EDGE_BYTES = 88
SENT, DROPPED_AT_SOURCE, RECEIVED, TAKEN, DROPPED_AT_SINK = 0, 1, 2, 3, 4
ACKED_TAKEN, ACKED_DROPPED = 9, 10
WAITING, SINK_GONE, SOURCE_GONE, SINK_EPOCH = 12, 13, 14, 15
CONTROL_CLOSED = 0

#: A failing test must fail, never hang the run: how long any one wait for a condition may take.
PATIENCE = 20.0


def count(counters, index):
    return struct.unpack_from("<d", counters, 8 * index)[0]


def flag(buffer, index):
    return struct.unpack_from("<i", buffer, 4 * index)[0]


def set_flag(buffer, index, value):
    struct.pack_into("<i", buffer, 4 * index, value)


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Plan:
    """The descriptors of a graph, by `Actor.link`, as the TypeScript planner makes them."""

    def __init__(self, edges, protocol="ipc", curve=None, max_message_bytes=8 * 1024 * 1024):
        self.control = bytearray(8)
        self.folder = tempfile.mkdtemp(prefix="improv-links-")
        self.descriptors = {}
        self.counters = {}
        run = f"t{time.monotonic_ns() % 100000}"
        base = {"module": "@improv/transport-zmq", "transport": "zmq", "control": self.control, "sockets": "auto",
                "maxMessageBytes": max_message_bytes}
        if curve is not None:
            base["curve"] = curve
        for index, (source, sink, capacity, policy) in enumerate(edges):
            into = self.descriptors.get(sink)
            if into is None:
                address = (f"ipc://{self.folder}/link-{len(self.descriptors)}.sock" if protocol == "ipc"
                           else f"tcp://127.0.0.1:{free_port()}")
                into = {**base, "direction": "in", "endpoint": endpoint(sink), "address": address, "edges": []}
                self.descriptors[sink] = into
            out = self.descriptors.get(source)
            if out is None:
                out = {**base, "direction": "out", "endpoint": endpoint(source), "edges": []}
                self.descriptors[source] = out
            counters = bytearray(EDGE_BYTES)
            info = {"connection": f"c{index}", "capacity": capacity, "policy": policy, "id": f"{run}.{index}",
                    "counters": counters}
            into["edges"].append({**info, "peer": source})
            out["edges"].append({**info, "peer": sink, "address": into["address"]})
            self.counters[(source, sink)] = counters

    def __getitem__(self, name):
        return self.descriptors[name]

    def remove(self):
        shutil.rmtree(self.folder, ignore_errors=True)


def endpoint(label):
    actor, link = label.split(".")
    return {"actor": actor, "link": link}


class Hooks:
    """Records what a link reports."""

    def __init__(self):
        self.drops = []
        self.drops_for_one_sink = []
        self.warnings = []

    def dropped(self, message, reason):
        self.drops.append((message, reason))

    def dropped_for_one_sink(self, message, reason):
        self.drops_for_one_sink.append((message, reason))

    def warn(self, text):
        self.warnings.append(text)


class RecordingLoop(Loop):
    """The plain loop, telling another thread when its link first waits."""

    def __init__(self):
        self.waited = threading.Event()

    def wait(self, sockets, timeout):
        self.waited.set()
        super().wait(sockets, timeout)


class ControlLoop(Loop):
    """At each wait, runs the next step (a control message from Nexus, handled during the wait) and returns.

    A step that returns False is tried again at the next wait (after a short wait on the sockets);
    once every step ran, it waits as the plain loop does.
    """

    def __init__(self, *steps):
        self.steps = list(steps)
        self.waits = 0
        self.started = time.monotonic()

    def wait(self, sockets, timeout):
        self.waits += 1
        assert time.monotonic() - self.started < PATIENCE, f"still waiting after {PATIENCE} s; steps left: {self.steps}"
        if self.steps:
            if self.steps[0]() is not False:
                self.steps.pop(0)
                return
            timeout = 0.01 if timeout is None else min(timeout, 0.01)
        super().wait(sockets, timeout)


def eventually(condition, *links, what="the condition"):
    """Flushes `links` until `condition()` holds (failing after PATIENCE seconds, never hanging)."""
    deadline = time.monotonic() + PATIENCE
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not come within {PATIENCE} s"
        for link in links:
            link.flush()
        time.sleep(0.001)


def in_thread(function):
    """Runs `function` in a thread; `join()` returns its value or raises what it raised."""
    outcome = {}

    def target():
        try:
            outcome["value"] = function()
        except BaseException as error:  # noqa: BLE001 - handed to the test's thread
            outcome["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()

    def join():
        thread.join(PATIENCE)
        assert not thread.is_alive(), f"the thread did not end within {PATIENCE} s"
        if "error" in outcome:
            raise outcome["error"]
        return outcome.get("value")

    return join


@pytest.fixture(autouse=True)
def watchdog():
    # A link test that hangs prints every thread's stack and ends the run instead of hanging CI.
    faulthandler.dump_traceback_later(120, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


@pytest.fixture
def opened():
    """`opened(descriptor, loop=None, hooks=None)` opens a link and closes it after the test."""
    made = []
    plans = []

    def open_(descriptor, loop=None, hooks=None):
        link = open_link(descriptor, loop or Loop(), hooks)
        made.append(link)
        return link

    open_.plans = plans
    yield open_
    for link in made:
        link.close()
    for plan in plans:
        plan.remove()


@pytest.fixture
def plan(opened):
    def make(*edges, **options):
        made = Plan(edges, **options)
        opened.plans.append(made)
        return made

    return make


@pytest.mark.parametrize("protocol", ["ipc", "tcp"])
def test_messages_arrive_in_order_under_credit(plan, opened, protocol):
    graph = plan(("A.q_out", "B.q_in", 4, "block"), protocol=protocol)
    sink = opened(graph["B.q_in"])
    source = opened(graph["A.q_out"])
    assert isinstance(sink, InLink) and isinstance(source, OutLink)
    assert (sink.name, sink.label, source.name, source.label, source.sinks) == ("q_in", "B.q_in", "q_out", "A.q_out", 1)
    total = 2000

    def produce():
        for n in range(total):
            source.put({"n": n, "text": f"message {n}"})

    join = in_thread(produce)
    received = [sink.get(timeout=PATIENCE) for _ in range(total)]
    join()
    assert received == [{"n": n, "text": f"message {n}"} for n in range(total)]
    counters = graph.counters[("A.q_out", "B.q_in")]
    assert [count(counters, i) for i in (SENT, DROPPED_AT_SOURCE, RECEIVED, TAKEN, DROPPED_AT_SINK)] == [
        total, 0, total, total, 0,
    ]
    assert flag(counters, WAITING) == 0
    assert flag(counters, SINK_EPOCH) == 1
    # The source sums the acknowledgements it got (closing waits for the last of them): Nexus counts
    # a message read from these when a sink process dies before its own count crossed over.
    source.close()
    assert [count(counters, i) for i in (ACKED_TAKEN, ACKED_DROPPED)] == [total, 0]


def test_fan_in_interleaves_two_sources_and_loses_none(plan, opened):
    graph = plan(("A.q_out", "C.q_in", 4, "block"), ("B.q_out", "C.q_in", 4, "block"))
    sink = opened(graph["C.q_in"])
    sources = {name: opened(graph[f"{name}.q_out"]) for name in "AB"}
    total = 1000

    def produce(name):
        for n in range(total):
            sources[name].put({"from": name, "n": n})

    joins = [in_thread(lambda name=name: produce(name)) for name in "AB"]
    received = [sink.get(timeout=PATIENCE) for _ in range(2 * total)]
    for join in joins:
        join()
    for name in "AB":
        assert [m["n"] for m in received if m["from"] == name] == list(range(total))
    assert sink.qsize() == 0


def test_fan_in_reads_the_sources_round_robin(plan, opened):
    graph = plan(("A.q_out", "C.q_in", 4, "block"), ("B.q_out", "C.q_in", 4, "block"))
    sink = opened(graph["C.q_in"])
    for name in "AB":
        source = opened(graph[f"{name}.q_out"])
        for n in range(3):
            source.put(f"{name}{n}")
    eventually(lambda: sink.qsize() == 6, what="six messages")
    # However they arrived, neither source's backlog makes the other wait.
    assert [sink.get_nowait() for _ in range(6)] == ["A0", "B0", "A1", "B1", "A2", "B2"]


def test_fan_out_sends_every_message_to_every_sink(plan, opened):
    graph = plan(("A.q_out", "B.q_in", 4, "block"), ("A.q_out", "C.q_in", 4, "block"))
    sinks = [opened(graph["B.q_in"]), opened(graph["C.q_in"])]
    source = opened(graph["A.q_out"])
    assert source.sinks == 2
    total = 500
    join = in_thread(lambda: [source.put({"n": n}) for n in range(total)])
    got = {0: [], 1: []}
    for _ in range(total):
        for index, sink in enumerate(sinks):
            got[index].append(sink.get(timeout=PATIENCE)["n"])
    join()
    assert got[0] == got[1] == list(range(total))


def test_block_holds_the_producer_back_until_the_sink_reads(plan, opened):
    graph = plan(("A.q_out", "B.q_in", 4, "block"))
    counters = graph.counters[("A.q_out", "B.q_in")]
    sink = opened(graph["B.q_in"])
    loop = RecordingLoop()
    source = opened(graph["A.q_out"], loop)
    done = []

    def produce():
        for n in range(10):
            source.put({"n": n})
            done.append(n)

    join = in_thread(produce)
    assert loop.waited.wait(PATIENCE), "the producer never waited"
    # Four messages of credit: the fifth put waits, and says so in the edge's WAITING word.
    assert done == [0, 1, 2, 3]
    assert count(counters, SENT) == 4
    assert flag(counters, WAITING) == 1
    eventually(lambda: sink.qsize() == 4, what="four messages at the sink")
    assert [sink.get(timeout=PATIENCE)["n"] for _ in range(10)] == list(range(10))
    join()
    assert done == list(range(10))
    assert flag(counters, WAITING) == 0


@pytest.mark.parametrize(("size", "batch"), [(1024, 4), (100 * 1024, 3)])
def test_a_sink_acknowledges_half_its_capacity_or_a_quarter_that_carried_256_kib(plan, opened, size, batch):
    """As the TypeScript sink: small messages get their credit back in batches of half the capacity;
    large ones from a quarter of it, once the messages taken carried 256 KiB (here 3 × 100 KiB)."""
    graph = plan(("A.q_out", "B.q_in", 8, "block"))
    sink = opened(graph["B.q_in"])
    source = opened(graph["A.q_out"])
    [edge] = source._edges

    def unacknowledged():
        source.flush()
        return len(edge.unacked)

    for n in range(8):
        source.put({"n": n, "data": bytes(size)})
    eventually(lambda: sink.qsize() == 8, what="eight messages at the sink")
    for n in range(batch - 1):
        assert sink.get(timeout=0)["n"] == n
    time.sleep(0.1)
    assert unacknowledged() == 8, "acknowledged before the batch was complete"
    assert sink.get(timeout=0)["n"] == batch - 1
    eventually(lambda: unacknowledged() == 8 - batch, what=f"an acknowledgement of {batch} messages")


def test_drop_oldest_never_waits_and_reports_what_the_sink_dropped(plan, opened):
    graph = plan(("A.q_out", "B.q_in", 4, "drop-oldest"))
    counters = graph.counters[("A.q_out", "B.q_in")]
    hooks = Hooks()
    sink = opened(graph["B.q_in"])
    source = opened(graph["A.q_out"], hooks=hooks)
    for n in range(10):
        source.put({"n": n, "key": f"key-{n}"})
    assert count(counters, SENT) == 10
    eventually(lambda: sink.qsize() == 4 and count(counters, RECEIVED) == 10, what="ten messages at the sink")
    assert count(counters, DROPPED_AT_SINK) == 6
    # The sink acknowledged its drops; the source reports exactly those messages, oldest first.
    eventually(lambda: len(hooks.drops) == 6, source, what="six drops reported")
    assert hooks.drops == [({"n": n, "key": f"key-{n}"}, "drop-oldest") for n in range(6)]
    assert [sink.get(timeout=PATIENCE)["n"] for _ in range(4)] == [6, 7, 8, 9]
    assert count(counters, TAKEN) == 4
    assert flag(counters, WAITING) == 0
    with pytest.raises(Empty):
        sink.get_nowait()


def test_get_with_a_timeout_raises_queue_empty(plan, opened):
    graph = plan(("A.q_out", "B.q_in", 4, "block"))
    sink = opened(graph["B.q_in"])
    source = opened(graph["A.q_out"])
    with pytest.raises(queue.Empty):
        sink.get(timeout=0.05)
    with pytest.raises(Empty):
        sink.get(timeout=0)
    with pytest.raises(queue.Empty):
        sink.get_nowait()
    assert sink.empty() and sink.qsize() == 0
    with pytest.raises(ValueError, match="number of seconds"):
        sink.get(timeout=-1)
    source.put("here")
    eventually(lambda: not sink.empty(), what="the message")
    assert sink.get(timeout=0) == "here"
    assert count(graph.counters[("A.q_out", "B.q_in")], TAKEN) == 1


def three_queued(plan, opened, capacity):
    """A link A.q_out -> B.q_in of `capacity` (block) with messages 0, 1, 2 queued at the sink."""
    graph = plan(("A.q_out", "B.q_in", capacity, "block"))
    counters = graph.counters[("A.q_out", "B.q_in")]
    sink = opened(graph["B.q_in"])
    source = opened(graph["A.q_out"])
    for n in range(3):
        source.put(n)
    eventually(lambda: sink.qsize() == 3, what="three messages")
    return graph, counters, sink, source


def test_a_queued_message_is_taken_at_once_but_not_past_a_bad_timeout_or_a_close(plan, opened):
    """get() with a message queued takes it without reading the socket or waiting; the checks of the
    call come first all the same."""
    graph, counters, sink, source = three_queued(plan, opened, capacity=8)
    for bad in (-1.0, float("nan"), float("inf"), "1", True):
        with pytest.raises(ValueError, match="number of seconds"):
            sink.get(timeout=bad)
    assert [sink.get(), sink.get(timeout=1.0)] == [0, 1]
    assert count(counters, TAKEN) == 2
    graph.control[0:4] = struct.pack("<i", 1)  # the transport closed (CONTROL_CLOSED)
    with pytest.raises(LinkClosedError):
        sink.get(timeout=1.0)
    graph.control[0:4] = struct.pack("<i", 0)
    assert sink.get(timeout=1.0) == 2
    source.put(3)
    eventually(lambda: sink.qsize() == 1, what="one more message")
    sink.close()
    with pytest.raises(LinkClosedError):
        sink.get(timeout=1.0)


def test_hold_parks_a_waiting_get_until_release(plan, opened):
    graph = plan(("A.q_out", "B.q_in", 4, "block"))
    counters = graph.counters[("A.q_out", "B.q_in")]
    held = []
    seen = {}
    sink_holder = {}

    def pause():  # the host holds every link on pause: the get waits now, so on_held comes at once
        sink_holder["sink"].hold(lambda: held.append("held"))
        seen["held at once"] = list(held)

    def message_comes():
        source.put({"n": 1})
        eventually(lambda: sink_holder["sink"].qsize() == 1, what="the message at the held sink")

    def resume():
        seen["taken while held"] = count(counters, TAKEN)
        sink_holder["sink"].release()

    sink = opened(graph["B.q_in"], ControlLoop(pause, message_comes, resume))
    sink_holder["sink"] = sink
    source = opened(graph["A.q_out"])
    assert sink.get() == {"n": 1}
    assert seen == {"held at once": ["held"], "taken while held": 0}
    assert held == ["held"]
    # A held link takes nothing, even without waiting; a timed get still ends at its timeout.
    sink.hold(lambda: held.append("again"))
    source.put({"n": 2})
    eventually(lambda: sink.qsize() == 1, what="the second message")
    with pytest.raises(Empty):
        sink.get_nowait()
    with pytest.raises(Empty):
        sink.get(timeout=0.02)
    assert held == ["held", "again"]
    sink.release()
    assert sink.get_nowait() == {"n": 2}


def test_reads_what_is_queued_first_and_a_held_get_waits_without_spinning(plan, opened):
    """A sink with messages queued leaves what arrived since in the socket (read once the queue runs
    empty); a held get() must read that too before it waits, or its wait would return at once, again
    and again, until its timeout."""
    graph = plan(("A.q_out", "B.q_in", 8, "block"))
    counters = graph.counters[("A.q_out", "B.q_in")]
    timeouts = []

    class TimingLoop(Loop):
        def wait(self, sockets, timeout):
            timeouts.append(timeout)
            super().wait(sockets, timeout)

    sink = opened(graph["B.q_in"], TimingLoop())
    source = opened(graph["A.q_out"])
    for n in range(3):
        source.put(n)
    eventually(lambda: sink.qsize() == 3, what="the first three messages")
    assert sink.get(timeout=0) == 0
    source.put(3)
    source.put(4)
    eventually(lambda: sink._socket.get(zmq.EVENTS) & zmq.POLLIN, what="two more messages in the socket")
    # Two are queued: one is taken without reading the socket, so the two there are not received yet.
    assert sink.get(timeout=0) == 1
    assert count(counters, RECEIVED) == 3
    # Held with one message queued and two in the socket.
    sink.hold(lambda: None)
    timeouts.clear()
    with pytest.raises(Empty):
        sink.get(timeout=0.3)
    assert count(counters, RECEIVED) == 5
    # The first wait lasts (nearly) all of the 0.3 s; more follow only in its last moments.
    long_waits = [timeout for timeout in timeouts if timeout is not None and timeout > 0.01]
    assert len(long_waits) <= 2, f"a held get() began {len(long_waits)} waits of over 10 ms in 0.3 s: it spins"
    sink.release()
    assert [sink.get(timeout=0) for _ in range(3)] == [2, 3, 4]


def test_hold_parks_a_put_and_release_lets_it_go_on(plan, opened):
    graph = plan(("A.q_out", "B.q_in", 1, "block"))
    counters = graph.counters[("A.q_out", "B.q_in")]
    held = []
    seen = {}
    sink = opened(graph["B.q_in"])

    def while_held():
        seen["sent while held"] = count(counters, SENT)
        seen["waiting while held"] = flag(counters, WAITING)
        source.release()

    def sink_reads():  # released, the put waits for credit now: the sink reads the first message
        seen["waiting for credit"] = flag(counters, WAITING)
        seen["first"] = sink.get(timeout=PATIENCE)

    source = opened(graph["A.q_out"], ControlLoop(while_held, sink_reads))
    source.put({"n": 0})
    source.hold(lambda: held.append("held"))
    assert held == []  # nothing waits yet
    source.put({"n": 1})
    assert held == ["held"]
    assert seen == {"sent while held": 1, "waiting while held": 0, "waiting for credit": 1, "first": {"n": 0}}
    assert sink.get(timeout=PATIENCE) == {"n": 1}
    assert flag(counters, WAITING) == 0


def test_hold_reaches_a_put_that_waits_for_credit(plan, opened):
    graph = plan(("A.q_out", "B.q_in", 1, "block"))
    held = []
    sink = opened(graph["B.q_in"])

    def pause():
        source.hold(lambda: held.append("held"))

    def resume():
        source.release()

    def sink_reads():
        assert sink.get(timeout=PATIENCE) == {"n": 0}

    source = opened(graph["A.q_out"], ControlLoop(pause, resume, sink_reads))
    source.put({"n": 0})
    source.put({"n": 1})
    assert held == ["held"]
    assert sink.get(timeout=PATIENCE) == {"n": 1}


def test_close_rejects_a_waiting_get(plan, opened):
    graph = plan(("A.q_out", "B.q_in", 4, "block"))
    counters = graph.counters[("A.q_out", "B.q_in")]
    sink = opened(graph["B.q_in"], ControlLoop(lambda: sink.close()))
    announced = flag(graph.control, 1)  # CONTROL_SEQ
    with pytest.raises(LinkClosedError, match="its actor quit"):
        sink.get()
    with pytest.raises(LinkClosedError):
        sink.get(timeout=1)
    with pytest.raises(LinkClosedError):
        sink.get_nowait()
    assert sink.qsize() == 0
    # Its sources stop waiting for it.
    assert flag(counters, SINK_GONE) == 1
    assert flag(graph.control, 1) == announced + 1  # and told to look


def test_close_leaves_what_the_sink_never_read_unread(plan, opened):
    # The planner counts it dropped at detach or quit (sent - taken - dropped), and a restarted sink
    # gets it again from its sources: counting it here too would count it twice.
    graph, counters, sink, source = three_queued(plan, opened, capacity=4)
    assert sink.get(timeout=PATIENCE) == 0
    sink.close()
    assert [count(counters, i) for i in (SENT, RECEIVED, TAKEN, DROPPED_AT_SINK)] == [3, 3, 1, 0]
    assert flag(counters, SINK_GONE) == 1
    sink.close()  # idempotent


def test_close_ends_a_waiting_put_and_reports_its_message(plan, opened):
    graph = plan(("A.q_out", "B.q_in", 1, "block"))
    hooks = Hooks()
    opened(graph["B.q_in"])
    source = opened(graph["A.q_out"], ControlLoop(lambda: source.close()), hooks)
    source.put({"n": 0})
    source.put({"n": 1, "key": "k1"})  # no credit: waits, and the quit closes the link under it
    assert hooks.drops == [({"n": 1, "key": "k1"}, "closed")]
    with pytest.raises(LinkClosedError, match="its actor quit"):
        source.put({"n": 2})
    with pytest.raises(LinkClosedError):
        source.put_nowait({"n": 2})
    assert flag(graph.counters[("A.q_out", "B.q_in")], WAITING) == 0


def test_a_closed_transport_closes_the_links(plan, opened):
    graph = plan(("A.q_out", "B.q_in", 1, "block"))
    sink = opened(graph["B.q_in"], ControlLoop(lambda: set_flag(graph.control, CONTROL_CLOSED, 1)))
    source = opened(graph["A.q_out"])
    with pytest.raises(LinkClosedError, match="transport was closed"):
        sink.get()
    with pytest.raises(LinkClosedError, match="transport was closed"):
        source.put(1)


def test_a_sink_that_goes_away_releases_its_producer(plan, opened):
    graph = plan(("A.q_out", "B.q_in", 1, "block"))
    counters = graph.counters[("A.q_out", "B.q_in")]
    hooks = Hooks()
    sink = opened(graph["B.q_in"])
    source = opened(graph["A.q_out"], ControlLoop(lambda: sink.close()), hooks)
    source.put({"key": "a"})
    # No credit: the put waits, the sink's actor quits, and the put goes on without it.
    source.put({"key": "b"})
    assert hooks.drops == [({"key": "a"}, "sink-gone"), ({"key": "b"}, "sink-gone")]
    assert count(counters, SENT) == 1
    assert count(counters, DROPPED_AT_SOURCE) == 1
    source.put({"key": "c"})
    assert hooks.drops[-1] == ({"key": "c"}, "sink-gone")


def test_a_replaced_sink_gets_what_the_old_one_had_not_read(plan, opened):
    graph = plan(("A.q_out", "B.q_in", 4, "block"))
    counters = graph.counters[("A.q_out", "B.q_in")]
    hooks = Hooks()
    first = InLink(graph["B.q_in"], Loop())
    source = opened(graph["A.q_out"], hooks=hooks)
    for n in range(3):
        source.put(n)
    eventually(lambda: first.qsize() == 3, what="three messages at the first sink")
    # The first sink's process dies (nothing closes the link); Nexus restarts the actor, which opens
    # the same descriptor: the epoch moves, and the source sends it what the old one never read.
    first._socket.close(linger=0)
    first._monitor.close(linger=0)
    second = opened(graph["B.q_in"])
    assert flag(counters, SINK_EPOCH) == 2 and flag(counters, SINK_GONE) == 0
    source.put(3)
    assert [second.get(timeout=PATIENCE) for _ in range(4)] == [0, 1, 2, 3]
    assert hooks.drops == []


def test_a_replaced_sink_ignores_what_the_old_connection_brings_back_and_gets_each_message_once(plan, opened):
    graph = plan(("A.q_out", "B.q_in", 8, "block"))
    counters = graph.counters[("A.q_out", "B.q_in")]
    first = InLink(graph["B.q_in"], Loop())
    source = opened(graph["A.q_out"])
    for n in range(3):
        source.put(n)
    eventually(lambda: first.qsize() == 3, what="three messages at the first sink")
    # The first sink's process dies; the source still has credit, and what it sends now waits in its
    # DEALER, which reconnects by itself as soon as something listens at the address again.
    first._socket.close(linger=0)
    first._monitor.close(linger=0)
    time.sleep(0.1)
    source.put(3)
    source.put(4)
    # The restarted sink opens the descriptor in a process of its own: the epoch it bumps reaches the
    # source later (the control channel mirrors it), long after the old connection came back.
    descriptor = dict(graph["B.q_in"])
    descriptor["edges"] = [{**edge, "counters": bytearray(edge["counters"])} for edge in descriptor["edges"]]
    second = opened(descriptor)
    assert flag(descriptor["edges"][0]["counters"], SINK_EPOCH) == 2
    deadline = time.monotonic() + 0.8
    while time.monotonic() < deadline:
        second.flush()
        time.sleep(0.01)
    set_flag(counters, SINK_EPOCH, 2)
    source.flush()
    assert [second.get(timeout=PATIENCE) for _ in range(5)] == [0, 1, 2, 3, 4]
    with pytest.raises(Empty):
        second.get(timeout=0.3)


def test_get_raises_once_every_source_is_gone_and_nothing_is_left(plan, opened):
    graph = plan(("A.q_out", "B.q_in", 4, "block"))
    counters = graph.counters[("A.q_out", "B.q_in")]
    sink = opened(graph["B.q_in"])
    source = opened(graph["A.q_out"])
    source.put("last words")
    source.put("really last")
    source.close()
    set_flag(counters, SOURCE_GONE, 1)  # Nexus detached the source's actor
    assert sink.get(timeout=PATIENCE) == "last words"
    assert sink.get(timeout=PATIENCE) == "really last"
    with pytest.raises(LinkSourcesGoneError, match="every source \\(A.q_out\\) is gone"):
        sink.get(timeout=PATIENCE)
    # A message the dead source counted as sent but never wrote is given up after a grace period.
    struct.pack_into("<d", counters, 8 * SENT, count(counters, SENT) + 1)
    with pytest.raises(LinkSourcesGoneError):
        sink.get(timeout=PATIENCE)


def test_numpy_arrays_travel_in_messages(plan, opened):
    graph = plan(("A.q_out", "B.q_in", 4, "block"))
    sink = opened(graph["B.q_in"])
    source = opened(graph["A.q_out"])
    arrays = [
        np.arange(12, dtype=np.float32).reshape(3, 4),
        np.array([-1.5, 2.25], dtype=np.float64),
        np.array([-3, 7], dtype=np.int16),
        np.arange(5, dtype=np.uint8),
        np.array([2**40, -(2**40)], dtype=np.int64),
    ]
    for array in arrays:
        source.put({"array": array, "t": 1.5})
        message = sink.get(timeout=PATIENCE)
        assert message["t"] == 1.5
        assert message["array"].dtype == array.dtype
        # A message keeps no shape (the store does): the data arrives flat.
        np.testing.assert_array_equal(message["array"], array.ravel())


def test_messages_over_max_message_bytes(plan, opened):
    graph = plan(("A.q_out", "B.q_in", 4, "block"), max_message_bytes=1000)
    counters = graph.counters[("A.q_out", "B.q_in")]
    sink_hooks, source_hooks = Hooks(), Hooks()
    sink = opened(graph["B.q_in"], hooks=sink_hooks)
    source = opened(graph["A.q_out"], hooks=source_hooks)
    with pytest.raises(LinkMessageTooLargeError, match="larger than the 1000 bytes"):
        source.put(np.zeros(1000))
    with pytest.raises(TypeError, match="cannot be sent"):
        source.put(object())
    assert count(counters, SENT) == 0
    # A sink with a lower limit than its source drops what is over it, says so, and gives the credit back.
    graph["B.q_in"]["maxMessageBytes"] = 100
    sink.close()
    small_sink = opened(graph["B.q_in"], hooks=sink_hooks)
    source.put("x" * 500)
    source.put("fits")
    assert small_sink.get(timeout=PATIENCE) == "fits"
    assert count(counters, DROPPED_AT_SINK) == 1
    assert any("larger than maxMessageBytes (100)" in warning for warning in sink_hooks.warnings)
    eventually(lambda: len(source_hooks.drops) == 1, source, what="the drop reported")


def test_a_producer_that_waits_long_is_reported(plan, opened, monkeypatch):
    monkeypatch.setattr(links_module, "SILENCE", 0.05)
    graph = plan(("A.q_out", "B.q_in", 1, "block"))
    counters = graph.counters[("A.q_out", "B.q_in")]
    hooks = Hooks()
    seen = {}

    def quit_once_reported():
        if not any("waiting for room" in warning for warning in hooks.warnings):
            return False
        seen["waiting"] = flag(counters, WAITING)
        source.close()
        return None

    opened(graph["B.q_in"])  # a sink whose actor does not read
    source = opened(graph["A.q_out"], ControlLoop(quit_once_reported), hooks)
    source.put(0)
    source.put(1)
    assert seen == {"waiting": 1}
    [report] = [warning for warning in hooks.warnings if "waiting for room" in warning]
    assert 'link "A.q_out" → B.q_in (connection "c0", ipc://' in report
    assert "1 messages unacknowledged" in report


def test_curve_relays_with_the_pipeline_keys_and_refuses_others(plan, opened):
    public, secret = (key.decode() for key in zmq.curve_keypair())
    graph = plan(("A.q_out", "B.q_in", 4, "block"), protocol="tcp", curve={"publicKey": public, "secretKey": secret})
    sink_hooks = Hooks()
    sink = opened(graph["B.q_in"], hooks=sink_hooks)
    source = opened(graph["A.q_out"])
    join = in_thread(lambda: [source.put({"n": n}) for n in range(100)])
    assert [sink.get(timeout=PATIENCE)["n"] for n in range(100)] == list(range(100))
    join()

    # An intruder with its own pair, who does not know the pipeline's public key.
    wrong_public, wrong_secret = (key.decode() for key in zmq.curve_keypair())
    intruder_descriptor = dict(graph["A.q_out"], curve={"publicKey": wrong_public, "secretKey": wrong_secret})
    intruder_hooks = Hooks()
    intruder = opened(intruder_descriptor, hooks=intruder_hooks)
    intruder.put({"n": -1})
    eventually(lambda: any("refused a peer" in w for w in sink_hooks.warnings), sink, what="the refusal")
    [refusal] = [w for w in sink_hooks.warnings if "refused a peer" in w]
    assert refusal.startswith(f'link "B.q_in" ({graph["B.q_in"]["address"]}): refused a peer at tcp://')
    assert "it does not have the pipeline's CURVE keys" in refusal
    eventually(lambda: any("the sink refused" in w for w in intruder_hooks.warnings), intruder, what="the intruder's report")
    assert sink.qsize() == 0


def test_a_peer_that_is_no_source_is_ignored_and_reported_once(plan, opened):
    graph = plan(("A.q_out", "B.q_in", 4, "block"))
    hooks = Hooks()
    sink = opened(graph["B.q_in"], hooks=hooks)
    stranger = context().socket(zmq.DEALER)
    try:
        stranger.setsockopt(zmq.ROUTING_ID, b"nobody")
        stranger.connect(graph["B.q_in"]["address"])
        for _ in range(3):
            stranger.send_multipart([b"\x01", b"\xc0"])
        eventually(lambda: hooks.warnings, sink, what="the report")
        with pytest.raises(Empty):
            sink.get(timeout=0.05)
    finally:
        stranger.close(linger=0)
    assert len(hooks.warnings) == 1
    assert "routing id 'nobody'" in hooks.warnings[0]


def test_malformed_messages_of_a_source_are_skipped_without_losing_the_frames_of_the_next(plan, opened):
    # The sink reads its ROUTER frame by frame, inline: a message without a body or of another kind is
    # skipped whole (frames after the body are ignored), in a batch with well-formed ones before and after it.
    graph = plan(("A.q_out", "B.q_in", 64, "block"))
    hooks = Hooks()
    sink = opened(graph["B.q_in"], hooks=hooks)
    source_id = graph["A.q_out"]["edges"][0]["id"].encode()
    dealer = context().socket(zmq.DEALER)
    try:
        dealer.setsockopt(zmq.ROUTING_ID, source_id)
        dealer.connect(graph["B.q_in"]["address"])
        good = [msgpack_body(n) for n in range(6)]
        dealer.send_multipart([b"\x01", good[0]])
        dealer.send_multipart([b"\x01", good[1]])
        dealer.send(b"\x01")  # no body
        dealer.send_multipart([b"\x01", good[2], b"extra", b"frames"])
        dealer.send_multipart([b"\x01", good[3]])
        dealer.send_multipart([b"\x07", b"\xc0"])
        dealer.send_multipart([b"\x01", good[4]])
        dealer.send_multipart([b"\x01", good[5]])
        eventually(lambda: sink.qsize() >= 6, sink, what="the six messages")
        assert [sink.get(timeout=PATIENCE)["n"] for _ in range(6)] == list(range(6))
        assert sink.qsize() == 0
    finally:
        dealer.close(linger=0)
    counters = graph.counters[("A.q_out", "B.q_in")]
    assert [count(counters, i) for i in (RECEIVED, TAKEN)] == [6, 6]
    assert len(hooks.warnings) == 1 and "ignored a message" in hooks.warnings[0]


def test_a_message_python_cannot_hold_is_a_clear_error_naming_the_link_and_the_next_one_arrives(plan, opened):
    # TypeScript's Date can lie past the year 9999 (new Date(8.64e15)): msgpack's timestamp 96.
    graph = plan(("A.q_out", "B.q_in", 64, "block"))
    sink = opened(graph["B.q_in"])
    source_id = graph["A.q_out"]["edges"][0]["id"].encode()
    dealer = context().socket(zmq.DEALER)
    try:
        dealer.setsockopt(zmq.ROUTING_ID, source_id)
        dealer.connect(graph["B.q_in"]["address"])
        far = b"\x81\xa1t\xc7\x0c\xff" + (0).to_bytes(4, "big") + (8_640_000_000_000).to_bytes(8, "big", signed=True)
        dealer.send_multipart([b"\x01", far])
        dealer.send_multipart([b"\x01", msgpack_body(1)])
        eventually(lambda: sink.qsize() >= 2, sink, what="the two messages")
        with pytest.raises(ValueError, match=r'link "B.q_in": a message from A.q_out cannot be read in Python \(OverflowError'):
            sink.get(timeout=PATIENCE)
        assert sink.get(timeout=PATIENCE)["n"] == 1
    finally:
        dealer.close(linger=0)


def test_a_sink_welcomes_each_source_once_and_reads_several_messages_in_one(plan, opened):
    # [0x03, packed] is several messages, in order (packed: a msgpack array of bin, one body each); the
    # sink says it reads them ([0x04] and 8 zero bytes: zero credit to a source that takes it for an
    # acknowledgement) once, at the first message.
    graph = plan(("A.q_out", "B.q_in", 64, "block"), ("C.q_out", "B.q_in", 64, "block"))
    sink = opened(graph["B.q_in"])
    dealers = []
    try:
        for name in ("A.q_out", "C.q_out"):
            dealer = context().socket(zmq.DEALER)
            dealer.setsockopt(zmq.ROUTING_ID, graph[name]["edges"][0]["id"].encode())
            dealer.connect(graph["B.q_in"]["address"])
            dealers.append(dealer)
        first, second = dealers
        first.send_multipart([b"\x01", msgpack_body(0)])
        first.send_multipart([b"\x03", packed(range(1, 5))])
        second.send_multipart([b"\x03", packed(range(100, 103))])
        first.send_multipart([b"\x01", msgpack_body(5)])
        # After the welcome (the fast read): more than 15 (array 16), and a body of 300 bytes (bin 16).
        first.send_multipart([b"\x03", packed(range(6, 26))])
        first.send_multipart([b"\x03", msgpack.packb([msgpack_body(26, "x" * 300), msgpack_body(27)])])
        eventually(lambda: sink.qsize() >= 31, sink, what="the 31 messages")
        taken = [sink.get(timeout=PATIENCE)["n"] for _ in range(31)]
        assert [n for n in taken if n < 100] == list(range(28))
        assert [n for n in taken if n >= 100] == [100, 101, 102]
        for dealer in dealers:
            assert dealer.poll(PATIENCE * 1000)
            assert dealer.recv_multipart() == [b"\x04", bytes(8)]
            # Then only acknowledgements: each message read is acknowledged once.
            acked = 0
            while dealer.poll(200):
                kind, counts = dealer.recv_multipart()
                assert kind == b"\x02"
                acked += sum(struct.unpack("<II", counts))
            assert acked == (28 if dealer is first else 3)
    finally:
        for dealer in dealers:
            dealer.close(linger=0)


def test_a_sink_ignores_a_batch_it_cannot_read_says_so_once_and_reads_on(plan, opened):
    graph = plan(("A.q_out", "B.q_in", 64, "block"))
    hooks = Hooks()
    sink = opened(graph["B.q_in"], hooks=hooks)
    dealer = context().socket(zmq.DEALER)
    dealer.setsockopt(zmq.ROUTING_ID, graph["A.q_out"]["edges"][0]["id"].encode())
    dealer.connect(graph["B.q_in"]["address"])
    try:
        dealer.send_multipart([b"\x01", msgpack_body(0)])
        eventually(lambda: sink.qsize() >= 1, sink, what="the first message")
        # A body per frame (not packed), an array of something else than bin, a frame cut short, an empty array.
        dealer.send_multipart([b"\x03", msgpack_body(1), msgpack_body(2)])
        dealer.send_multipart([b"\x03", msgpack.packb([1, 2])])
        dealer.send_multipart([b"\x03", packed([3])[:4]])
        dealer.send_multipart([b"\x03", msgpack.packb([])])
        dealer.send_multipart([b"\x03", packed([5, 6])])
        eventually(lambda: sink.qsize() >= 3, sink, what="the three good messages")
        assert [sink.get(timeout=PATIENCE)["n"] for _ in range(3)] == [0, 5, 6]
    finally:
        dealer.close(linger=0)
    assert len(hooks.warnings) == 1
    assert "ignored a [0x03] message from" in hooks.warnings[0]
    assert "msgpack array of bin" in hooks.warnings[0]


def msgpack_body(n, pad=None):
    from improv_ts import _codec

    return _codec.packb({"n": n} if pad is None else {"n": n, "pad": pad})


def packed(numbers):
    """A FRAME_BATCH's frame of the messages {"n": n}, made with msgpack (not the package's code)."""
    return msgpack.packb([msgpack_body(n) for n in numbers])


def test_open_link_checks_its_descriptor(plan, opened):
    graph = plan(("A.q_out", "B.q_in", 4, "block"), protocol="tcp")
    with pytest.raises(TypeError, match="not made by the zmq transport"):
        open_link(dict(graph["B.q_in"], transport="local"), Loop())
    with pytest.raises(TypeError, match="has direction 'sideways'"):
        open_link(dict(graph["B.q_in"], direction="sideways"), Loop())
    with pytest.raises(TypeError, match="writable bytearray"):
        open_link(dict(graph["B.q_in"], control=bytes(8)), Loop())
    opened(graph["B.q_in"])
    # Another plan's sink on the same address: the port is taken.
    with pytest.raises(OSError, match="cannot listen on tcp://127.0.0.1:\\d+: the address is in use"):
        open_link(graph["B.q_in"], Loop())
