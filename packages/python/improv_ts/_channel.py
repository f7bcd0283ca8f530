"""The control channel of an actor process, the Python end of `@improv/core`'s ProcessChannel.

The format (`packages/core/src/runtime/_node-process-channel.ts` has it in full):

- each message is `u32le length` + its msgpack body, in order;
- a SharedArrayBuffer in a message travels as msgpack extension 0x51: `u32le id` + its bytes. Here it
  becomes a `bytearray` (the same object each time its id comes again), and both copies are kept
  alike: a side sends `{"__mirror": [id, word index, value, ...]}` with the 32-bit words it changed
  since its last round, before every message and whenever it waits; the other side stores them.
  A word is written by one side only.

One thread: `receive()` is called by the actor process's loop when the socket is readable.
"""

import socket as _socket
import struct
import threading

import msgpack

from . import _codec

EXT_SHARED = 0x51
MAX_FRAME_BYTES = 64 * 2**20


class _Mirrored:
    __slots__ = ("buffer", "seen")

    def __init__(self, buffer):
        self.buffer = buffer
        self.seen = bytearray(buffer)


class Channel:
    """One end of a control channel over a connected stream socket (the child's end: ids are even)."""

    def __init__(self, sock):
        self.socket = sock
        self.closed = False
        self._by_id = {}
        self._ids = {}
        self._next_id = 2
        self._pending = bytearray()
        # A record logged from a thread of the actor's own must not interleave with the loop's frames.
        self._lock = threading.RLock()

    def fileno(self):
        return self.socket.fileno()

    # -- sending

    def send(self, message):
        """Sends `message`, after the words changed in mirrored buffers (so they arrive first)."""
        if self.closed:
            return
        with self._lock:
            self.flush()
            self._write(message)

    def flush(self):
        """Sends the words this side changed in mirrored buffers since the last round."""
        if self.closed or not self._by_id:
            return
        with self._lock:
            self._flush()

    def _flush(self):
        changes = []
        for id_, mirrored in self._by_id.items():
            buffer = mirrored.buffer
            if buffer == mirrored.seen:
                continue
            old = mirrored.seen
            count = len(buffer) >> 2
            now = struct.unpack_from(f"<{count}i", buffer)
            before = struct.unpack_from(f"<{count}i", old)
            for index in range(count):
                if now[index] != before[index]:
                    changes.extend((id_, index, now[index]))
            mirrored.seen[:] = buffer
        if changes:
            self._write({"__mirror": changes})

    def _write(self, message):
        body = msgpack.packb(message, default=self._default, use_bin_type=True)
        try:
            self.socket.sendall(struct.pack("<I", len(body)) + body)
        except OSError:
            self.closed = True

    def _default(self, value):
        if isinstance(value, bytearray) and id(value) in self._ids:
            id_ = self._ids[id(value)]
            return msgpack.ExtType(EXT_SHARED, struct.pack("<I", id_) + bytes(value))
        # improv's codec otherwise: numpy arrays arrive in TypeScript as typed arrays of their dtype.
        return _codec._default(value)

    # -- receiving

    def receive(self):
        """Reads what has arrived (without blocking) and returns its messages; mirror rounds are applied."""
        messages = []
        while not self.closed:
            try:
                chunk = self.socket.recv(1 << 20, _socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                chunk = b""
            if not chunk:
                self.closed = True
                break
            self._pending += chunk
        pending = self._pending
        at = 0
        while len(pending) - at >= 4:
            (length,) = struct.unpack_from("<I", pending, at)
            if length > MAX_FRAME_BYTES:
                self.closed = True
                break
            if len(pending) - at < 4 + length:
                break
            body = bytes(pending[at + 4 : at + 4 + length])
            at += 4 + length
            message = msgpack.unpackb(body, raw=False, strict_map_key=False, ext_hook=self._ext_hook)
            if isinstance(message, dict) and "__mirror" in message:
                self._apply(message["__mirror"])
            else:
                messages.append(message)
        del pending[:at]
        return messages

    def _ext_hook(self, code, data):
        if code != EXT_SHARED:
            return _codec._ext_hook(code, data)
        (id_,) = struct.unpack_from("<I", data)
        known = self._by_id.get(id_)
        if known is not None:
            return known.buffer
        buffer = bytearray(data[4:])
        self._by_id[id_] = _Mirrored(buffer)
        self._ids[id(buffer)] = id_
        return buffer

    def _apply(self, changes):
        for at in range(0, len(changes) - 2, 3):
            mirrored = self._by_id.get(changes[at])
            if mirrored is None:
                continue
            index, value = changes[at + 1], changes[at + 2]
            struct.pack_into("<i", mirrored.buffer, index * 4, value)
            struct.pack_into("<i", mirrored.seen, index * 4, value)

    def close(self):
        if self.closed:
            return
        self.flush()
        self.closed = True
        try:
            self.socket.shutdown(_socket.SHUT_WR)
        except OSError:
            pass
