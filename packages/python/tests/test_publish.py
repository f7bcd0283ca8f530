"""`self.publish()`: kept only while watched; numbers point by point, other values newest-only, copied."""

import math
import socket
import time

import numpy as np
import pytest

from improv_ts import _codec, _publish


def make():
    sent = []
    return _publish.Publisher(sent.append), sent


def test_nothing_is_kept_or_sent_while_nobody_watches():
    publisher, sent = make()
    publisher.publish("count", 1)
    publisher.flush()
    assert sent == []


def test_numbers_and_dicts_of_numbers_are_series_with_every_point():
    publisher, sent = make()
    publisher.set(True)
    for n in range(5):
        publisher.publish("count", np.int32(n))
        publisher.publish("stats", {"a": n} if n < 2 else {"a": n, "b": -n})
    publisher.publish("stats", {"b": float("nan")})
    publisher.flush()
    data = {message["name"]: message["data"] for message in sent}
    assert data["count"]["kind"] == "series"
    assert data["count"]["values"]["value"] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert len(data["count"]["times"]) == 5
    # A field a point lacked is None (absent), told apart from a NaN that was published.
    assert data["stats"]["values"]["a"] == [0.0, 1.0, 2.0, 3.0, 4.0, None]
    b = data["stats"]["values"]["b"]
    assert b[:5] == [None, None, -2.0, -3.0, -4.0] and math.isnan(b[5])


def test_other_values_are_the_newest_copy_and_2d_arrays_images():
    publisher, sent = make()
    publisher.set(True)
    frame = np.zeros((3, 2), dtype=np.uint16)
    for n in range(3):
        frame.fill(n)
        publisher.publish("frame", frame)
    frame.fill(99)
    publisher.flush()
    (message,) = sent
    data = message["data"]
    assert data["kind"] == "latest" and data["skipped"] == 2
    assert data["value"]["shape"] == [3, 2]
    assert data["value"]["array"].tolist() == [2] * 6
    assert data["value"]["array"].dtype == np.uint16


def test_turning_off_drops_what_was_kept():
    publisher, sent = make()
    publisher.set(True)
    publisher.publish("count", 1)
    publisher.set(False)
    publisher.flush()
    assert sent == []


def test_a_bad_name_is_refused():
    publisher, _ = make()
    publisher.set(True)
    try:
        publisher.publish("", 1)
    except TypeError as error:
        assert "non-empty string" in str(error)
    else:
        raise AssertionError("an empty name was taken")


def test_numpy_scalars_and_0d_arrays_are_numbers_but_bools_and_complex_are_not():
    publisher, sent = make()
    publisher.set(True)
    publisher.publish("a", np.float32(1.5))
    publisher.publish("a", np.uint64(2))
    publisher.publish("a", np.array(3.0))
    publisher.publish("flag", True)
    publisher.publish("z", np.complex128(1 + 2j))
    publisher.flush()
    data = {message["name"]: message["data"] for message in sent}
    assert data["a"]["kind"] == "series" and data["a"]["values"]["value"] == [1.5, 2.0, 3.0]
    assert data["flag"] == {"kind": "latest", "time": data["flag"]["time"], "value": True, "skipped": 0}
    # Not a series point (its imaginary part would be lost): a value (which the channel then refuses).
    assert data["z"]["kind"] == "latest"


def test_a_1d_array_is_a_copied_typed_array_and_nested_arrays_are_copied_too():
    publisher, sent = make()
    publisher.set(True)
    line = np.arange(4, dtype=np.float32)
    publisher.publish("line", line)
    publisher.publish("scatter", {"x": line, "y": line * 2})
    line[:] = -1
    publisher.flush()
    data = {message["name"]: message["data"]["value"] for message in sent}
    assert data["line"].dtype == np.float32 and data["line"].tolist() == [0, 1, 2, 3]
    assert data["scatter"]["x"].tolist() == [0, 1, 2, 3] and data["scatter"]["y"].tolist() == [0, 2, 4, 6]


def test_what_typescript_cannot_take_is_refused_in_the_step_that_publishes_it():
    publisher, sent = make()
    publisher.set(True)
    with pytest.raises(TypeError, match="float16 has no TypeScript typed array"):
        publisher.publish("half", np.zeros((2, 2), dtype=np.float16))
    with pytest.raises(ValueError, match="more than one delivery"):
        publisher.publish("huge", np.zeros((4096, 4096), dtype=np.float32))
    publisher.flush()
    assert sent == []


def test_a_value_the_codec_refuses_drops_its_stream_with_one_warning_and_the_rest_go_on():
    warnings = []
    sent = []
    channel = _codec.packb  # what the control channel does with a message: encode it

    def post(message):
        channel(message)
        sent.append(message)

    publisher = _publish.Publisher(post, warnings.append)
    publisher.set(True)
    for n in range(3):
        publisher.publish("count", n)
        publisher.publish("odd", object())
        publisher.publish("text", f"n={n}")
        publisher.flush()
    assert [message["name"] for message in sent] == ["count", "text"] * 3
    # Each point once: nothing kept from a failed delivery is sent again.
    assert [message["data"]["values"]["value"] for message in sent if message["name"] == "count"] == [[0.0], [1.0], [2.0]]
    assert len(warnings) == 1 and 'publish("odd")' in warnings[0] and "cannot be sent" in warnings[0]


def test_a_first_value_is_due_at_once_and_the_next_16_ms_after_that_delivery():
    publisher, sent = make()
    assert publisher.due_in() is None
    publisher.set(True)
    assert publisher.due_in() is None
    publisher.publish("count", 1)
    publisher.publish("count", 2)
    # After a quiet period: due now, sent at the host's next tick (with the rest of the step's values).
    assert publisher.due_in() == 0 and sent == []
    publisher.tick()
    assert [message["data"]["values"]["value"] for message in sent] == [[1.0, 2.0]]
    assert publisher.due_in() is None
    publisher.publish("count", 3)
    due = publisher.due_in()
    assert due is not None and 0 < due <= _publish.PUBLISH_EVERY_S
    publisher.tick()
    assert len(sent) == 1  # not yet: a delivery went less than 16 ms ago
    time.sleep(due)
    publisher.tick()
    assert [message["data"]["values"]["value"] for message in sent] == [[1.0, 2.0], [3.0]]
    assert publisher.due_in() is None


def test_the_host_waits_no_longer_than_until_a_delivery_is_due(monkeypatch):
    # An actor that published and then waits for its next message (or is paused): what it kept goes up
    # when due, not at the host's next heartbeat (100 ms).
    from improv_ts import _channel, _host

    ours, nexus = socket.socketpair()
    host = _host.ActorHost(_channel.Channel(ours))
    waited = []
    monkeypatch.setattr(_host.select, "select", lambda r, w, x, limit: waited.append(limit) or ([], [], []))
    try:
        host.wait([], None)
        assert waited[-1] > _publish.PUBLISH_EVERY_S
        host.publisher.set(True)
        host.publisher.publish("count", 1)
        host.wait([], None)  # due at once after a quiet period: sent before it waits
        assert host.publisher.due_in() is None
        host.publisher.publish("count", 2)  # 16 ms after that delivery
        host.wait([], None)
        assert waited[-1] <= _publish.PUBLISH_EVERY_S
    finally:
        ours.close()
        nexus.close()


def test_actors_publish_through_their_host_and_improvs_actors_can_too():
    from improv.actor import Actor as ImprovActor
    from improv_ts import Actor

    class Mine(Actor):
        def run_step(self):
            pass

    class Theirs(ImprovActor):
        def __init__(self, *args, gain=1, **kwargs):
            super().__init__(*args, **kwargs)
            self.gain = gain

        def runStep(self):
            pass

    for cls in (Mine, Theirs):
        publisher, sent = make()
        actor = cls._improv_create(
            {"name": "A", "options": {}, "links": {}, "store": None, "loop": None, "publisher": publisher}
        )
        assert actor.publishing is False
        actor.publish("count", 1)
        publisher.set(True)
        assert actor.publishing is True
        actor.publish("count", 2)
        publisher.flush()
        assert [message["data"]["values"]["value"] for message in sent] == [[2.0]], cls
    # Made outside a host (a unit test of one's own actor): publishing does nothing.
    assert Theirs("alone").publishing is False
    Theirs("alone").publish("count", 1)
