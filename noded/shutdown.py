"""A graceful stop: say goodbye, let running steps finish and their results land, within a grace."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Protocol

from agentflow.clock import Clock, SystemClock, wait_for_future
from noded.messages import Goodbye

log = logging.getLogger(__name__)


class Winding(Protocol):
    """What a graceful stop needs of the link and the runner."""

    connected: asyncio.Event

    def send(self, message: Goodbye) -> bool: ...


class Finishing(Protocol):
    no_steps: asyncio.Event
    no_unacked: asyncio.Event

    def running_count(self) -> int: ...


async def wind_down(
    link: Winding, runner: Finishing, *, grace: timedelta, force: asyncio.Event, clock: Clock | None = None
) -> None:
    """Before the daemon stops its parts: the control plane places nothing more here, running
    steps may finish and their results be acknowledged, until `grace` passes or `force` is set.

    With the control plane unreachable, finished results stay in the outbox for the next start.
    """
    clock = clock or SystemClock()
    if grace <= timedelta(0) or (runner.no_steps.is_set() and runner.no_unacked.is_set()):
        return
    link.send(Goodbye())
    log.info(
        "letting running steps finish before stopping (signal again to stop now)",
        extra={"running": runner.running_count(), "grace_s": grace.total_seconds()},
    )
    until = clock.now() + grace
    finished = await _first_before(until, clock, runner.no_steps, force)
    if finished and link.connected.is_set() and not force.is_set():
        await _first_before(until, clock, runner.no_unacked, force)
    if runner.running_count():
        reason = "signalled again" if force.is_set() else "grace period over"
        log.warning(f"stopping with steps still running ({reason})", extra={"running": runner.running_count()})


async def _first_before(until: datetime, clock: Clock, *events: asyncio.Event) -> bool:
    """Wait until one of `events` is set, or `until`; True if one was set in time."""
    first = asyncio.ensure_future(_first(*events))
    try:
        return await wait_for_future(first, until, clock=clock)
    finally:
        first.cancel()


async def _first(*events: asyncio.Event) -> None:
    waits = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
