"""A graceful stop on a manual clock: goodbye first, then running steps may finish and their
results be acknowledged within the grace period; a second signal or the grace's end cuts it short."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from agentflow.clock import ManualClock
from noded.messages import Goodbye, ToControlPlane
from noded.shutdown import wind_down

pytestmark = [pytest.mark.component, pytest.mark.timeout(30)]

GRACE = timedelta(seconds=10)


@dataclass
class Link:
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    sent: list[ToControlPlane] = field(default_factory=list)

    def send(self, message: ToControlPlane) -> bool:
        self.sent.append(message)
        return self.connected.is_set()


@dataclass
class Runner:
    running: int = 1
    no_steps: asyncio.Event = field(default_factory=asyncio.Event)
    no_unacked: asyncio.Event = field(default_factory=asyncio.Event)

    def running_count(self) -> int:
        return self.running

    def finish(self) -> None:
        self.running = 0
        self.no_steps.set()


@pytest.fixture
def parts() -> tuple[Link, Runner, ManualClock, asyncio.Event]:
    link = Link()
    link.connected.set()
    return link, Runner(), ManualClock(), asyncio.Event()


async def test_says_goodbye_and_waits_for_the_steps_then_for_their_acks(parts) -> None:
    link, runner, clock, force = parts
    stop = asyncio.ensure_future(wind_down(link, runner, grace=GRACE, force=force, clock=clock))
    await clock.wait_for_sleepers(1)
    assert link.sent == [Goodbye()]
    runner.finish()  # the step ends; its result now waits for the ack
    done, _ = await asyncio.wait({stop}, timeout=0.1)
    assert not done
    runner.no_unacked.set()
    async with asyncio.timeout(5):
        await stop
    assert clock.sleepers == 0  # no timer left behind


async def test_the_grace_period_ends_the_wait(parts, caplog: pytest.LogCaptureFixture) -> None:
    link, runner, clock, force = parts
    stop = asyncio.ensure_future(wind_down(link, runner, grace=GRACE, force=force, clock=clock))
    await clock.wait_for_sleepers(1)
    await clock.advance(GRACE - timedelta(milliseconds=1))
    done, _ = await asyncio.wait({stop}, timeout=0.1)
    assert not done
    await clock.advance(timedelta(milliseconds=1))
    async with asyncio.timeout(5):
        await stop
    assert "stopping with steps still running (grace period over)" in caplog.text


async def test_a_second_signal_cuts_it_short(parts, caplog: pytest.LogCaptureFixture) -> None:
    link, runner, clock, force = parts
    stop = asyncio.ensure_future(wind_down(link, runner, grace=GRACE, force=force, clock=clock))
    await clock.wait_for_sleepers(1)
    force.set()
    async with asyncio.timeout(5):
        await stop
    assert "(signalled again)" in caplog.text


async def test_without_a_stream_finished_results_stay_in_the_outbox(parts) -> None:
    link, runner, clock, force = parts
    link.connected.clear()
    runner.finish()
    async with asyncio.timeout(5):
        await wind_down(link, runner, grace=GRACE, force=force, clock=clock)  # no wait for acks


async def test_nothing_to_wait_for_or_no_grace_returns_at_once(parts) -> None:
    link, runner, clock, force = parts
    async with asyncio.timeout(5):
        await wind_down(link, runner, grace=timedelta(0), force=force, clock=clock)
        assert link.sent == []  # not even a goodbye
        runner.finish()
        runner.no_unacked.set()
        await wind_down(link, runner, grace=GRACE, force=force, clock=clock)
    assert link.sent == []
