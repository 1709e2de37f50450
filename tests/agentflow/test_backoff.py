"""Table tests for `agentflow.backoff.retry_delay`."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from agentflow.backoff import JITTER_MAX, JITTER_MIN, retry_delay

pytestmark = pytest.mark.unit

S = timedelta(seconds=1)
MIN = timedelta(minutes=1)

DELAY_CASES = {
    "first-failure-is-base": (1, S, MIN, 1.0, S),
    "second-doubles": (2, S, MIN, 1.0, 2 * S),
    "third-quadruples": (3, S, MIN, 1.0, 4 * S),
    "sixth-below-cap": (6, S, MIN, 1.0, 32 * S),
    "seventh-capped": (7, S, MIN, 1.0, MIN),
    "far-beyond-cap": (10_000, S, MIN, 1.0, MIN),
    "cap-equal-to-delay": (3, S, 4 * S, 1.0, 4 * S),
    "cap-below-base": (1, 10 * S, 2 * S, 1.0, 2 * S),
    "jitter-low": (2, S, MIN, 0.8, timedelta(seconds=1.6)),
    "jitter-high": (2, S, MIN, 1.2, timedelta(seconds=2.4)),
    "jitter-after-cap-low": (20, S, MIN, 0.8, timedelta(seconds=48)),
    "jitter-after-cap-high": (20, S, MIN, 1.2, timedelta(seconds=72)),
    "sub-second-base": (3, timedelta(milliseconds=250), MIN, 1.0, S),
    "zero-base": (5, timedelta(0), MIN, 1.2, timedelta(0)),
    "microsecond-rounding": (1, timedelta(microseconds=3), MIN, 1.1, timedelta(microseconds=3)),
}


@pytest.mark.parametrize(
    ("failures", "base", "cap", "jitter", "expected"), DELAY_CASES.values(), ids=DELAY_CASES.keys()
)
def test_retry_delay(failures: int, base: timedelta, cap: timedelta, jitter: float, expected: timedelta) -> None:
    assert retry_delay(failures=failures, base=base, cap=cap, jitter=jitter) == expected


INVALID_CASES = {
    "zero-failures": (0, S, MIN, 1.0),
    "negative-base": (1, -S, MIN, 1.0),
    "negative-cap": (1, S, -MIN, 1.0),
    "jitter-too-low": (1, S, MIN, 0.79),
    "jitter-too-high": (1, S, MIN, 1.21),
}


@pytest.mark.parametrize(("failures", "base", "cap", "jitter"), INVALID_CASES.values(), ids=INVALID_CASES.keys())
def test_invalid_arguments_raise(failures: int, base: timedelta, cap: timedelta, jitter: float) -> None:
    with pytest.raises(ValueError):
        retry_delay(failures=failures, base=base, cap=cap, jitter=jitter)


def test_seeded_jitter_is_reproducible_and_bounded() -> None:
    def delays(seed: int) -> list[timedelta]:
        rng = random.Random(seed)
        return [
            retry_delay(failures=f, base=S, cap=MIN, jitter=rng.uniform(JITTER_MIN, JITTER_MAX)) for f in range(1, 12)
        ]

    assert delays(7) == delays(7)
    for f, d in enumerate(delays(7), start=1):
        nominal = min(S * 2 ** (f - 1), MIN)
        assert JITTER_MIN * nominal <= d <= JITTER_MAX * nominal
