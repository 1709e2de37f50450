"""Retry delays: exponential from `base`, capped at `cap`, with jitter drawn from an injected RNG."""

from __future__ import annotations

import random

JITTER_MIN = 0.5
JITTER_MAX = 1.0


def retry_delay(*, failures: int, base: float, cap: float, rng: random.Random) -> float:
    """Seconds to wait after `failures` (≥ 1) consecutive failures: min(cap, base·2^(failures-1)) · U(0.5, 1)."""
    if failures < 1:
        raise ValueError(f"failures must be at least 1, got {failures}")
    exponent = min(failures - 1, 60)
    return min(cap, base * (2**exponent)) * rng.uniform(JITTER_MIN, JITTER_MAX)
