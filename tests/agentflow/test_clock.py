"""The manual clock that time-based tests advance by hand, and waiting on an event with a clock."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from agentflow.clock import ManualClock, SystemClock, wait

pytestmark = [pytest.mark.component, pytest.mark.timeout(10)]


async def test_sleepers_wake_in_deadline_order_once_time_reaches_them() -> None:
    clock = ManualClock()
    start = clock.now()
    woke: list[str] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(timedelta(seconds=seconds))
        woke.append(name)

    tasks = [asyncio.create_task(sleeper("late", 3)), asyncio.create_task(sleeper("early", 1))]
    await clock.wait_for_sleepers(2)
    await clock.advance(0.5)
    assert woke == []
    await clock.advance(timedelta(seconds=0.5))
    assert woke == ["early"]
    await clock.advance(5)
    assert woke == ["early", "late"]
    assert clock.now() - start == timedelta(seconds=6)
    await asyncio.gather(*tasks)


async def test_a_cancelled_sleep_no_longer_counts() -> None:
    clock = ManualClock()
    task = asyncio.create_task(clock.sleep(timedelta(seconds=1)))
    await clock.wait_for_sleepers(1)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert clock.sleepers == 0


async def test_the_clock_does_not_go_backwards() -> None:
    with pytest.raises(ValueError, match="backwards"):
        await ManualClock().advance(-1)


async def test_wait_answers_whether_the_event_came_before_the_timeout() -> None:
    clock = ManualClock()
    event = asyncio.Event()
    timed_out = asyncio.create_task(wait(event, timedelta(seconds=2), clock=clock))
    await clock.wait_for_sleepers(1)
    await clock.advance(2)
    assert await timed_out is False

    in_time = asyncio.create_task(wait(event, timedelta(seconds=2), clock=clock))
    await clock.wait_for_sleepers(1)
    event.set()
    assert await in_time is True
    assert clock.sleepers == 0  # the timer was cleaned up
    assert await wait(event, None, clock=SystemClock()) is True
