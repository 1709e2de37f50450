"""The circuit breaker's states on a manual clock, and Retry-After parsing (the retry delay is
`agentflow.backoff`'s, tested with it)."""

from __future__ import annotations

from email.utils import formatdate

import pytest

from agentflow.clock import ManualClock
from router.breaker import BreakerState, CircuitBreaker
from router.providers import parse_retry_after

pytestmark = pytest.mark.unit


def test_breaker_opens_after_consecutive_failures_and_half_opens_after_cooldown() -> None:
    clock = ManualClock()
    changes: list[BreakerState] = []
    breaker = CircuitBreaker(failures=3, cooldown=30, clock=clock, on_change=changes.append)
    breaker.failure()
    breaker.success()  # a success resets the count
    breaker.failure()
    breaker.failure()
    assert breaker.allow() and breaker.state is BreakerState.CLOSED
    breaker.failure()
    assert breaker.state is BreakerState.OPEN and not breaker.allow()
    clock.tick(29.9)
    assert not breaker.allow()
    clock.tick(0.1)
    assert breaker.allow()  # the probe
    assert not breaker.allow()  # only one at a time
    breaker.failure()
    assert breaker.state is BreakerState.OPEN  # a failed probe reopens at once
    clock.tick(30)
    assert breaker.allow()
    breaker.success()
    assert breaker.state is BreakerState.CLOSED and breaker.allow()
    assert changes == [BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.OPEN, BreakerState.HALF_OPEN,
                       BreakerState.CLOSED]  # fmt: skip


def test_trip_opens_at_once_and_a_released_probe_can_go_again() -> None:
    clock = ManualClock()
    breaker = CircuitBreaker(failures=5, cooldown=10, clock=clock)
    breaker.trip()
    assert breaker.state is BreakerState.OPEN
    clock.tick(10)
    assert breaker.allow()
    breaker.release_probe()
    assert breaker.allow()


@pytest.mark.parametrize(
    ("value", "expected"),
    [("7", 7.0), ("0.5", 0.5), ("-3", 0.0), (None, None), ("soon", None),
     (formatdate(1_000_100, usegmt=True), 100.0), (formatdate(999_000, usegmt=True), 0.0)],
    ids=["seconds", "fraction", "negative", "absent", "garbage", "http-date", "http-date-past"],
)  # fmt: skip
def test_retry_after_in_seconds_or_as_an_http_date(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=1_000_000) == expected
