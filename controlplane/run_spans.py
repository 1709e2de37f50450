"""Each run's `workflow.execute` span, recorded when the run ends.

The span's ids were handed out when the run (or its retry) began and are kept with the run, so
its steps' spans on the nodes could name it as their parent all along; recording it from the
store at the end makes it survive control-plane restarts in between.
"""

from __future__ import annotations

import asyncio
import logging

from agentflow.lifecycle import Component
from agentflow.telemetry.tracing import Tracing
from agentflow.vocabulary import EventType, RunStatus
from controlplane.engine import Engine, SubscriberLagged
from controlplane.store import EventRecord

log = logging.getLogger(__name__)

RUN_END_EVENTS = frozenset({EventType.WORKFLOW_COMPLETED, EventType.WORKFLOW_FAILED, EventType.WORKFLOW_CANCELLED})
WORKFLOW_SPAN = "workflow.execute"


class RunSpans(Component):
    def __init__(self, engine: Engine, tracing: Tracing) -> None:
        super().__init__()
        self._engine = engine
        self._tracing = tracing

    async def _serve(self) -> None:
        async with asyncio.TaskGroup() as group:
            follow = group.create_task(self._follow(), name="run-spans")
            await self.stopping.wait()
            follow.cancel()

    async def _follow(self) -> None:
        with self._engine.core.bus.subscribe() as sub:
            while True:
                try:
                    event = await sub.get()
                except SubscriberLagged:
                    log.warning("fell behind the event bus; some workflow.execute spans are not recorded")
                    continue
                if event.type in RUN_END_EVENTS:
                    await self.record(event)

    async def record(self, end: EventRecord) -> None:
        """Record the span of the run that `end` finished."""
        run = self._engine.core.store.read.run(end.run_id)
        if run is None or run.trace is None:
            return
        spec = self._engine.core.store.read.spec(run.workflow_id)
        self._tracing.record(
            WORKFLOW_SPAN,
            run.trace.span,
            parent=run.trace.parent,
            start=run.trace.started_at,
            end=end.time,
            attributes={
                "workflow.id": run.workflow_id,
                "workflow.name": run.workflow_name,
                "workflow.version": run.workflow_version,
                "workflow.run_id": run.id,
                "workflow.status": run.status.value,
                "workflow.agents": len(spec.agents),
                "llm.calls": run.llm.calls,
                "llm.cost_usd": run.llm.cost_usd,
            },
            error=(run.error or run.status.value) if run.status is not RunStatus.SUCCEEDED else "",
        )
