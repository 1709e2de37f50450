"""Token-bucket RPM and TPM limits per deployment, shared fairly between runs.

A call takes one request and its estimated tokens. When the buckets have room and nobody waits,
it goes at once. Otherwise it queues behind its own run's earlier calls, and the runs with queued
calls are served round-robin, one call each in turn, so a run that bursts a hundred calls does not
starve another run's single call. Waiting happens on the injected clock.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict, deque
from collections.abc import Callable
from datetime import timedelta

from agentflow.clock import Clock

MIN_WAIT_S = 0.001


class TokenBucket:
    """`per_minute` units, refilled continuously; a take larger than the capacity waits for a full bucket."""

    def __init__(self, per_minute: int, clock: Clock) -> None:
        self.capacity = float(per_minute)
        self._rate = per_minute / 60.0
        self._level = self.capacity
        self._clock = clock
        self._at = clock.monotonic()

    def _refill(self) -> None:
        now = self._clock.monotonic()
        if now > self._at:
            self._level = min(self.capacity, self._level + (now - self._at) * self._rate)
            self._at = now

    def level(self) -> float:
        self._refill()
        return self._level

    def wait_for(self, amount: float) -> float:
        """Seconds until `amount` (at most the capacity) is available; 0 if it is now."""
        need = min(amount, self.capacity) - self.level()
        return 0.0 if need <= 1e-9 else need / self._rate

    def take(self, amount: float) -> None:
        self._refill()
        self._level -= min(amount, self.capacity)

    def give(self, amount: float) -> None:
        """Return (or, with a negative amount, charge) units after the real usage is known."""
        self._refill()
        self._level = min(self.capacity, self._level + amount)


class FairLimiter:
    def __init__(
        self,
        *,
        rpm: int | None,
        tpm: int | None,
        clock: Clock,
        on_wait: Callable[[float], None] | None = None,
    ) -> None:
        self._requests = TokenBucket(rpm, clock) if rpm else None
        self._tokens = TokenBucket(tpm, clock) if tpm else None
        self._clock = clock
        self._queues: OrderedDict[str, deque[tuple[int, asyncio.Future[None]]]] = OrderedDict()
        self._dispatcher: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._on_wait = on_wait

    @property
    def limited(self) -> bool:
        return self._requests is not None or self._tokens is not None

    @property
    def waiting(self) -> int:
        return sum(len(q) for q in self._queues.values())

    def _wait_for(self, tokens: int) -> float:
        wait = 0.0
        if self._requests is not None:
            wait = self._requests.wait_for(1)
        if self._tokens is not None:
            wait = max(wait, self._tokens.wait_for(tokens))
        return wait

    def _take(self, tokens: int) -> None:
        if self._requests is not None:
            self._requests.take(1)
        if self._tokens is not None:
            self._tokens.take(tokens)

    async def acquire(self, run: str, tokens: int) -> None:
        if not self.limited:
            return
        if not self._queues and self._wait_for(tokens) == 0.0:
            self._take(tokens)
            return
        started = self._clock.monotonic()
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queues.setdefault(run, deque()).append((tokens, fut))
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = asyncio.create_task(self._dispatch(), name="rate-limit-dispatch")
        try:
            await fut
        finally:
            if self._on_wait is not None:
                self._on_wait(self._clock.monotonic() - started)

    def adjust(self, tokens: int) -> None:
        """Charge (positive) or refund (negative) the TPM bucket once a call's real usage is known."""
        if self._tokens is not None and tokens:
            self._tokens.give(-tokens)

    async def _dispatch(self) -> None:
        while self._queues:
            run, queue = next(iter(self._queues.items()))
            while queue and queue[0][1].done():  # cancelled while waiting
                queue.popleft()
            if not queue:
                del self._queues[run]
                continue
            tokens, fut = queue[0]
            wait = self._wait_for(tokens)
            if wait > 0:
                await self._clock.sleep(timedelta(seconds=max(wait, MIN_WAIT_S)))
                continue
            queue.popleft()
            self._take(tokens)
            fut.set_result(None)
            del self._queues[run]
            if queue:
                self._queues[run] = queue  # to the back of the round
        self._dispatcher = None

    async def close(self) -> None:
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._dispatcher
        for queue in self._queues.values():
            for _, fut in queue:
                fut.cancel()
