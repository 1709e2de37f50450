"""Time as a dependency: components read and wait on a `Clock`, tests drive a `ManualClock`.

Every time-based behaviour (heartbeat TTLs, grace periods, backoff, drain deadlines, retry
delays) reads `now()` and waits with `sleep()` or `wait()` on the clock it was given, so a test
can advance time by hand instead of sleeping through it.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time as _time
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """Wall-clock time, timezone-aware UTC."""
        ...

    def time(self) -> float:
        """Wall-clock time in seconds since the epoch (what outlives the process: expiries, dates)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back, for measuring intervals."""
        ...

    async def sleep(self, delay: timedelta) -> None:
        """Return once `delay` has passed on this clock."""
        ...

    async def sleep_until(self, when: datetime) -> None:
        """Return once this clock reads `when` or later."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def time(self) -> float:
        return _time.time()

    def monotonic(self) -> float:
        return _time.monotonic()

    async def sleep(self, delay: timedelta) -> None:
        await asyncio.sleep(max(delay.total_seconds(), 0.0))

    async def sleep_until(self, when: datetime) -> None:
        await self.sleep(when - self.now())


async def wait(event: asyncio.Event, within: timedelta | datetime | None, *, clock: Clock) -> bool:
    """Wait until `event` is set or `within` passes on `clock` (a delay from now, or a time);
    True if the event was set. The deadline is fixed when this is called."""
    if event.is_set():
        return True
    if within is None:
        await event.wait()
        return True
    waiter = asyncio.ensure_future(event.wait())
    try:
        await wait_for_future(waiter, within, clock=clock)
    finally:
        waiter.cancel()
    return event.is_set()


async def wait_for_future(future: asyncio.Future[Any], within: timedelta | datetime, *, clock: Clock) -> bool:
    """Wait until `future` is done or `within` passes on `clock`; True if it was done in time.
    The future is left as it is (the caller cancels it if it wants to)."""
    until = within if isinstance(within, datetime) else clock.now() + within
    timer = asyncio.ensure_future(clock.sleep_until(until))
    try:
        await asyncio.wait({future, timer}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        timer.cancel()
        await asyncio.gather(timer, return_exceptions=True)
    return future.done()


MONOTONIC_START = 1000.0
"""What a fresh ManualClock's monotonic() reads."""


class ManualClock:
    """A clock that moves only when the test calls `advance`; sleepers wake in deadline order."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = self._start = start or datetime(2026, 1, 1, tzinfo=UTC)
        self._sleepers: list[tuple[datetime, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._changed = asyncio.Event()

    def now(self) -> datetime:
        return self._now

    def time(self) -> float:
        return self._now.timestamp()

    def monotonic(self) -> float:
        return (self._now - self._start).total_seconds() + MONOTONIC_START

    async def sleep(self, delay: timedelta) -> None:
        await self.sleep_until(self._now + delay)

    async def sleep_until(self, when: datetime) -> None:
        if when <= self._now:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (when, next(self._order), future))
        self._changed.set()
        await future

    @property
    def sleepers(self) -> int:
        """How many sleeps are waiting now (cancelled ones no longer count)."""
        return sum(1 for _, _, f in self._sleepers if not f.done())

    async def wait_for_sleepers(self, count: int = 1, *, within: float = 10.0) -> None:
        """Wait (in real time, bounded) until at least `count` sleeps wait on this clock."""
        async with asyncio.timeout(within):
            while self.sleepers < count:
                self._changed.clear()
                await self._changed.wait()

    async def advance(self, delta: timedelta | float) -> None:
        """Jump forward by `delta`, then wake every sleep that is now due, in deadline order,
        letting each woken task run to its next await.

        Each woken task sees the new time; a periodic task wakes once per jump, however many of
        its periods the jump spans (as a process that was suspended would).
        """
        for future in self._jump(delta):
            future.set_result(None)
            await asyncio.sleep(0)
        await asyncio.sleep(0)

    def tick(self, delta: timedelta | float) -> None:
        """`advance` for code that cannot await: the woken sleeps run at the caller's next await."""
        for future in self._jump(delta):
            future.set_result(None)

    def _jump(self, delta: timedelta | float) -> list[asyncio.Future[None]]:
        if isinstance(delta, (int, float)):
            delta = timedelta(seconds=delta)
        if delta < timedelta(0):
            raise ValueError("a clock does not go backwards")
        self._now += delta
        due = []
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                due.append(future)
        return due
