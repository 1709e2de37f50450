"""The engine: run, node and scheduling services over one store, with their background loops."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from datetime import timedelta
from pathlib import Path

from agentflow.vocabulary import StepStatus
from controlplane.clock import Clock, SystemClock
from controlplane.engine.bus import EventBus
from controlplane.engine.core import Core
from controlplane.engine.nodes import NodeService
from controlplane.engine.placement import schedule_pass
from controlplane.engine.runs import RunService
from controlplane.store import ModuleBlobs, StateStore

log = logging.getLogger(__name__)

# Upper bound on the time between scheduling passes even when nothing woke the scheduler.
MAX_SCHEDULE_IDLE = timedelta(seconds=1)


class Engine:
    """Owns the state and its loops. `async with Engine.open(...)`, then `await run()`."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.runs = RunService(core)
        self.nodes = NodeService(core)
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()

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
        core = Core(
            store=store,
            blobs=ModuleBlobs(data_dir / "modules", max_bytes=max_module_bytes),
            bus=EventBus(),
            clock=clock or SystemClock(),
            rng=rng or random.Random(),
            heartbeat_interval=heartbeat_interval,
            node_ttl=node_ttl,
        )
        engine = cls(core)
        await engine.nodes.load()
        return engine

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._schedule_loop(), name="scheduler"),
            asyncio.create_task(self._reap_loop(), name="node-reaper"),
        ]
        self.core.wake()

    async def schedule_once(self) -> timedelta | None:
        """One pass; answers how long until a backoff expires (None: nothing waits on time)."""
        core = self.core
        if not await core.store.read.has_steps_with_status(StepStatus.READY):
            return None  # nothing to place: no write transaction
        now = core.clock.now()
        async with core.tx() as tx:
            result = await schedule_pass(tx, nodes=await tx.nodes(), live_status=core.live_status(), now=now)
        for node_id, message in result.assignments:
            core.send(node_id, message)
        if result.next_wakeup is None:
            return None
        return max(result.next_wakeup - now, timedelta(0))

    async def _schedule_loop(self) -> None:
        core = self.core
        while not self._stopping.is_set():
            core.wake_event.clear()
            try:
                wait = await self.schedule_once()
            except Exception:
                log.exception("scheduling pass failed; retrying")
                wait = MAX_SCHEDULE_IDLE
            timeout = min(wait or MAX_SCHEDULE_IDLE, MAX_SCHEDULE_IDLE).total_seconds()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await core.wake_event.wait()

    async def _reap_loop(self) -> None:
        interval = max(self.core.heartbeat_interval.total_seconds() / 2, 0.05)
        while not self._stopping.is_set():
            try:
                await self.nodes.reap()
                await self.nodes.enforce_drains()
            except Exception:
                log.exception("node liveness or drain check failed; retrying")
            await asyncio.sleep(interval)

    async def shutdown(self) -> None:
        """Stop the loops and close the store; safe to call twice."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        # Closed here, while the store is open: a stream handler that ends later finds its
        # session already gone and leaves the (then closed) store alone.
        for session in list(self.core.sessions.values()):
            await self.nodes.close_session(session)
        await self.core.store.close()
