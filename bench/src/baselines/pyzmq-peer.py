"""One end of the raw pyzmq baseline (`pyzmq.ts`, `--placement python`): libzmq through pyzmq, no improv.

Usage: python3 pyzmq-peer.py send|recv <endpoint> <high-water mark>

`recv` binds a PULL socket at the endpoint, `send` connects a PUSH socket to it; both set their
high-water mark to the pipeline links' capacity. Each then takes commands, one JSON object a line on
stdin, and answers each with one JSON line on stdout:

- `{"do": "latency", "size": n, "count": c, "intervalUs": i}`: the sender sends `c` messages of `n`
  bytes (at least 8), one every `i` µs, each stamped just before its send with the sender's
  CLOCK_MONOTONIC (µs, float64 in its first 8 bytes); the receiver answers with the one-way latency
  of each (its own CLOCK_MONOTONIC at the receive, minus the stamp: both processes read one clock).
- `{"do": "flood", "size": n, "durationUs": d}`: the sender sends as fast as the socket takes them
  for `d` µs, then an empty message; it answers with how many it sent and when it began, the
  receiver with how many arrived and when the empty one did.

The receiver takes messages from 64 KiB on without copying them (`copy=False`, a zmq Frame over
libzmq's buffer) and smaller ones as bytes, as pyzmq advises; the sender sends with pyzmq's
defaults (from 64 KiB on without a copy).
"""

import json
import struct
import sys
import time

import zmq

NO_COPY_FROM = 65536
_F64 = struct.Struct("<d")


def now_us():
    return time.monotonic_ns() / 1000


def answer(value):
    sys.stdout.write(json.dumps(value) + "\n")
    sys.stdout.flush()


def receive(socket, size):
    """The next message: bytes, or a Frame from NO_COPY_FROM on."""
    if size >= NO_COPY_FROM:
        return socket.recv(copy=False)
    return socket.recv()


def main():
    role, endpoint, hwm = sys.argv[1], sys.argv[2], int(sys.argv[3])
    context = zmq.Context()
    if role == "recv":
        socket = context.socket(zmq.PULL)
        socket.setsockopt(zmq.RCVHWM, hwm)
        socket.setsockopt(zmq.LINGER, 0)
        socket.bind(endpoint)
    elif role == "send":
        socket = context.socket(zmq.PUSH)
        socket.setsockopt(zmq.SNDHWM, hwm)
        socket.setsockopt(zmq.LINGER, 0)
        socket.connect(endpoint)
    else:
        sys.exit("usage: pyzmq-peer.py send|recv <endpoint> <high-water mark>")
    answer({
        "ready": role,
        "python": sys.version.split()[0],
        "pyzmq": zmq.__version__,
        "libzmq": zmq.zmq_version(),
    })
    for line in sys.stdin:
        command = json.loads(line)
        kind = command.get("do")
        size = max(8, int(command.get("size", 8)))
        if kind == "quit":
            break
        if role == "send" and kind == "latency":
            payload = bytearray(size)
            interval = float(command["intervalUs"])
            count = int(command["count"])
            start = now_us() + interval
            for index in range(count):
                wait = start + index * interval - now_us()
                if wait > 0:
                    time.sleep(wait / 1e6)
                _F64.pack_into(payload, 0, now_us())
                socket.send(payload)
            answer({"sent": count})
        elif role == "send" and kind == "flood":
            payload = bytes(size)
            first = now_us()
            until = first + float(command["durationUs"])
            sent = 0
            while now_us() < until:
                for _ in range(64):
                    socket.send(payload)
                sent += 64
            socket.send(b"")
            answer({"sent": sent, "firstUs": first})
        elif role == "recv" and kind == "latency":
            samples = []
            errors = 0
            for _ in range(int(command["count"])):
                message = receive(socket, size)
                at = now_us()
                data = message.buffer if isinstance(message, zmq.Frame) else message
                if len(data) != size:
                    errors += 1
                samples.append(at - _F64.unpack_from(data, 0)[0])
            answer({"samples": samples, "errors": errors})
        elif role == "recv" and kind == "flood":
            received = 0
            errors = 0
            while True:
                message = receive(socket, size)
                length = len(message)
                if length == 0:
                    break
                if length != size:
                    errors += 1
                received += 1
            answer({"received": received, "endUs": now_us(), "errors": errors})
        else:
            answer({"error": f"{role}: unknown command {line.strip()}"})
    socket.close(0)
    context.term()


if __name__ == "__main__":
    main()
