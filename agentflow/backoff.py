"""Retry backoff: exponential, capped, with jitter supplied by the caller so this stays pure."""

from __future__ import annotations

from datetime import timedelta

JITTER_MIN = 0.8
JITTER_MAX = 1.2

_MICROSECOND = timedelta(microseconds=1)


def retry_delay(*, failures: int, base: timedelta, cap: timedelta, jitter: float) -> timedelta:
    """How long to wait before the next attempt after `failures` consecutive failures.

    The delay is `base * 2 ** (failures - 1)`, capped at `cap`, then multiplied by `jitter`.
    The jitter is applied after the cap so that steps that all reached the cap still spread
    out; the result therefore lies in [0.8 * cap, 1.2 * cap] once the cap is reached.

    The caller draws `jitter` from an injected `random.Random`, e.g.
    `rng.uniform(JITTER_MIN, JITTER_MAX)`, so that tests can seed it and this function has no
    global randomness. Raises ValueError for `failures < 1`, negative durations or a jitter
    outside [JITTER_MIN, JITTER_MAX].
    """
    if failures < 1:
        raise ValueError(f"failures must be at least 1, got {failures}")
    if base < timedelta(0) or cap < timedelta(0):
        raise ValueError(f"base and cap must not be negative, got {base} and {cap}")
    if not JITTER_MIN <= jitter <= JITTER_MAX:
        raise ValueError(f"jitter must be in [{JITTER_MIN}, {JITTER_MAX}], got {jitter}")
    # Integer microseconds, so that no float or timedelta overflows however many failures.
    base_us, cap_us = base // _MICROSECOND, cap // _MICROSECOND
    shift = failures - 1
    if base_us == 0:
        micros = 0
    elif shift >= cap_us.bit_length():  # base_us << shift >= 2 ** shift > cap_us
        micros = cap_us
    else:
        micros = min(base_us << shift, cap_us)
    return timedelta(microseconds=round(micros * jitter))
