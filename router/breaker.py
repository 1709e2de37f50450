"""A circuit breaker per deployment: closed → open after consecutive failures → half-open after the
cooldown, when one probe call goes through; its success closes the breaker, its failure reopens it."""

from __future__ import annotations

from collections.abc import Callable
from enum import IntEnum

from agentflow.clock import Clock


class BreakerState(IntEnum):
    """Values of the `agentflow_llm_breaker_state` gauge."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class CircuitBreaker:
    def __init__(
        self,
        *,
        failures: int,
        cooldown: float,
        clock: Clock,
        on_change: Callable[[BreakerState], None] | None = None,
    ) -> None:
        self._threshold = failures
        self._cooldown = cooldown
        self._clock = clock
        self._failures = 0
        self._opened_at = 0.0
        self._probing = False
        self._state = BreakerState.CLOSED
        self._on_change = on_change

    @property
    def state(self) -> BreakerState:
        if self._state is BreakerState.OPEN and self._clock.monotonic() - self._opened_at >= self._cooldown:
            self._set(BreakerState.HALF_OPEN)
        return self._state

    def _set(self, state: BreakerState) -> None:
        if state is not self._state:
            self._state = state
            if self._on_change is not None:
                self._on_change(state)

    def allow(self) -> bool:
        """Whether a call may go now; in half-open, only one probe at a time."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and not self._probing:
            self._probing = True
            return True
        return False

    def success(self) -> None:
        self._failures = 0
        self._probing = False
        self._set(BreakerState.CLOSED)

    def failure(self) -> None:
        self._probing = False
        self._failures += 1
        if self._state is BreakerState.HALF_OPEN or self._failures >= self._threshold:
            self._opened_at = self._clock.monotonic()
            self._set(BreakerState.OPEN)

    def trip(self) -> None:
        """Open at once (the deployment cannot be reached at all)."""
        self._probing = False
        self._failures = max(self._failures, self._threshold)
        self._opened_at = self._clock.monotonic()
        self._set(BreakerState.OPEN)

    def release_probe(self) -> None:
        """A probe that ended without a verdict (e.g. the call was cancelled)."""
        self._probing = False
