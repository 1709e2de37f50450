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
from controlplane.engine.placement import PassResult, PlacementNodes, schedule_pass
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
        self._placement_nodes = PlacementNodes()
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
            Core(store=store, bus=EventBus(), clock=clock or SystemClock(), store_id=store.read.store_id()),
            blobs=ModuleBlobs(data_dir / "modules", max_bytes=max_module_bytes),
            rng=rng or random.Random(),
            heartbeat_interval=heartbeat_interval,
            node_ttl=node_ttl,
        )
        await engine.registration.load()
        await engine.tokens.load()
        return engine

    async def _serve(self) -> None:
        self.core.store.set_committer(self.core.request_commit)
        try:
            async with asyncio.TaskGroup() as group:
                loops = [
                    group.create_task(self._turn_loop(), name="scheduler"),
                    group.create_task(self._reap_loop(), name="node-reaper"),
                ]
                self.core.wake()
                await self.stopping.wait()
                for loop in loops:
                    loop.cancel()
        finally:
            self.core.store.set_committer(None)  # what comes after commits on its own

    async def schedule_once(self) -> datetime | None:
        """One pass, committed with every transaction that waits; answers when the next backoff
        expires (None: nothing waits on time)."""
        return await self._turn(place=True)

    async def _turn(self, *, place: bool) -> datetime | None:
        """A scheduling pass (when `place`) added to the group of transactions waiting to be
        committed, one commit for all of them, then the assignments go out: a result and the
        placement of the steps it made ready cost one fsync, and nothing is sent before it."""
        core = self.core
        core.turn_event.clear()
        result: PassResult | None = None
        if place:
            core.wake_event.clear()
            started = core.clock.monotonic()
            try:
                async with core.tx(wait=False) as tx:
                    if tx.has_steps_with_status(StepStatus.READY):
                        result = schedule_pass(
                            tx, nodes=self._placement_nodes, live_status=self.fleet.live_status(), now=core.clock.now()
                        )
            except Error as exc:  # rolled back alone; the others of the group still commit
                log.warning("scheduling pass failed; retrying", extra={"error": str(exc)})
            if result is not None and self.scheduler_observer is not None:
                self.scheduler_observer.on_pass(
                    placed=len(result.assignments), seconds=core.clock.monotonic() - started
                )
        await core.store.commit()
        if result is None:
            return None
        for node_id, message in result.assignments:
            self.fleet.send(node_id, message)
        return result.next_wakeup

    async def _turn_loop(self) -> None:
        core = self.core
        next_pass = core.clock.now()
        while True:
            place = core.wake_event.is_set() or core.clock.now() >= next_pass
            try:
                wakeup = await self._turn(place=place)
            except Error as exc:  # e.g. the disk is full: nothing was changed, try again
                log.warning("commit failed; retrying", extra={"error": str(exc)})
                wakeup = None
            if place:
                idle_until = core.clock.now() + MAX_SCHEDULE_IDLE
                next_pass = min(wakeup or idle_until, idle_until)
            await clock_wait(core.turn_event, next_pass, clock=core.clock)

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
