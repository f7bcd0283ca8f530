"""`self.publish()`: kept only while watched; numbers point by point, other values newest-only, copied."""

import math

import numpy as np

from improv_ts import _publish


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
    publisher.flush()
    data = {message["name"]: message["data"] for message in sent}
    assert data["count"]["kind"] == "series"
    assert data["count"]["values"]["value"] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert len(data["count"]["times"]) == 5
    assert data["stats"]["values"]["a"] == [0.0, 1.0, 2.0, 3.0, 4.0]
    b = data["stats"]["values"]["b"]
    assert math.isnan(b[0]) and math.isnan(b[1]) and b[2:] == [-2.0, -3.0, -4.0]


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
