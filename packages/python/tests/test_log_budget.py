"""The log budget of a Python actor: what it logs past 1000 lines a second is dropped and counted."""

import logging

from improv_ts._host import LOG_LINES_PER_SECOND, LogBudget, _Forward


class FakeHost:
    name = "Flooder"

    def __init__(self):
        self.records = []
        self.log_budget = None

    def emit(self, level, message, stack=None):
        self.records.append((level, message))


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_a_flood_is_cut_at_the_budget_and_the_dropped_lines_are_counted_once_a_second():
    host = FakeHost()
    clock = Clock()
    host.log_budget = LogBudget(host, clock)
    handler = _Forward(host)
    logger = logging.getLogger("improv.actor.test-budget")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    for index in range(LOG_LINES_PER_SECOND + 250):
        logger.info("line %d", index)
    assert len(host.records) == LOG_LINES_PER_SECOND
    assert host.records[-1] == ("info", f"line {LOG_LINES_PER_SECOND - 1}")
    # Not reported before a second has passed since the first dropped line.
    clock.now += 0.5
    host.log_budget.tick()
    assert len(host.records) == LOG_LINES_PER_SECOND
    clock.now += 0.5
    host.log_budget.tick()
    level, message = host.records[-1]
    assert level == "warn"
    assert message.startswith(
        '250 log lines dropped: actor "Flooder" logged more than 1000 lines a second, and signals and states come first.'
    )
    assert "self.publish()" in message
    # A second later the budget is whole again; nothing more to report.
    logger.info("after")
    assert host.records[-1] == ("info", "after")
    host.log_budget.flush()
    assert host.records[-1] == ("info", "after")


def test_the_count_goes_up_when_the_actor_ends_and_an_even_rate_is_never_cut():
    host = FakeHost()
    clock = Clock()
    host.log_budget = LogBudget(host, clock)
    for _ in range(5000):
        clock.now += 0.002  # 500 lines a second
        assert host.log_budget.take()
    # The bucket holds 999 after the even rate: of 1001 lines at once, 2 are dropped.
    taken = sum(host.log_budget.take() for _ in range(LOG_LINES_PER_SECOND + 1))
    assert taken == LOG_LINES_PER_SECOND - 1
    assert host.records == []
    host.log_budget.flush()
    assert host.records[-1][1].startswith('2 log lines dropped: actor "Flooder"')
