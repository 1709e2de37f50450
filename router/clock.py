"""Time as a dependency: token buckets, breaker cooldowns, backoff and cache TTLs read a `Clock`.

`monotonic()` measures intervals; `time()` is wall-clock seconds for what outlives the process
(cache expiry, ledger dates). `sleep()` waits on the same clock, so a `ManualClock` that a test
advances drives every time-based behaviour without real waiting.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time as _time
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def time(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def monotonic(self) -> float:
        return _time.monotonic()

    def time(self) -> float:
        return _time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class ManualClock:
    """A clock that moves only when `advance()` is called; sleepers wake when their time comes."""

    def __init__(self, *, start: float = 1_000.0, wall: float = 1_767_225_600.0) -> None:
        self._now = start
        self._wall_offset = wall - start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def monotonic(self) -> float:
        return self._now

    def time(self) -> float:
        return self._now + self._wall_offset

    @property
    def sleepers(self) -> int:
        """How many sleeps are pending (tests wait for this before advancing)."""
        return sum(1 for _, _, fut in self._sleepers if not fut.done())

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._seq), fut))
        await fut

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go back")
        self._now += seconds
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, fut = heapq.heappop(self._sleepers)
            if not fut.done():
                fut.set_result(None)
