"""A Python peer of improv's zmq links, with nothing but pyzmq and msgpack.

The wire format (the package README has it in full):

- a sink binds a ROUTER; each source of an edge into it connects a DEALER whose routing id is the
  edge's id;
- a message is two frames: b'\\x01' and the msgpack body (to a restarted improv sink, improv's sources
  add the sink's epoch to the first frame: b'\\x01' + u32le epoch; a sink reads the first byte);
- the sink acknowledges with b'\\x02' and 8 bytes: u32le taken, u32le dropped, counted from the head
  of that edge's queue; a source has `capacity` messages of credit per edge, and each acknowledged
  message gives one back. A source never sends without credit: that is how `block` holds a producer
  back end to end;
- an improv sink also sends b'\\x04' and 8 zero bytes once, to say it reads several messages in one
  (b'\\x03', then one body per frame); this peer ignores that and sends one message at a time.

`Source` and `Sink` are the two ends. `python3 improv_zmq_peer.py relay '<json>'` runs a relay
between a pipeline's link into this process and its link out of it (the tests of the TypeScript
package run it), doubling the `value` of each message so the other end can tell it passed;
`send '<json>'` only sends `count` messages into a pipeline's link.
"""

import json
import struct
import sys
import time

import msgpack
import zmq

MESSAGE = b"\x01"
ACK = b"\x02"


def _secure(socket, curve, server):
    """Makes `socket` a CURVE server (a sink) or client (a source) with the pipeline's key pair."""
    if not curve:
        return
    socket.curve_secretkey = curve["secretKey"].encode()
    socket.curve_publickey = curve["publicKey"].encode()
    if server:
        socket.curve_server = True
    else:
        socket.curve_serverkey = curve["serverKey"].encode()


class Source:
    """One edge into a pipeline's sink: send() waits for credit, as a `block` link does."""

    def __init__(self, context, edge, curve=None):
        self.socket = context.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.ROUTING_ID, edge["id"].encode())
        _secure(self.socket, curve, server=False)
        self.socket.connect(edge["address"])
        self.capacity = self.credit = edge["capacity"]

    def _take_acks(self, timeout_ms):
        if not self.socket.poll(timeout_ms):
            return
        while True:
            try:
                frames = self.socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            if len(frames) == 2 and frames[0] == ACK and len(frames[1]) >= 8:
                taken, dropped = struct.unpack_from("<II", frames[1])
                self.credit += taken + dropped

    def send(self, message):
        self._take_acks(0)
        while self.credit == 0:
            self._take_acks(1000)
        self.credit -= 1
        self.socket.send_multipart([MESSAGE, msgpack.packb(message, use_bin_type=True)])

    def close(self, linger_ms=5000):
        """Waits (up to `linger_ms`) until the sink acknowledged every message sent, then closes.

        Closing with messages unacknowledged loses the last of them on a busy machine: the sink's
        acknowledgements keep coming, one that reaches a closed socket resets the TCP connection, and
        the reset drops what the kernel had not sent yet. Once everything is acknowledged, the sink
        sends nothing more.
        """
        capacity = self.capacity
        deadline = time.monotonic() + linger_ms / 1000
        while self.credit < capacity:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._take_acks(max(1, int(left * 1000)))
        self.socket.setsockopt(zmq.LINGER, linger_ms)
        self.socket.close()


class Sink:
    """A pipeline's source sends here: recv() returns the next message and acknowledges it."""

    def __init__(self, context, endpoint, curve=None):
        self.socket = context.socket(zmq.ROUTER)
        self.socket.setsockopt(zmq.LINGER, 0)
        # A ROUTER drops what it cannot queue at the high-water mark, and an acknowledgement lost is
        # credit lost for good (the source would wait forever): credit already bounds the traffic.
        self.socket.setsockopt(zmq.SNDHWM, 0)
        _secure(self.socket, curve, server=True)
        self.socket.bind(endpoint["address"])
        self.edges = {edge["id"].encode() for edge in endpoint["edges"]}
        self.unacked = {}

    def recv(self):
        while True:
            if not self.socket.poll(0):
                self.flush()
            frames = self.socket.recv_multipart()
            routing_id = frames[0]
            if routing_id not in self.edges or len(frames) != 3 or frames[1][:1] != MESSAGE:
                continue
            self.unacked[routing_id] = self.unacked.get(routing_id, 0) + 1
            return msgpack.unpackb(frames[2], raw=False)

    def flush(self):
        """Gives the sources their credit back for every message taken so far."""
        for routing_id, taken in self.unacked.items():
            if taken:
                self.socket.send_multipart([routing_id, ACK, struct.pack("<II", taken, 0)])
        self.unacked.clear()

    def close(self):
        self.flush()
        self.socket.close()


def relay(spec):
    """Reads `count` messages from spec['in'], sends each to every edge of spec['out'], value doubled."""
    context = zmq.Context()
    curve = spec.get("curve")
    sink = Sink(context, spec["in"], curve)
    sources = [Source(context, edge, curve) for edge in spec["out"]["edges"]]
    print("ready", flush=True)
    for _ in range(spec["count"]):
        message = sink.recv()
        if isinstance(message, dict) and isinstance(message.get("value"), (int, float)):
            message["value"] *= 2
            message["via"] = "python"
        for source in sources:
            source.send(message)
    sink.close()
    for source in sources:
        source.close()
    context.term()
    print("relayed", spec["count"], flush=True)


def send(spec):
    """Sends `count` messages {n, text} to every edge of spec['out'], each waiting for credit."""
    context = zmq.Context()
    sources = [Source(context, edge, spec.get("curve")) for edge in spec["out"]["edges"]]
    for n in range(spec["count"]):
        for source in sources:
            source.send({"n": n, "text": f"from python {n}"})
    for source in sources:
        source.close()
    context.term()
    print("sent", spec["count"], flush=True)


USAGE = "usage: improv_zmq_peer.py relay '<json: {in, out, count, curve?}>' | send '<json: {out, count, curve?}>'"


def _spec(mode, text):
    """The JSON argument of `mode`, checked: exits with what is wrong and how to fix it, never a traceback."""
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as error:
        sys.exit(f"improv_zmq_peer.py {mode}: the argument is not JSON ({error}); {USAGE}")
    needs = {"relay": ("in", "out", "count"), "send": ("out", "count")}[mode]
    missing = [name for name in needs if not isinstance(spec, dict) or name not in spec]
    if missing:
        sys.exit(
            f"improv_zmq_peer.py {mode}: the JSON argument lacks {', '.join(missing)}; give the endpoint "
            f"descriptors of peerEndpoint() as in and out, and count as a whole number; {USAGE}"
        )
    if not isinstance(spec["count"], int) or not isinstance(spec["out"], dict) or "edges" not in spec["out"]:
        sys.exit(f"improv_zmq_peer.py {mode}: count must be a whole number, out an endpoint with edges; {USAGE}")
    return spec


if __name__ == "__main__":
    modes = {"relay": relay, "send": send}
    if len(sys.argv) != 3 or sys.argv[1] not in modes:
        sys.exit(USAGE)
    try:
        modes[sys.argv[1]](_spec(sys.argv[1], sys.argv[2]))
    except KeyError as error:
        sys.exit(
            f"improv_zmq_peer.py {sys.argv[1]}: the JSON argument lacks the field {error}; "
            "pass peerEndpoint()'s descriptors unchanged"
        )
    except zmq.ZMQError as error:
        sys.exit(
            f"improv_zmq_peer.py {sys.argv[1]}: {error.strerror} (errno {error.errno}); "
            "check the addresses and keys in the JSON argument"
        )
