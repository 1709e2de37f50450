"""Prometheus metrics of the control plane: counters fed by the committed-event bus, the
scheduler's pass metrics, and fleet gauges computed at scrape time (`controlplane.fleet_metrics`)."""

from __future__ import annotations

import asyncio
import logging

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from agentflow.usage import ResourceUsage
from agentflow.vocabulary import EventType, RunStatus, StepStatus
from controlplane.engine import Engine, SubscriberLagged
from controlplane.engine.budgets import THRESHOLDS
from controlplane.errors import Error
from controlplane.fleet_metrics import REFRESH_INTERVAL, FleetCollector, FleetFigures, SchedulerMetrics
from controlplane.store import EventRecord

log = logging.getLogger(__name__)
EVENTS_AT_ONCE = 1024  # events observed per wake-up of the metrics follower, at most

RUN_STATUS_OF = {
    EventType.WORKFLOW_COMPLETED: RunStatus.SUCCEEDED,
    EventType.WORKFLOW_FAILED: RunStatus.FAILED,
    EventType.WORKFLOW_CANCELLED: RunStatus.CANCELLED,
}
DURATION_BUCKETS = (0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 51.2, 102.4, 300, 900, 3600)


def threshold_label(fraction: float) -> str:
    """A budget threshold as its label value: "0.5", "0.8", "1"."""
    return f"{fraction:g}"


class ControlPlaneMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.workflow_executions = Counter(
            "agentflow_workflow_executions_total",
            "Workflow executions that finished, by outcome",
            ["workflow", "status"],
            registry=registry,
        )
        self.workflow_duration = Histogram(
            "agentflow_workflow_execution_duration_seconds",
            "Workflow execution duration in seconds",
            ["workflow"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.agent_executions = Counter(
            "agentflow_agent_executions_total",
            "Agent (step) attempts that finished, by outcome",
            ["workflow", "agent", "status"],
            registry=registry,
        )
        self.workflows_started = Counter(
            "agentflow_workflow_starts_total", "Runs started or retried", ["workflow"], registry=registry
        )
        self.limit_hits = Counter(
            "agentflow_resource_limit_hits_total",
            "Limits step attempts ran into (memory, wall time, output, fetch size, host calls)",
            ["workflow", "limit"],
            registry=registry,
        )
        self.resource_usage = Gauge(
            "agentflow_agent_resource_usage",
            "What the last finished attempt of an agent used: cpu_seconds, peak_memory_bytes, wall_seconds, "
            "fetched_bytes, host_calls",
            ["workflow", "agent", "resource"],
            registry=registry,
        )
        self.node_events = Counter("agentflow_node_events_total", "Node lifecycle events", ["event"], registry=registry)
        self.connected_nodes = Gauge("agentflow_nodes_connected", "Nodes with a live stream", registry=registry)
        self.cost_thresholds = Counter(
            "agentflow_cost_thresholds_met_total",
            "Runs whose LLM spend crossed a fraction (threshold 0.5, 0.8, 1) of their budget",
            ["workflow", "threshold"],
            registry=registry,
        )
        self._changed = asyncio.Event()  # something the fleet figures show may have changed
        self.scheduler = SchedulerMetrics(registry, changed=self._changed)
        self.fleet = FleetCollector()
        registry.register(self.fleet)

    def observe(self, event: EventRecord) -> None:
        workflow = str(event.data.get("workflow", ""))
        match event.type:
            case EventType.WORKFLOW_STARTED:
                self.workflows_started.labels(workflow).inc()
                # Series present at 0 before their first increment, so that increase() counts it.
                for outcome in RUN_STATUS_OF.values():
                    self.workflow_executions.labels(workflow, outcome)
                for fraction in THRESHOLDS:
                    self.cost_thresholds.labels(workflow, threshold_label(fraction))
            case EventType.WORKFLOW_COMPLETED | EventType.WORKFLOW_FAILED | EventType.WORKFLOW_CANCELLED:
                self.workflow_executions.labels(workflow, RUN_STATUS_OF[event.type]).inc()
                if "duration_s" in event.data:
                    self.workflow_duration.labels(workflow).observe(float(event.data["duration_s"]))
            case EventType.AGENT_COMPLETED:
                self.agent_executions.labels(workflow, event.step, StepStatus.SUCCEEDED).inc()
                self._usage(workflow, event)
            case EventType.AGENT_FAILED:
                self.agent_executions.labels(workflow, event.step, StepStatus.FAILED).inc()
                self._usage(workflow, event)
            case EventType.RESOURCE_LIMIT_HIT:
                self.limit_hits.labels(workflow, str(event.data.get("limit", ""))).inc()
            case EventType.COST_THRESHOLD_MET:
                crossed = event.data.get("fraction")
                if isinstance(crossed, int | float):
                    self.cost_thresholds.labels(workflow, threshold_label(crossed)).inc()
            case node_event if node_event.about_a_node:
                self.node_events.labels(event.type).inc()

    def _usage(self, workflow: str, event: EventRecord) -> None:
        usage = event.data.get("usage")
        if not isinstance(usage, dict):
            return  # a failure the node never ran (or recorded before usage was)
        for resource, value in ResourceUsage.from_dict(usage).figures().items():
            self.resource_usage.labels(workflow, event.step, resource).set(value)

    async def follow(self, engine: Engine) -> None:
        """Feed the metrics from `engine` until cancelled: its committed events, its scheduling
        passes, and (read at scrape time) its fleet."""
        self.fleet.bind(engine.fleet, engine.core.clock)
        engine.scheduler_observer = self.scheduler
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._follow_events(engine), name="metrics-events")
                group.create_task(self._refresh_loop(engine), name="metrics-fleet")
        finally:
            engine.scheduler_observer = None
            self.fleet.unbind()

    async def refresh(self, engine: Engine) -> None:
        """Read what the fleet gauges show from the store (node records, placed steps, the queue)."""
        self.fleet.figures = await FleetFigures.load(engine.core.store.read, now=engine.core.clock.now())

    async def _follow_events(self, engine: Engine) -> None:
        with engine.core.bus.subscribe() as sub:
            while True:
                try:
                    event = await sub.get()
                except SubscriberLagged:
                    self._changed.set()
                    continue
                for each in (event, *sub.waiting(EVENTS_AT_ONCE)):  # one wake-up for what waits
                    self.observe(each)
                self.connected_nodes.set(len(engine.fleet.sessions))
                self._changed.set()

    async def _refresh_loop(self, engine: Engine) -> None:
        """Refresh after changes, at most once per REFRESH_INTERVAL (scrapes never wait on it)."""
        self._changed.set()
        while True:
            await self._changed.wait()
            self._changed.clear()
            try:
                await self.refresh(engine)
            except Error as exc:  # e.g. the store is busy or failing: keep the last figures
                log.warning("cannot refresh the fleet metrics", extra={"error": str(exc)})
            await engine.core.clock.sleep(REFRESH_INTERVAL)
