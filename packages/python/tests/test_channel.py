"""The Python end of the ProcessChannel: framing, mirrored shared memory, a lost peer."""

import socket
import struct

import msgpack

from improv_ts._channel import EXT_SHARED, Channel


def frames(data):
    out, at = [], 0
    while at < len(data):
        (length,) = struct.unpack_from("<I", data, at)
        out.append(msgpack.unpackb(data[at + 4 : at + 4 + length], raw=False, strict_map_key=False, ext_hook=lambda c, d: (c, d)))
        at += 4 + length
    return out


def frame(message):
    body = msgpack.packb(message, use_bin_type=True)
    return struct.pack("<I", len(body)) + body


def read_all(sock):
    sock.setblocking(False)
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except BlockingIOError:
        pass
    return data


def test_messages_in_order_and_mirrored_words_both_ways():
    parent, child = socket.socketpair()
    channel = Channel(child)
    shared = msgpack.ExtType(EXT_SHARED, struct.pack("<I", 1) + struct.pack("<2i", 7, 0))
    parent.sendall(frame({"type": "init", "control": shared}) + frame({"type": "signal", "signal": "setup"}))
    messages = channel.receive()
    assert [m["type"] for m in messages] == ["init", "signal"]
    control = messages[0]["control"]
    assert isinstance(control, bytearray) and struct.unpack("<2i", control) == (7, 0)
    # The same id again is the same buffer.
    parent.sendall(frame({"again": shared}))
    assert channel.receive()[0]["again"] is control
    # The child's change goes out before its next message, as [id, word, value].
    struct.pack_into("<i", control, 4, 42)
    channel.send({"type": "state", "state": "ready"})
    assert frames(read_all(parent)) == [{"__mirror": [1, 1, 42]}, {"type": "state", "state": "ready"}]
    # The parent's change lands in the buffer; nothing is sent back for it.
    parent.sendall(frame({"__mirror": [1, 0, -5]}))
    assert channel.receive() == []
    assert struct.unpack("<2i", control) == (-5, 42)
    channel.flush()
    assert read_all(parent) == b""


def test_a_message_split_across_reads_and_a_closed_peer():
    parent, child = socket.socketpair()
    channel = Channel(child)
    data = frame({"type": "signal", "signal": "run"})
    parent.sendall(data[:3])
    assert channel.receive() == []
    parent.sendall(data[3:])
    assert channel.receive() == [{"type": "signal", "signal": "run"}]
    parent.close()
    assert channel.receive() == [] and channel.closed
