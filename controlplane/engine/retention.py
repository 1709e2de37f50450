"""Pruning the event log: events older than the retention go, once every sink has them."""

from __future__ import annotations

import logging
from datetime import timedelta

from agentflow.clock import wait as clock_wait
from agentflow.lifecycle import Component
from controlplane.engine.core import Core
from controlplane.errors import Error

log = logging.getLogger(__name__)

PRUNE_INTERVAL = timedelta(hours=1)
PRUNE_BATCH = 10_000  # events deleted per transaction, so that writers never wait long


class EventRetention(Component):
    """Every `interval`, deletes events older than `keep`; with a `sink` (e.g. NATS), only those
    it has delivered, so that an outage of the sink loses nothing however long it lasts."""

    def __init__(self, core: Core, *, keep: timedelta, sink: str | None, interval: timedelta = PRUNE_INTERVAL) -> None:
        super().__init__()
        self._core = core
        self._keep = keep
        self._sink = sink
        self._interval = interval

    async def prune_once(self) -> int:
        """Delete what may go now; answers how many events were deleted."""
        store = self._core.store
        before = self._core.clock.now() - self._keep
        up_to = None if self._sink is None else store.read.delivered_seq(self._sink)
        total = 0
        while True:
            async with store.transaction() as tx:
                deleted = tx.prune_events(before=before, up_to_seq=up_to, limit=PRUNE_BATCH)
            total += deleted
            if deleted < PRUNE_BATCH:
                break
        if total:
            log.info("pruned old events", extra={"deleted": total, "older_than": before.isoformat()})
        return total

    async def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                await self.prune_once()
            except Error as exc:
                log.warning("pruning events failed; trying again later", extra={"error": str(exc)})
            await clock_wait(self.stopping, self._interval, clock=self._core.clock)
