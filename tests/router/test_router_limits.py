"""Token buckets and the fair (round-robin per run) limiter, on a manual clock."""

from __future__ import annotations

import asyncio

import pytest
from router_support import wait_until

from agentflow.clock import ManualClock
from router.limits import FairLimiter, TokenBucket

pytestmark = [pytest.mark.component, pytest.mark.timeout(10)]


@pytest.mark.unit
def test_token_bucket_refills_continuously_up_to_its_capacity() -> None:
    clock = ManualClock()
    bucket = TokenBucket(60, clock)  # one a second, up to 60
    bucket.take(60)
    assert bucket.wait_for(1) == pytest.approx(1.0)
    clock.tick(0.5)
    assert bucket.wait_for(1) == pytest.approx(0.5)
    clock.tick(600)
    assert bucket.level() == 60
    assert bucket.wait_for(1000) == 0  # a take above capacity waits for a full bucket only


@pytest.mark.unit
def test_token_bucket_can_be_charged_and_refunded() -> None:
    bucket = TokenBucket(100, ManualClock())
    bucket.take(50)
    bucket.give(-30)  # the call used 30 more than it took
    assert bucket.level() == pytest.approx(20)
    bucket.give(500)
    assert bucket.level() == 100


async def test_a_bursting_run_does_not_starve_another() -> None:
    clock = ManualClock()
    limiter = FairLimiter(rpm=2, tpm=None, clock=clock)  # capacity 2, then one every 30 s
    order: list[str] = []

    async def take(run: str, n: int) -> None:
        await limiter.acquire(run, 1)
        order.append(f"{run}{n}")

    burst = [asyncio.create_task(take("A", n)) for n in range(10)]
    await wait_until(lambda: len(order) == 2, what="the first two to pass")
    lone = asyncio.create_task(take("B", 0))
    await wait_until(lambda: limiter.waiting == 9, what="nine calls to queue")
    for expected in (3, 4, 5, 6):
        await wait_until(lambda: clock.sleepers == 1, what="the dispatcher to wait")
        clock.tick(30)
        await wait_until(lambda n=expected: len(order) == n, what=f"call {expected}")
    assert order == ["A0", "A1", "A2", "B0", "A3", "A4"]
    assert lone.done()
    for task in burst:
        task.cancel()
    await limiter.close()


async def test_tpm_limit_waits_for_enough_tokens_and_reports_the_wait() -> None:
    clock = ManualClock()
    waits: list[float] = []
    limiter = FairLimiter(rpm=None, tpm=600, clock=clock, on_wait=waits.append)  # 10 tokens a second
    await limiter.acquire("r", 600)
    task = asyncio.create_task(limiter.acquire("r", 100))
    await wait_until(lambda: clock.sleepers == 1, what="the call to wait")
    clock.tick(5)
    await wait_until(lambda: clock.sleepers == 1, what="the dispatcher to wait again")
    assert not task.done()
    clock.tick(5)
    await asyncio.wait_for(task, 5)
    assert waits == [pytest.approx(10)]


async def test_a_cancelled_waiter_does_not_hold_up_the_queue() -> None:
    clock = ManualClock()
    limiter = FairLimiter(rpm=1, tpm=None, clock=clock)
    await limiter.acquire("r", 1)
    gone = asyncio.create_task(limiter.acquire("r", 1))
    kept = asyncio.create_task(limiter.acquire("s", 1))
    await wait_until(lambda: limiter.waiting == 2, what="two waiters")
    gone.cancel()
    await wait_until(lambda: clock.sleepers == 1, what="the dispatcher to wait")
    clock.tick(60)
    await asyncio.wait_for(kept, 5)
    await limiter.close()
