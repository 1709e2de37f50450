"""The engine: run, node and scheduling services over one store, with their background loops."""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from agentflow.clock import Clock, SystemClock
from agentflow.clock import wait as clock_wait
from agentflow.lifecycle import Component
from agentflow.vocabulary import StepStatus
from controlplane.engine.access import Tokens
from controlplane.engine.bus import EventBus
from controlplane.engine.core import Core
from controlplane.engine.drains import Drains
from controlplane.engine.event_log import EventLog
from controlplane.engine.fleet import Fleet
from controlplane.engine.liveness import LivenessService
from controlplane.engine.nodes import NodeViews
from controlplane.engine.placement import schedule_pass
from controlplane.engine.registration import Registration
from controlplane.engine.reports import Reports
from controlplane.engine.runs import RunService
from controlplane.errors import Error
from controlplane.store import ModuleBlobs, StateStore

log = logging.getLogger(__name__)

# Upper bound on the time between scheduling passes even when nothing woke the scheduler.
MAX_SCHEDULE_IDLE = timedelta(seconds=1)
MIN_REAP_INTERVAL = timedelta(milliseconds=50)


class SchedulerObserver(Protocol):
    """Told about every scheduling pass that found ready steps (metrics)."""

    def on_pass(self, *, placed: int, seconds: float) -> None: ...


class Engine(Component):
    """Owns the state and its loops: `Engine.open(...)`, then `run()` (the scheduler and the node
    reaper) until `shutdown()`, which also closes the store. Without `run()`, tests drive
    `schedule_once()`, `liveness.reap()` and `drains.enforce()` themselves."""

    def __init__(
        self,
        core: Core,
        *,
        blobs: ModuleBlobs,
        rng: random.Random,
        heartbeat_interval: timedelta,
        node_ttl: timedelta,
    ) -> None:
        super().__init__()
        self.core = core
        self.fleet = Fleet()
        self.heartbeat_interval = heartbeat_interval
        self.node_ttl = node_ttl
        self.runs = RunService(core, self.fleet, blobs)
        self.nodes = NodeViews(core, self.fleet)
        self.tokens = Tokens(core)
        self.registration = Registration(core, self.fleet, self.tokens)
        self.liveness = LivenessService(core, self.fleet, node_ttl=node_ttl)
        self.reports = Reports(core, self.fleet, rng=rng)
        self.drains = Drains(core, self.fleet, self.nodes)
        self.events = EventLog(core)
        self.scheduler_observer: SchedulerObserver | None = None
        self._closed = False

    @classmethod
    async def open(
        cls,
        data_dir: Path,
        *,
        heartbeat_interval: timedelta,
        node_ttl: timedelta,
        max_module_bytes: int,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> Engine:
        data_dir.mkdir(parents=True, exist_ok=True)
        store = await StateStore.open(data_dir / "state.db")
        engine = cls(
            Core(store=store, bus=EventBus(), clock=clock or SystemClock(), store_id=await store.read.store_id()),
            blobs=ModuleBlobs(data_dir / "modules", max_bytes=max_module_bytes),
            rng=rng or random.Random(),
            heartbeat_interval=heartbeat_interval,
            node_ttl=node_ttl,
        )
        await engine.registration.load()
        await engine.tokens.load()
        return engine

    async def _serve(self) -> None:
        async with asyncio.TaskGroup() as group:
            loops = [
                group.create_task(self._schedule_loop(), name="scheduler"),
                group.create_task(self._reap_loop(), name="node-reaper"),
            ]
            self.core.wake()
            await self.stopping.wait()
            for loop in loops:
                loop.cancel()

    async def schedule_once(self) -> datetime | None:
        """One pass; answers when the next backoff expires (None: nothing waits on time)."""
        core = self.core
        if not await core.store.read.has_steps_with_status(StepStatus.READY):
            return None  # nothing to place: no write transaction
        now = core.clock.now()
        started = core.clock.monotonic()
        async with core.tx() as tx:
            result = await schedule_pass(tx, nodes=await tx.nodes(), live_status=self.fleet.live_status(), now=now)
        if self.scheduler_observer is not None:
            self.scheduler_observer.on_pass(placed=len(result.assignments), seconds=core.clock.monotonic() - started)
        for node_id, message in result.assignments:
            self.fleet.send(node_id, message)
        return result.next_wakeup

    async def _schedule_loop(self) -> None:
        core = self.core
        while True:
            core.wake_event.clear()
            try:
                wakeup = await self.schedule_once()
            except Error as exc:  # e.g. the disk is full: nothing was changed, try again
                log.warning("scheduling pass failed; retrying", extra={"error": str(exc)})
                wakeup = None
            idle_until = core.clock.now() + MAX_SCHEDULE_IDLE
            await clock_wait(core.wake_event, min(wakeup or idle_until, idle_until), clock=core.clock)

    async def _reap_loop(self) -> None:
        interval = max(self.heartbeat_interval / 2, MIN_REAP_INTERVAL)
        while True:
            try:
                await self.liveness.reap()
                await self.drains.enforce()
            except Error as exc:
                log.warning("node liveness or drain check failed; retrying", extra={"error": str(exc)})
            await self.core.clock.sleep(interval)

    async def shutdown(self) -> None:
        """Stop the loops and close the store; safe to call twice."""
        await super().shutdown()
        if self._closed:
            return
        self._closed = True
        # Closed here, while the store is open: a stream handler that ends later finds its
        # session already gone and leaves the (then closed) store alone.
        for session in list(self.fleet.sessions.values()):
            await self.registration.close_session(session)
        await self.core.store.close()
