"""The links of Python actors: the Python end of `@improv/transport-zmq`, with the same semantics.

A Python actor runs in a process of its own and reaches the rest of the pipeline over the zmq
transport. Nexus plans the links in TypeScript and hands each endpoint's descriptor to the actor
process; `open_link(descriptor, loop, hooks)` rebuilds the endpoint here, and the other end may be
TypeScript (either socket implementation of the package) or Python. Everything the two TypeScript ends
agree on (`packages/transport-zmq/src/_protocol.ts`, the README's wire format) holds here too:

- a sink (`InLink`) binds one ROUTER; each source (`OutLink`) connects one DEALER per edge, with
  the edge's id as its routing id; CURVE when the descriptor has `curve` (sinks serve with the
  pipeline's key pair, sources trust its public key);
- a message is `[b'\\x01', msgpack body]` (improv's codec, `_codec.py`), or `[b'\\x01' + u32le epoch,
  msgpack body]` to a sink opened again from the same descriptor (a restarted actor: epoch 2 or more),
  which takes only the messages stamped with its own epoch (`_message_frame`); a sink acknowledges what
  left its queue with `[b'\\x02', u32le taken, u32le dropped]`, first `taken` read by the actor,
  then `dropped` dropped by `drop-oldest`, both from the head of that edge's queue;
- credit: a source has `capacity` messages of an edge that its sink has not taken out of its queue,
  and keeps a copy of each until it is acknowledged. `block` waits for credit (so `put` returns
  only when the sink's *actor* has room); `drop-oldest` never waits, the sink drops its oldest and
  says so, and the source reports that message to `hooks.dropped`;
- the shared words: each edge's `counters` (float64 counts at 8*i, int32 flags at 4*i) and the plan's
  `control` words, written by the same side as in TypeScript (a source: SENT, DROPPED_AT_SOURCE,
  BYTES_SENT, ACKED_TAKEN, ACKED_DROPPED, WAITING, SOURCE_GONE cleared at open; a sink: RECEIVED, TAKEN, DROPPED_AT_SINK, SINK_GONE,
  SINK_EPOCH). Across processes they are `bytearray`s that the control channel mirrors, so Nexus's
  metrics and link states read right for a Python actor.

Why it looks the way it does: the actor process runs one thread, and the control channel from Nexus
is served on it. A call that has to wait (a `get` with nothing to read, a `put` without credit, any
call while the link is held) never blocks on its sockets alone: it calls `loop.wait(sockets,
timeout)`, during which a signal may hold, release or close this very link, and the shared words may
change. After each return the call looks at everything again. There is no background thread, so the
work the TypeScript ends do between turns of their event loop (reading the socket, acknowledging)
happens in the calls, and in `flush()`, which the actor host may call between steps.

Where this end differs from the TypeScript one (each on purpose):

- `close()` lingers up to `LINGER_MS` instead of 0: libzmq writes on its I/O thread, so what a
  `put` handed it may not be on the wire yet, and linger 0 would drop the last messages of a source
  that closes right after its last `put` (the TypeScript sockets write synchronously). The process
  should terminate the zmq context when it ends (`context().term()`) so lingering messages go out.
  Before that, a source waits (up to `LINGER_MS`, while the pipeline runs) until its live sinks have
  acknowledged everything it sent, as the TypeScript sources do: see `_settle`.
- ROUTER_HANDOVER is on: a source that reconnects with the same routing id (a restarted source, or
  a fresh DEALER after its sink was replaced) takes over at once instead of being refused by libzmq
  while the old connection is not yet torn down.
- The descriptor's `sockets` choice (TypeScript ZMTP or zeromq.js) does not apply: this end is
  always libzmq (pyzmq), which speaks the same ZMTP.
- Acknowledgements: the TypeScript sink sends them at least once per turn of its event loop; here a
  sink sends them per half of the capacity, whenever an edge's queue runs empty, before it waits,
  and at `flush()`. A sink reads its socket only in these calls too, so RECEIVED and `drop-oldest`
  move when the actor calls its link (a `drop-oldest` source sees a sink whose actor does not call
  for long as stalled, as it sees a TypeScript sink whose event loop is blocked).
- improv's names: `get(timeout=)` raises `queue.Empty`; `get_nowait()` (TypeScript: `tryGet()`)
  raises `queue.Empty` and `put_nowait()` raises `queue.Full` when the call cannot go on now,
  also while the link is held (neither waits, so neither calls `on_held`). A timed `get` that
  waits because the link is held still ends at its timeout (as in TypeScript); `put` has no
  timeout. Hooks are snake_case: `dropped_for_one_sink` is TypeScript's `droppedForOneSink`.
- Connection news (refused handshakes, a sink not reached) comes from libzmq's socket monitors,
  read when a call or `flush()` runs, so a refusal is reported then, not at the moment it happens.
- `CONTROL_SEQ` is bumped from here as the TypeScript ends bump it (`announce`), though it has
  writers on both sides: across the mirror it only serves as a wake-up (the TypeScript side's mirror
  notifies waiters at every word it applies), and no end reads its value for anything else.

@example
```python
from improv_ts._loop import Loop
from improv_ts.links import open_link

q_in = open_link(descriptors["q_in"], Loop())
q_out = open_link(descriptors["q_out"], Loop())
message = q_in.get(timeout=1.0)          # queue.Empty after 1 s without a message
q_out.put({"key": message["key"], "t": message["t"]})
```
"""

import collections
import itertools
import datetime
import math
import os
import queue
import struct
import time

import msgpack
import zmq
from zmq.utils.monitor import parse_monitor_message

from . import _codec
from ._loop import context
from .errors import Empty, ImprovError, LinkClosedError, LinkMessageTooLargeError, LinkSourcesGoneError

#: Numbers for monitor addresses. pyzmq's default (`inproc://monitor.s-<fd>`) can meet the address of
#: a socket just closed with the same file descriptor, whose monitor libzmq has not let go yet
#: ("Address already in use" when a source reopens its dealer for a restarted sink).
_monitor_ids = itertools.count()


def _monitor_address():
    return f"inproc://improv-monitor-{os.getpid()}-{next(_monitor_ids)}"


__all__ = ["InLink", "LinkSourcesGoneError", "OutLink", "open_link"]

# -- the protocol (`_protocol.ts`)

FRAME_MESSAGE = b"\x01"
FRAME_ACK = b"\x02"
#: Several messages at once (with the epoch as for FRAME_MESSAGE); one frame follows, a msgpack array of
#: bin, each one message's body (`packBodies` of `_protocol.ts`). A source sends it only to a sink that
#: said FRAME_BATCHES_WELCOME.
FRAME_BATCH = b"\x03"
#: A sink's word, with 8 zero bytes, that it reads FRAME_BATCH: once to each source, at its first message.
FRAME_BATCHES_WELCOME = b"\x04"
_WELCOME_PAYLOAD = bytes(8)
_BYTES_ONLY = frozenset((bytes,))

#: Bytes of one edge's counters.
EDGE_BYTES = 88
# float64 counts (index i at byte 8*i), each written by one side only.
SENT = 0
DROPPED_AT_SOURCE = 1
RECEIVED = 2
TAKEN = 3
DROPPED_AT_SINK = 4
DROPPED_AT_DETACH = 5
#: Bytes of the message bodies a source sent (float64 index 8, after the flags), for metrics.
BYTES_SENT = 8
#: Messages the sink acknowledged as read / as dropped, summed by the source from its acknowledgements
#: (float64 indices 9 and 10): a SIGKILLed sink process loses its last mirrored TAKEN, the live source
#: still counts them; Nexus takes the larger of the two.
ACKED_TAKEN = 9
ACKED_DROPPED = 10
# int32 flags (index i at byte 4*i).
WAITING = 12
SINK_GONE = 13
SOURCE_GONE = 14
SINK_EPOCH = 15

#: Bytes of the plan's control words (int32).
CONTROL_BYTES = 8
CONTROL_CLOSED = 0
CONTROL_SEQ = 1

#: How long a sink waits for messages a source that is gone counted as sent (`_input.ts`).
IN_FLIGHT_GRACE = 0.5
#: Waiting this long for room without a word from the sink is reported, once per outage (`_output.ts`).
SILENCE = 5.0
#: How often a peer that keeps failing the handshake is reported again (`_input.ts`).
REFUSAL_REPEAT = 30.0
#: How long a closed link's sockets may still send what was handed to libzmq (see the module docstring).
LINGER_MS = 1000
#: Messages taken that add up to this many bytes are acknowledged from a quarter of the capacity (the
#: TypeScript sink's `LARGE_ACK_BYTES`).
LARGE_ACK_BYTES = 256 * 1024
#: A source's DEALER retries a sink that is not there every 10 ms, backing off to 250 ms (as the TypeScript sockets do).
RECONNECT_IVL_MS = 10
RECONNECT_IVL_MAX_MS = 250

# pyzmq's flags are enums, whose operators cost more than the call they go into: plain ints.
_NOBLOCK = int(zmq.NOBLOCK)
_EVENTS = int(zmq.EVENTS)
_RCVMORE = int(zmq.RCVMORE)
_POLLIN = int(zmq.POLLIN)

_ACK = struct.Struct("<II")

_HANDSHAKE_FAILED = (
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_AUTH
)
_SOURCE_EVENTS = _HANDSHAKE_FAILED | zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED | zmq.EVENT_CONNECT_RETRIED

_NOTHING = object()
_INF = math.inf


# -- shared words


def _message_frame(epoch):
    """The first frame of a message a source sends for the sink of epoch `epoch` (its view of SINK_EPOCH).

    `b'\\x01'` for the first sink an edge has (epoch 0: none opened yet, or 1), so plain ZeroMQ peers see
    the documented format; `b'\\x01'` and u32le epoch for every later one. A source's DEALER reconnects
    by itself: when a sink process dies and its restarted incarnation binds the same address, the old
    connection delivers to the new sink what was queued for the old one, before the source has seen the
    new epoch and sent everything unacknowledged again on a fresh DEALER. The new sink ignores what is
    stamped for another epoch, so each message reaches it once (as in `_protocol.ts`).
    """
    return FRAME_MESSAGE if epoch <= 1 else FRAME_MESSAGE + struct.pack("<I", epoch)


def _message_epoch(frame):
    """The sink epoch a message's first frame was sent for: 1 for a bare `b'\\x01'` (the first sink)."""
    return 1 if len(frame) < 5 else struct.unpack_from("<I", frame, 1)[0]


def _shared(value, size, what):
    """A writable byte view of `value`: a bytearray as the control channel delivers a SharedArrayBuffer."""
    if isinstance(value, (bytearray, memoryview)):
        view = memoryview(value)
        if not view.readonly and view.c_contiguous and view.nbytes >= size:
            return value if isinstance(value, bytearray) else view.cast("B")
    raise TypeError(
        f"{what}: expected a writable bytearray of at least {size} bytes (a SharedArrayBuffer as the control "
        f"channel delivers it), got {type(value).__name__}"
        + (f" of {len(value)} bytes" if isinstance(value, (bytes, bytearray)) else "")
    )


class _Words:
    """Views of one shared buffer: float64 counts and int32 flags at the offsets of the TypeScript views,
    in the machine's byte order as a SharedArrayBuffer's typed arrays (memoryviews: a counter added at
    every message costs a third of a struct round trip)."""

    __slots__ = ("_f64", "_i32")

    def __init__(self, buffer):
        view = memoryview(buffer)
        self._f64 = view[: len(view) // 8 * 8].cast("d")
        self._i32 = view[: len(view) // 4 * 4].cast("i")

    def count(self, index):
        return self._f64[index]

    def add(self, index, amount=1):
        self._f64[index] += amount

    def flag(self, index):
        return self._i32[index]

    def set_flag(self, index, value):
        # Unchanged words are not written: the mirror sends only what changed, and so does this.
        if self._i32[index] != value:
            self._i32[index] = value

    def bump(self, index):
        """Adds 1 to an int32 word, wrapping as `Atomics.add` does."""
        value = self._i32[index] + 1
        self._i32[index] = value - 2**32 if value >= 2**31 else value


# -- helpers shared by both ends


def _unpack_bodies(packed):
    """The message bodies of a FRAME_BATCH's frame (a list of bytes), or None when it is not a msgpack
    array of bin (or holds none). One call splits the batch: reading a frame per message cost ~0.7 µs
    each (a `recv` and a "more frames?" call), an element of the array ~0.04 µs."""
    try:
        bodies = msgpack.unpackb(packed)
    except Exception:  # noqa: BLE001 - any malformed msgpack
        return None
    if type(bodies) is not list or not bodies or not set(map(type, bodies)) <= _BYTES_ONLY:
        return None
    return bodies


def _hook(hooks, name):
    if hooks is None:
        return None
    hook = hooks.get(name) if isinstance(hooks, dict) else getattr(hooks, name, None)
    return hook if callable(hook) else None


def _check(descriptor):
    if not isinstance(descriptor, dict) or descriptor.get("transport") != "zmq" or not isinstance(
        descriptor.get("edges"), list
    ):
        module = descriptor.get("module") if isinstance(descriptor, dict) else None
        raise TypeError(
            f'improv_ts.links: the descriptor of link "{_describe(descriptor)}" was not made by the zmq '
            f"transport (its module is {module}); a Python actor's links must be on transport: zmq"
        )


def _describe(descriptor):
    endpoint = descriptor.get("endpoint") if isinstance(descriptor, dict) else None
    if not isinstance(endpoint, dict):
        return "None.None"
    return f"{endpoint.get('actor')}.{endpoint.get('link')}"


def _closed_error(label, closed_here):
    if closed_here:
        return LinkClosedError(
            f'link "{label}" is closed (its actor quit); a closed link cannot be used again — a revived actor '
            "opens a new one from its descriptor"
        )
    return LinkClosedError(
        f'link "{label}" is closed because its transport was closed (the pipeline run ended); start a new run '
        "to get new links"
    )


def _secure(socket, curve, server):
    """Makes `socket` a CURVE server (a sink) or a client that trusts the pipeline's public key (a source)."""
    if not curve:
        return
    socket.curve_secretkey = curve["secretKey"].strip().encode()
    socket.curve_publickey = curve["publicKey"].strip().encode()
    if server:
        socket.curve_server = True
    else:
        socket.curve_serverkey = curve.get("serverKey", curve["publicKey"]).strip().encode()


def _handshake_reason(event, value):
    """What a failed handshake means, in words (libzmq gives a protocol error code, a status or an errno)."""
    if event == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL:
        if value == zmq.PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC:
            return "the CURVE handshake failed (the keys do not match)"
        if value == zmq.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
            return "security mechanism mismatch (one side uses CURVE, the other does not)"
        for name in dir(zmq):
            if name.startswith("PROTOCOL_ERROR_") and getattr(zmq, name) == value:
                return f"protocol error {name[len('PROTOCOL_ERROR_'):]}"
        return f"protocol error {value:#x}"
    if event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
        return f"authentication failed (status {value})"
    return f"the handshake failed ({os.strerror(value) if value > 0 else 'no detail'})"


def _monitor_events(monitor):
    """Every event waiting on a monitor socket, as (event, value, endpoint)."""
    events = []
    for frames in _waiting(monitor):
        parsed = parse_monitor_message(frames)
        events.append((int(parsed["event"]), int(parsed["value"]), parsed["endpoint"].decode(errors="replace")))
    return events


def _waiting(socket):
    """Every message waiting on `socket`, without blocking. Whether one waits is asked of libzmq, not
    learnt from a failing read: an exception costs more than the rest of a hop. The frames are read
    one by one (pyzmq's `recv_multipart` costs twice as much for a short message). A sink's ROUTER
    is read by `InLink._receive`, which does the same inline."""
    get, recv = socket.get, socket.recv
    while True:
        try:
            if not get(_EVENTS) & _POLLIN:
                return
            frames = [recv(_NOBLOCK)]
            while get(_RCVMORE):
                frames.append(recv(_NOBLOCK))
        except zmq.ZMQError:  # zmq.Again included
            return
        yield frames


def _close_socket(socket, monitor, linger):
    if monitor is not None:
        try:
            socket.disable_monitor()
        except zmq.ZMQError:
            pass
        monitor.close(linger=0)
    socket.close(linger=linger)


def _deadline(timeout, what):
    """When a wait of `timeout` seconds ends; `what()` names the call in the error for a bad timeout."""
    if timeout is None:
        return None
    if type(timeout) is float and 0 <= timeout < math.inf:
        return time.monotonic() + timeout
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout >= 0 or math.isinf(timeout):
        raise ValueError(f"{what()}: give a number of seconds ≥ 0 (or None: no limit), not {timeout!r}")
    return time.monotonic() + timeout


def _until(*moments):
    """Seconds until the earliest of `moments` (None ones ignored), at least 0; None when all are None."""
    known = [moment for moment in moments if moment is not None]
    if not known:
        return None
    return max(0.0, min(known) - time.monotonic())


class _Endpoint:
    """What both ends share: names, the control words, hold/release, the wait of a call."""

    def __init__(self, descriptor, loop, hooks):
        _check(descriptor)
        endpoint = descriptor["endpoint"]
        #: The link name (`q_in`, `q_out`, ...).
        self.name = endpoint["link"]
        #: `Actor.link`, as the pipeline's log names the link.
        self.label = f"{endpoint['actor']}.{endpoint['link']}"
        self._loop = loop
        self._hooks = hooks
        self._warn_hook = _hook(hooks, "warn")
        self._control = _Words(_shared(descriptor.get("control"), CONTROL_BYTES, f'link "{self.label}": control'))
        # Its int32 words, for the CONTROL_CLOSED look at every get without a call.
        self._control_flags = self._control._i32
        self._max_message_bytes = int(descriptor.get("maxMessageBytes", 8 * 2**20))
        self._curve = descriptor.get("curve")
        self._closed_here = False
        self._on_held = None
        # A call (get/put) is under way, and whether it has called on_held during this hold.
        self._busy = False
        self._told = False

    def hold(self, on_held):
        """Holds the link (the actor host does it on pause and stop).

        From now on a `get` takes no message and a `put` sends none and keeps its message, until
        `release()`; nothing is raised and nothing is lost. `on_held()` is called when a call waits
        because of the hold: at once when one waits now, else when one comes.
        """
        if self._closed_here:
            return
        self._on_held = on_held
        self._told = False
        if self._busy:
            self._tell_held()

    def release(self):
        """Ends `hold()`: a call parked by it goes on when the loop returns to it."""
        self._on_held = None
        self._told = False

    def _tell_held(self):
        if self._told or self._on_held is None:
            return
        self._told = True
        self._on_held()

    def _is_closed(self):
        return self._closed_here or self._control.flag(CONTROL_CLOSED) != 0

    def _closed_error(self):
        return _closed_error(self.label, self._closed_here)

    def _announce(self):
        """Tells the other ends to look at the flags again (the mirror carries it at the next round, sent now)."""
        self._control.bump(CONTROL_SEQ)
        self._loop.flush()

    def _warn(self, text):
        if self._warn_hook is None:
            return
        try:
            self._warn_hook(text)
        except Exception:  # noqa: BLE001 - a hook's failure must not break the link
            pass


# -- the sink


class _InEdge:
    __slots__ = ("words", "counts", "connection", "peer", "capacity", "drop_oldest", "routing_id", "queue", "taken",
                 "taken_bytes", "dropped", "ack_batch", "ack_batch_large", "gone_since", "arrived", "epoch", "welcomed")

    def __init__(self, info, words):
        self.words = words
        # The float64 counts of `words`, for the one added at every message taken (TAKEN) without a call.
        self.counts = words._f64
        self.connection = info.get("connection", "")
        self.peer = info.get("peer", "")
        self.capacity = int(info["capacity"])
        self.drop_oldest = info.get("policy") == "drop-oldest"
        self.routing_id = info["id"].encode("latin-1")
        self.queue = collections.deque()
        # Not yet acknowledged: first `taken` read, then `dropped` dropped.
        self.taken = 0
        # Bytes of the messages taken since the last acknowledgement.
        self.taken_bytes = 0
        # Received by the read under way, not counted in the shared RECEIVED word yet.
        self.arrived = 0
        self.dropped = 0
        # Acknowledge at once from this many messages read (half the capacity), or from a quarter of the
        # capacity once those carried LARGE_ACK_BYTES (as the TypeScript sink).
        self.ack_batch = max(1, math.ceil(self.capacity / 2))
        self.ack_batch_large = max(1, math.ceil(self.capacity / 4))
        self.gone_since = None
        # This sink's epoch on the edge (1: the first sink the edge had); see `_message_frame`.
        self.epoch = words.flag(SINK_EPOCH)
        # This sink told the source that it reads several messages in one (FRAME_BATCHES_WELCOME).
        self.welcomed = False


class InLink(_Endpoint):
    """The receiving end of a link (`self.q_in`): one ROUTER that every source of the endpoint connects to.

    Messages wait in one queue per edge, read round-robin so no source starves the others. Each
    message read, or dropped by `drop-oldest`, is acknowledged to its source, which gives that
    source its credit back.
    """

    direction = "in"

    def __init__(self, descriptor, loop, hooks=None):
        super().__init__(descriptor, loop, hooks)
        if descriptor.get("direction") != "in":
            raise TypeError(f'link "{self.label}": InLink needs a descriptor of direction "in"')
        self._address = descriptor["address"]
        self._edges = []
        self._by_id = {}
        for info in descriptor["edges"]:
            words = _Words(_shared(info.get("counters"), EDGE_BYTES, f'link "{self.label}": edge counters'))
            # A revived actor reopens the descriptor of the one that quit: its sources deliver to it again,
            # and the new epoch tells them that a sink that never looked gone was replaced.
            words.set_flag(SINK_GONE, 0)
            words.bump(SINK_EPOCH)
            edge = _InEdge(info, words)
            self._edges.append(edge)
            self._by_id[edge.routing_id] = edge
        # What arrives may push out what is queued: such a link reads its socket at every call.
        self._drop_oldest = any(edge.drop_oldest for edge in self._edges)
        #: The one edge of a link with one source that never drops the oldest (get's shortcut), else None.
        self._only = self._edges[0] if len(self._edges) == 1 and not self._drop_oldest else None
        self._batches = False
        self._next = 0
        self._strangers = set()
        #: Sources that sent a FRAME_BATCH this sink could not read (said once each).
        self._malformed_from = set()
        self._refusals = 0
        self._refused_said_at = -math.inf
        self._socket = None
        self._monitor = None
        self._announce()
        try:
            socket = context().socket(zmq.ROUTER)
            self._socket = socket
            socket.setsockopt(zmq.LINGER, 0)
            socket.setsockopt(zmq.ROUTER_HANDOVER, 1)
            # Credit bounds what is in flight; a high-water mark must never drop or stall an acknowledgement.
            socket.setsockopt(zmq.SNDHWM, 0)
            socket.setsockopt(zmq.RCVHWM, 0)
            _secure(socket, self._curve, server=True)
            self._monitor = socket.get_monitor_socket(_HANDSHAKE_FAILED, addr=_monitor_address())
            socket.bind(self._address)
        except zmq.ZMQError as error:
            self.close()
            if error.errno == zmq.EADDRINUSE:
                why = "the address is in use by another program; free it or pick another"
            else:
                why = error.strerror
            raise OSError(error.errno, f'link "{self.label}": cannot listen on {self._address}: {why}') from error

    def __repr__(self):
        return f"<InLink {self.label} at {self._address}{' (closed)' if self._closed_here else ''}>"

    # -- reading

    def get(self, timeout=None):
        """The next message; waits for one (at most `timeout` seconds, then raises `queue.Empty`).

        Raises `LinkClosedError` once the link or its transport is closed, and
        `LinkSourcesGoneError` once every source is gone and no message is left. While the link is
        held it takes no message (and calls `on_held` of `hold()`), but a timeout still ends it.
        """
        # Most calls behind a fast source: one edge, a message queued before this call (nothing to read
        # first, see _receive_if_due), the link neither held nor closed, a valid timeout: taken at once.
        edge = self._only
        if (
            edge is not None
            and edge.queue
            and self._on_held is None
            and (timeout is None or (type(timeout) is float and 0 <= timeout < _INF))
            and not self._closed_here
            and self._control_flags[CONTROL_CLOSED] == 0
        ):
            self._told = False
            return self._take_from(edge)
        deadline = _deadline(timeout, lambda: f"{self.name}.get(timeout=...)")
        self._busy = True
        self._told = False
        try:
            while True:
                if self._is_closed():
                    raise self._closed_error()
                recheck = None
                if self._on_held is None:
                    self._receive_if_due()
                    value = self._take()
                    if value is not _NOTHING:
                        return value
                    gone, recheck = self._sources_gone()
                    if gone:
                        raise self._gone_error()
                else:
                    # Held: everything waiting is read (and counted), so the wait below waits.
                    self._receive()
                    self._tell_held()
                # Before waiting, as the TypeScript sink does before its event loop turns.
                self._flush_acks()
                if deadline is not None and time.monotonic() >= deadline:
                    raise Empty(f"no message on {self.name} within {timeout} s")
                self._loop.wait([self._socket, self._monitor], _until(deadline, recheck))
                self._watch_handshakes()
        finally:
            self._busy = False

    def get_nowait(self):
        """The next message if one is waiting (and the link is not held); `queue.Empty` otherwise."""
        if self._is_closed():
            raise self._closed_error()
        if self._on_held is not None:
            raise Empty(f"{self.name} is held")
        self._receive_if_due()
        value = self._take()
        if value is _NOTHING:
            self._flush_acks()
            raise Empty(f"no message waiting on {self.name}")
        return value

    def qsize(self):
        """Messages waiting to be read (what has arrived so far)."""
        if not self._is_closed():
            self._receive()
        return sum(len(edge.queue) for edge in self._edges)

    def empty(self):
        """True when no message waits to be read."""
        return self.qsize() == 0

    def flush(self):
        """Reads what arrived and sends the acknowledgements owed, without waiting.

        The TypeScript sink does this in the background; here the calls do it, and the actor host
        may call `flush()` between steps so sources get their credit back while the actor works.
        Nothing while a `get` of this link waits: that call does it itself.
        """
        if self._busy or self._is_closed():
            return
        self._receive()
        self._flush_acks()
        self._watch_handshakes()

    def close(self):
        """Closes the link: sockets released, sources told the sink is gone, a waiting `get` raises."""
        if self._closed_here:
            return
        self._closed_here = True
        if self._socket is not None:
            self._flush_acks()
            _close_socket(self._socket, self._monitor, LINGER_MS)
        # Sources stop waiting for this sink and report what it never read. What it had received but
        # not read stays counted as unread: the planner counts it dropped when it detaches this actor
        # or drains the links at quit (as the TypeScript sink does).
        for edge in self._edges:
            edge.queue.clear()
            edge.words.set_flag(SINK_GONE, 1)
        self._announce()

    # -- inside

    def _receive_if_due(self):
        """Reads what arrived when that can change what is taken next: when an edge's queue is empty
        (its next message may be waiting in the socket) or the link drops the oldest. Otherwise the
        queued messages go first: reading the socket at every call took one message per call, and
        its two readiness checks and three frames cost more than the rest of the call. Credit bounds
        what waits in the socket meanwhile; a call that finds nothing to take has read it all."""
        if self._drop_oldest:
            self._receive()
            return
        for edge in self._edges:
            if not edge.queue:
                self._receive()
                return

    def _receive(self):
        """Takes every message that has arrived into the edges' queues (dropping the oldest where the policy says).

        `_waiting` for a ROUTER, inline: a message of a known source, in the first sink's format
        (`[routing id, b'\\x01', body]`, or several: `[routing id, b'\\x03', packed bodies]`) on an edge
        that drops nothing, was welcomed and is within maxMessageBytes, goes straight into its queue;
        anything else goes through `_on_message`. A generator, a frame list
        and a call per message were a fifth of the read."""
        socket = self._socket
        get, recv = socket.get, socket.recv
        by_id = self._by_id
        largest = self._max_message_bytes
        # After a read that found several messages, only the first one is asked for: the reads go on until
        # one fails (one exception per batch instead of a readiness check per message).
        ask = True
        until_fails = self._batches
        count = 0
        while True:
            try:
                if ask and not get(_EVENTS) & _POLLIN:
                    break
                # A ROUTER's message always has its routing id and at least one frame of its own.
                routing = recv(_NOBLOCK)
                kind = recv(_NOBLOCK)
                body = recv(_NOBLOCK) if get(_RCVMORE) else None
                more = None
                if body is not None and get(_RCVMORE):
                    more = [routing, kind, body, recv(_NOBLOCK)]
                    while get(_RCVMORE):
                        more.append(recv(_NOBLOCK))
            except zmq.ZMQError:  # zmq.Again included
                break
            ask = not until_fails
            count += 1
            edge = by_id.get(routing)
            if (
                edge is not None
                and edge.welcomed
                and edge.epoch <= 1
                and not edge.drop_oldest
                and more is None
                and body is not None
            ):
                if kind == FRAME_MESSAGE:
                    if len(body) <= largest:
                        edge.arrived += 1
                        edge.queue.append(body)
                        continue
                elif kind == FRAME_BATCH:
                    bodies = _unpack_bodies(body)
                    if bodies is not None and max(map(len, bodies)) <= largest:
                        edge.arrived += len(bodies)
                        edge.queue.extend(bodies)
                        continue
            self._on_message(more if more is not None else [routing, kind] if body is None else [routing, kind, body])
        # Several messages at once now: most likely so at the next read too.
        self._batches = count > 1
        # Counted, and drops acknowledged, once per batch read (the TypeScript sink: once per turn).
        for edge in self._edges:
            if edge.arrived > 0:
                edge.words.add(RECEIVED, edge.arrived)
                edge.arrived = 0
            if edge.dropped > 0:
                self._send_ack(edge)

    def _on_message(self, frames):
        edge = self._by_id.get(frames[0])
        kind = frames[1][:1] if len(frames) > 1 else b""
        if edge is None or len(frames) < 3 or (kind != FRAME_MESSAGE and kind != FRAME_BATCH):
            self._stranger(frames)
            return
        # Sent for an earlier incarnation of this sink (an old connection of the source that came back on
        # its own): not taken, not acknowledged. The source sends it again on a fresh DEALER once it sees
        # this sink's epoch, as it does everything the earlier one did not acknowledge.
        if (len(frames[1]) > 1 or edge.epoch > 1) and _message_epoch(frames[1]) != edge.epoch:
            return
        if not edge.welcomed:
            # Once per source and incarnation of this sink: it may send several messages in one from now on.
            edge.welcomed = True
            try:
                self._socket.send_multipart([edge.routing_id, FRAME_BATCHES_WELCOME, _WELCOME_PAYLOAD], _NOBLOCK)
            except zmq.Again:
                pass
        if kind == FRAME_MESSAGE:
            self._arrived(edge, frames[2])
            return
        bodies = _unpack_bodies(frames[2]) if len(frames) == 3 else None
        if bodies is None:
            self._malformed(edge, frames)
            return
        for body in bodies:
            self._arrived(edge, body)

    def _warn_once(self, said, key, text):
        """`_warn(text)`, the first time only for `key` in the set `said`."""
        if key not in said:
            said.add(key)
            self._warn(text)

    def _malformed(self, edge, frames):
        self._warn_once(
            self._malformed_from,
            edge,
            f'link "{self.label}": ignored a [0x03] message from {edge.peer} that is not [0x03, one frame: a '
            f"msgpack array of bin, each a message's body] ({len(frames) - 1} frames); the source and this sink may "
            "be of different versions of improv"
        )

    def _arrived(self, edge, body):
        """One message from `edge`'s source into its queue (or dropped: too large, or drop-oldest full)."""
        edge.arrived += 1
        if len(body) > self._max_message_bytes:
            edge.words.add(DROPPED_AT_SINK)
            self._warn(
                f'link "{self.label}": dropped a {len(body)}-byte message from {edge.peer}, larger than '
                f"maxMessageBytes ({self._max_message_bytes})"
            )
            edge.dropped += 1
            return
        edge.queue.append(body)
        if edge.drop_oldest and len(edge.queue) > edge.capacity:
            edge.queue.popleft()
            edge.words.add(DROPPED_AT_SINK)
            edge.dropped += 1

    def _stranger(self, frames):
        key = frames[0].decode("latin-1")
        self._warn_once(
            self._strangers,
            key,
            f'link "{self.label}": ignored a message from a peer that is no source of this link (routing id '
            f"{key!r}, {len(frames) - 1} frames); a source connects a DEALER with the routing id its descriptor "
            "gives and sends [0x01, msgpack body]"
        )

    def _take(self):
        """The next message of the next non-empty edge (round-robin), or _NOTHING."""
        edges = self._edges
        count = len(edges)
        for k in range(count):
            index = (self._next + k) % count
            edge = edges[index]
            if not edge.queue:
                continue
            self._next = (index + 1) % count
            return self._take_from(edge)
        return _NOTHING

    def _take_from(self, edge):
        """The next message of `edge` (its queue is not empty), acknowledged when due."""
        body = edge.queue.popleft()
        edge.counts[TAKEN] += 1
        # Acknowledgements count from the head: drops before this read go first.
        if edge.dropped > 0:
            self._send_ack(edge)
        taken = edge.taken = edge.taken + 1
        edge.taken_bytes += len(body)
        # In batches of half the capacity (a quarter once that quarter carried LARGE_ACK_BYTES: larger
        # messages get their credit back sooner, or the source waits for credit with the socket
        # idle), and whenever this edge's queue runs empty, so a consumer that reads what there is
        # and then works a while does not hold its producer back.
        if (
            taken >= edge.ack_batch
            or (taken >= edge.ack_batch_large and edge.taken_bytes >= LARGE_ACK_BYTES)
            or not edge.queue
        ):
            self._send_ack(edge)
        try:
            return _codec.unpackb(body)
        except (ValueError, TypeError, OverflowError) as error:
            # Python cannot hold what TypeScript could (a Date past the year 9999, a Set of Sets):
            # said with the link and the source, not as msgpack's bare error.
            raise ValueError(
                f'link "{self.label}": a message from {edge.peer} cannot be read in Python '
                f"({type(error).__name__}: {error}); it is skipped. Send plain data that Python holds too: "
                "dates within the years 1–9999, sets of numbers or strings"
            ) from error

    def _flush_acks(self):
        for edge in self._edges:
            if edge.taken > 0 or edge.dropped > 0:
                self._send_ack(edge)

    def _send_ack(self, edge):
        payload = _ACK.pack(edge.taken, edge.dropped)
        edge.taken = 0
        edge.taken_bytes = 0
        edge.dropped = 0
        try:
            self._socket.send_multipart([edge.routing_id, FRAME_ACK, payload], _NOBLOCK)
        except zmq.Again:
            # A source that is not connected: a ROUTER drops what it cannot route, as in TypeScript.
            pass

    def _sources_gone(self):
        """(True once every source is gone, everything it sent arrived and nothing is left; when to look again).

        A source that died may have counted as sent what never left its process: what has not
        arrived IN_FLIGHT_GRACE seconds after the source was seen gone never will.
        """
        for edge in self._edges:
            words = edge.words
            if words.flag(SOURCE_GONE) == 0:
                edge.gone_since = None
                return False, None
            if edge.queue:
                return False, None
            if words.count(RECEIVED) < words.count(SENT):
                now = time.monotonic()
                if edge.gone_since is None:
                    edge.gone_since = now
                if now - edge.gone_since < IN_FLIGHT_GRACE:
                    return False, edge.gone_since + IN_FLIGHT_GRACE
        return True, None

    def _gone_error(self):
        peers = ", ".join(edge.peer for edge in self._edges)
        return LinkSourcesGoneError(
            f'link "{self.label}": every source ({peers}) is gone — its actor failed or died — and no message is '
            "left; no more will come. Catch LinkSourcesGoneError to go on without this input"
        )

    def _watch_handshakes(self):
        """Reports peers refused in the handshake: once, then at most every REFUSAL_REPEAT s with a count."""
        if self._monitor is None or self._closed_here:
            return
        for event, value, endpoint in _monitor_events(self._monitor):
            if not event & _HANDSHAKE_FAILED:
                continue
            now = time.monotonic()
            self._refusals += 1
            if now - self._refused_said_at < REFUSAL_REPEAT:
                continue
            again = f" ({self._refusals} refusals since the last report)" if self._refusals > 1 else ""
            self._refused_said_at = now
            self._refusals = 0
            self._warn(
                f'link "{self.label}" ({self._address}): refused a peer at {endpoint}: '
                f"{_handshake_reason(event, value)} — it does not have the pipeline's CURVE keys{again}"
            )


# -- the source


class _OutEdge:
    __slots__ = ("words", "connection", "peer", "address", "routing_id", "capacity", "drop_oldest", "socket",
                 "monitor", "unacked", "backlog", "gone", "epoch", "header", "state")

    def __init__(self, info, words):
        self.words = words
        self.connection = info.get("connection", "")
        self.peer = info.get("peer", "")
        self.address = info["address"]
        self.routing_id = info["id"].encode("latin-1")
        self.capacity = int(info["capacity"])
        self.drop_oldest = info.get("policy") == "drop-oldest"
        self.socket = None
        self.monitor = None
        # Messages the sink has not yet acknowledged, oldest first.
        self.unacked = collections.deque()
        # drop-oldest only: the newest messages held back while the sink does not even read its socket.
        self.backlog = collections.deque()
        # The sink was gone when last looked at; its epoch then (0: no sink had opened yet).
        self.gone = words.flag(SINK_GONE) != 0
        self.epoch = words.flag(SINK_EPOCH)
        # The first frame of each message: `_message_frame(epoch)`, which this sink's incarnation takes.
        self.header = _message_frame(self.epoch)
        # What the socket last said about the connection, for reports.
        self.state = "connecting"


def _stall_slack(capacity):
    """Unacknowledged messages past `capacity` after which a drop-oldest sink counts as stalled."""
    return max(capacity, 64)


class OutLink(_Endpoint):
    """The sending end of a link (`self.q_out`): one DEALER per edge, each message encoded once and sent to every sink."""

    direction = "out"

    def __init__(self, descriptor, loop, hooks=None):
        super().__init__(descriptor, loop, hooks)
        if descriptor.get("direction") != "out":
            raise TypeError(f'link "{self.label}": OutLink needs a descriptor of direction "out"')
        self._dropped_hook = _hook(hooks, "dropped")
        self._dropped_for_one_sink_hook = _hook(hooks, "dropped_for_one_sink")
        self._edges = []
        # When a sink last acknowledged anything (or the link opened), and whether the silence was reported.
        self._last_ack = time.monotonic()
        self._last_ack_wall = time.time()
        self._silence_reported = False
        try:
            for info in descriptor["edges"]:
                words = _Words(_shared(info.get("counters"), EDGE_BYTES, f'link "{self.label}": edge counters'))
                edge = _OutEdge(info, words)
                words.set_flag(WAITING, 0)
                # A restarted source is there again: its sink waits for it instead of giving up on it.
                words.set_flag(SOURCE_GONE, 0)
                self._edges.append(edge)
                self._open_dealer(edge)
        except Exception:
            self.close()
            raise

    def __repr__(self):
        return f"<OutLink {self.label} to {len(self._edges)} sink(s){' (closed)' if self._closed_here else ''}>"

    @property
    def sinks(self):
        """How many sinks each message goes to (fan-out)."""
        return len(self._edges)

    # -- sending

    def put(self, message):
        """Sends `message` to every sink; with `block`, waits while a sink has no room.

        Raises `LinkMessageTooLargeError` for a message over the link's `maxMessageBytes`,
        `TypeError` for one msgpack cannot carry, `LinkClosedError` on a closed link. A `put` that
        waits when its link is closed returns without sending, and its message goes to
        `hooks.dropped(message, "closed")`.
        """
        if self._is_closed():
            raise self._closed_error()
        body = self._encode(message)
        self._busy = True
        self._told = False
        waited = False
        try:
            while True:
                if self._closed_here:
                    self._report(body, "closed", True)
                    return
                if self._is_closed():
                    raise self._closed_error()
                self._take_acks()
                timeout = None
                if self._on_held is None:
                    if self._has_room():
                        self._send(body)
                        return
                    self._set_waiting()
                    timeout = self._watch_silence()
                else:
                    self._set_waiting(held=True)
                    self._tell_held()
                waited = True
                self._loop.wait(self._wait_sockets(), timeout)
                self._watch_connections()
        finally:
            self._busy = False
            if waited:
                self._set_waiting(held=True)

    def put_nowait(self, message):
        """Sends `message` if every `block` sink has room now (and the link is not held); `queue.Full` otherwise."""
        if self._is_closed():
            raise self._closed_error()
        body = self._encode(message)
        if self._on_held is not None:
            raise queue.Full(f"{self.name} is held")
        self._take_acks()
        if not self._has_room():
            raise queue.Full(f"{self.name}: a sink has no room (policy block)")
        self._send(body)

    def flush(self):
        """Takes the acknowledgements that came and notices sinks that went, without waiting.

        Credit comes back, and what the sinks dropped (or will never read) is reported to the hooks
        now rather than at the next `put`. The actor host may call it between steps. Nothing while a
        `put` of this link waits: that call does it itself, and a sink that went away makes this
        replace a socket, which must not happen under the poller of that `put`'s wait.
        """
        if self._busy or self._is_closed():
            return
        self._take_acks()
        for edge in self._edges:
            self._refresh_gone(edge)
        self._watch_connections()

    def close(self, settle=True):
        """Closes the link: sockets released (lingering up to LINGER_MS for what was sent); a waiting `put` ends.

        With `settle` (a source that ends on its own while the pipeline runs), it first waits, up to
        LINGER_MS, until every live sink has acknowledged what was sent (see `_settle`); not while a
        `put` of this link waits (the close ends it) or once the transport is closed. The actor host
        closes with `settle=False` at quit, from inside its loop, where the sinks stop reading anyway
        and what is on its way is counted drained.
        """
        if self._closed_here:
            return
        self._closed_here = True
        if settle and not self._busy and self._control.flag(CONTROL_CLOSED) == 0:
            self._settle(time.monotonic() + LINGER_MS / 1000)
        for edge in self._edges:
            if edge.socket is not None:
                _close_socket(edge.socket, edge.monitor, LINGER_MS)
                edge.socket = None
                edge.monitor = None
            edge.words.set_flag(WAITING, 0)
        self._loop.flush()

    # -- inside

    def _settle(self, deadline):
        """Takes acknowledgements until every live sink has acknowledged every message sent, or `deadline`.

        Closing a socket while a sink still acknowledges loses messages on a busy machine: an
        acknowledgement that reaches the closed socket resets the TCP connection, and the reset drops
        whatever the kernel had not sent yet — the source's last messages. Once a sink has
        acknowledged everything, it sends nothing more, and the connection ends cleanly.
        """
        while True:
            self._take_acks()
            waiting = [
                edge
                for edge in self._edges
                if edge.socket is not None
                and (edge.unacked or edge.backlog)
                and edge.words.flag(SINK_GONE) == 0
            ]
            left = deadline - time.monotonic()
            if not waiting or left <= 0 or self._control.flag(CONTROL_CLOSED) != 0:
                return
            self._loop.wait([edge.socket for edge in waiting], left)

    def _encode(self, message):
        try:
            body = _codec.packb(message)
        except (TypeError, ValueError, OverflowError) as error:
            raise TypeError(
                f'link "{self.label}": the message cannot be sent: {error}. Send plain data (numbers, strings, '
                "lists, dicts, numpy arrays); put large data in the store and send its key"
            ) from error
        if len(body) > self._max_message_bytes:
            raise LinkMessageTooLargeError(
                f'link "{self.label}": a message of {len(body)} bytes is larger than the {self._max_message_bytes} '
                "bytes a zmq link takes (maxMessageBytes); put large data in the store and send its key"
            )
        return body

    def _open_dealer(self, edge):
        socket = context().socket(zmq.DEALER)
        try:
            socket.setsockopt(zmq.LINGER, 0)
            socket.setsockopt(zmq.ROUTING_ID, edge.routing_id)
            socket.setsockopt(zmq.SNDHWM, 0)
            socket.setsockopt(zmq.RCVHWM, 0)
            socket.setsockopt(zmq.RECONNECT_IVL, RECONNECT_IVL_MS)
            socket.setsockopt(zmq.RECONNECT_IVL_MAX, RECONNECT_IVL_MAX_MS)
            _secure(socket, self._curve, server=False)
            monitor = socket.get_monitor_socket(_SOURCE_EVENTS, addr=_monitor_address())
        except Exception:
            socket.close(linger=0)
            raise
        edge.socket = socket
        edge.monitor = monitor
        edge.state = "connecting"
        try:
            socket.connect(edge.address)
        except zmq.ZMQError as error:
            raise OSError(
                error.errno, f'link "{self.label}" → {edge.peer}: cannot connect to {edge.address}: {error.strerror}'
            ) from error

    def _wait_sockets(self):
        sockets = []
        for edge in self._edges:
            sockets.append(edge.socket)
            sockets.append(edge.monitor)
        return sockets

    def _has_room(self):
        """Whether every live `block` sink has credit left (refreshing which sinks are gone)."""
        room = True
        for edge in self._edges:
            self._refresh_gone(edge)
            if not edge.gone and not edge.drop_oldest and len(edge.unacked) >= edge.capacity:
                room = False
        return room

    def _send(self, body):
        """Sends one message to every sink (room was checked)."""
        reached = False
        missed = 0
        for edge in self._edges:
            if edge.gone:
                edge.words.add(DROPPED_AT_SOURCE)
                missed += 1
                continue
            reached = True
            if edge.drop_oldest and len(edge.unacked) >= edge.capacity + _stall_slack(edge.capacity):
                edge.backlog.append(body)
                if len(edge.backlog) > edge.capacity:
                    edge.words.add(DROPPED_AT_SOURCE)
                    self._report(edge.backlog.popleft(), "drop-oldest", len(self._edges) == 1)
                continue
            self._transmit(edge, body)
        # Nobody got it: the whole message is dropped (also under fan-out). Some sinks missed it: each
        # of those copies is dropped for one sink.
        if not reached:
            self._report(body, "sink-gone", True)
        else:
            for _ in range(missed):
                self._report(body, "sink-gone", False)

    def _transmit(self, edge, body):
        edge.socket.send_multipart([edge.header, body], _NOBLOCK, copy=False)
        edge.unacked.append(body)
        edge.words.add(SENT)
        edge.words.add(BYTES_SENT, len(body))

    def _refresh_gone(self, edge):
        """Notices a sink that went away, came back, or was replaced (a restarted actor) while this source was not looking."""
        gone = edge.words.flag(SINK_GONE) != 0
        epoch = edge.words.flag(SINK_EPOCH)
        # The first sink to open (epoch 1) is not a replacement; any later one is, also one this source
        # sees first (the first sink came and went unseen: 0 -> 2).
        replaced = max(edge.epoch, 1) != max(epoch, 1) and not edge.gone
        if epoch != edge.epoch:
            edge.epoch = epoch
            edge.header = _message_frame(epoch)
        if gone == edge.gone and not replaced:
            return
        edge.gone = gone
        if gone or replaced:
            # A fresh socket, and messages stamped with the new epoch: what the old socket still holds for the
            # old sink may reach the new one (it reconnects by itself, maybe before this source looked), and
            # the new sink ignores it; it gets each message once, from here.
            _close_socket(edge.socket, edge.monitor, 0)
            edge.socket = None
            edge.monitor = None
            self._open_dealer(edge)
        waiting = list(edge.unacked) + list(edge.backlog)
        edge.unacked.clear()
        edge.backlog.clear()
        if replaced and not gone:
            # A restarted sink: everything the old one had not acknowledged goes to the new one, in order.
            for body in waiting:
                edge.socket.send_multipart([edge.header, body], _NOBLOCK, copy=False)
                edge.unacked.append(body)
            return
        # Gone: nobody reads these. Back (a revived sink): they were reported when it went.
        if gone:
            sole = len(self._edges) == 1
            for body in waiting:
                self._report(body, "sink-gone", sole)

    def _take_acks(self):
        for edge in self._edges:
            for frames in _waiting(edge.socket):
                self._on_ack(edge, frames)

    def _on_ack(self, edge, frames):
        if len(frames) < 2 or frames[0][:1] != FRAME_ACK or len(frames[1]) < 8:
            return
        taken, dropped = _ACK.unpack_from(frames[1])
        edge.words.add(ACKED_TAKEN, taken)
        edge.words.add(ACKED_DROPPED, dropped)
        self._last_ack = time.monotonic()
        self._last_ack_wall = time.time()
        if self._silence_reported:
            self._silence_reported = False
            self._warn(f'link "{self.label}": {edge.peer} acknowledges again; messages flow')
        for _ in range(min(taken, len(edge.unacked))):
            edge.unacked.popleft()
        sole = len(self._edges) == 1
        for _ in range(dropped):
            if not edge.unacked:
                break
            self._report(edge.unacked.popleft(), "drop-oldest", sole)
        # A stalled drop-oldest sink reads again: what waited goes out now.
        while edge.backlog and len(edge.unacked) < edge.capacity + _stall_slack(edge.capacity):
            self._transmit(edge, edge.backlog.popleft())

    def _set_waiting(self, held=False):
        """WAITING per edge: 1 while this source waits for room in it (never while merely held)."""
        for edge in self._edges:
            full = not held and not edge.gone and not edge.drop_oldest and len(edge.unacked) >= edge.capacity
            edge.words.set_flag(WAITING, 1 if full else 0)

    def _watch_silence(self):
        """Reports a producer that waits for room while its full sinks say nothing; the seconds until the next look."""
        if self._silence_reported:
            return None
        due = self._last_ack + SILENCE
        now = time.monotonic()
        if now < due:
            return due - now
        self._silence_reported = True
        since = datetime.datetime.fromtimestamp(self._last_ack_wall, datetime.timezone.utc).isoformat(
            timespec="milliseconds"
        )
        for edge in self._edges:
            if edge.gone or edge.drop_oldest or len(edge.unacked) < edge.capacity:
                continue
            self._warn(
                f'link "{self.label}" → {edge.peer} (connection "{edge.connection}", {edge.address}): waiting for '
                f"room since {since} — {len(edge.unacked)} messages unacknowledged, 1 put() waiting; connection: "
                f"{edge.state}. The sink's actor does not read, or its process is gone, unreachable, or refuses "
                "this pipeline's CURVE key"
            )
        return None

    def _watch_connections(self):
        """Connection news: a refused handshake is said at once (once per outage); the rest goes into reports."""
        if self._closed_here:
            return
        for edge in self._edges:
            if edge.monitor is None:
                continue
            for event, value, _endpoint in _monitor_events(edge.monitor):
                if event & _HANDSHAKE_FAILED:
                    already = edge.state.startswith("refused")
                    reason = _handshake_reason(event, value)
                    edge.state = f"refused: {reason}"
                    if already:
                        continue
                    self._warn(
                        f'link "{self.label}" → {edge.peer} (connection "{edge.connection}", {edge.address}): the '
                        f"sink refused the connection ({reason}); both ends need the pipeline's CURVE keys "
                        "(settings.zmq.keys or IMPROV_ZMQ_KEYS)"
                    )
                elif event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                    edge.state = "connected"
                elif event == zmq.EVENT_DISCONNECTED:
                    if not edge.state.startswith("refused"):
                        edge.state = "disconnected"
                elif event == zmq.EVENT_CONNECT_RETRIED:
                    if not edge.state.startswith("refused"):
                        edge.state = "cannot connect (retrying)"

    def _report(self, body, reason, whole):
        hook = self._dropped_hook if whole else self._dropped_for_one_sink_hook
        if hook is None:
            return
        try:
            hook(_codec.unpackb(body), reason)
        except Exception:  # noqa: BLE001 - a hook's failure must not break the link
            pass


def open_link(descriptor, loop, hooks=None):
    """Rebuilds a link from a descriptor the zmq transport planned: an `InLink` (direction `in`) or an `OutLink`.

    `loop` is the process's `Loop` (a waiting call waits through `loop.wait`); `hooks` is an object
    (or dict) with any of `dropped(message, reason)`, `dropped_for_one_sink(message, reason)` and
    `warn(text)`. A sink listens when this returns (OSError when its address is taken).
    """
    _check(descriptor)
    direction = descriptor.get("direction")
    if direction == "in":
        return InLink(descriptor, loop, hooks)
    if direction == "out":
        return OutLink(descriptor, loop, hooks)
    raise TypeError(
        f'improv_ts.links: link "{_describe(descriptor)}" has direction {direction!r}; expected "in" or "out"'
    )
