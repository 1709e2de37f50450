"""A graceful stop: say goodbye, let running steps finish and their results land, within a grace."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from noded.link import ControlPlaneLink
from noded.messages import Goodbye
from noded.runner import StepRunner

log = logging.getLogger(__name__)


async def wind_down(link: ControlPlaneLink, runner: StepRunner, *, grace: timedelta, force: asyncio.Event) -> None:
    """Before the daemon stops its parts: the control plane places nothing more here, running
    steps may finish and their results be acknowledged, until `grace` passes or `force` is set.

    With the control plane unreachable, finished results stay in the outbox for the next start.
    """
    if grace <= timedelta(0) or (runner.no_steps.is_set() and runner.no_unacked.is_set()):
        return
    link.send(Goodbye())
    log.info(
        "letting running steps finish before stopping (signal again to stop now)",
        extra={"running": runner.running_count(), "grace_s": grace.total_seconds()},
    )
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(grace.total_seconds()):
            await _first(runner.no_steps, force)
            if link.connected.is_set():
                await _first(runner.no_unacked, force)
    if runner.running_count():
        reason = "signalled again" if force.is_set() else "grace period over"
        log.warning(f"stopping with steps still running ({reason})", extra={"running": runner.running_count()})


async def _first(*events: asyncio.Event) -> None:
    waits = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
