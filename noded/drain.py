"""What the control plane last said about draining this node, and waiting for it to say more."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from noded.metrics import NodeMetrics

log = logging.getLogger(__name__)


class DrainState:
    def __init__(self, metrics: NodeMetrics) -> None:
        self._metrics = metrics
        self.draining = False
        self.deadline: datetime | None = None
        self.updates = 0  # how many Drain messages arrived; a waiter compares against it
        self._next = asyncio.Event()  # set (and replaced) on each update

    def update(self, draining: bool, deadline: datetime | None) -> None:
        """A Drain message from the control plane (after DrainNode/UndrainNode or a hello)."""
        if draining != self.draining or deadline != self.deadline:
            if draining:
                log.info("draining: no new steps", extra={"deadline": deadline.isoformat() if deadline else None})
            else:
                log.info("no longer draining")
        self.draining, self.deadline = draining, deadline
        self.updates += 1
        self._metrics.draining.set(int(draining))
        arrived, self._next = self._next, asyncio.Event()
        arrived.set()

    async def next_update(self, after: int) -> None:
        """Wait until an update later than number `after` arrives (callers bound the wait)."""
        while self.updates <= after:
            await self._next.wait()
