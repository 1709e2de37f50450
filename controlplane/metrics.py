"""Prometheus metrics of the control plane, fed by the committed-event bus."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from agentflow.usage import ResourceUsage
from agentflow.vocabulary import EventType, RunStatus, StepStatus
from controlplane.engine import Engine, SubscriberLagged
from controlplane.store import EventRecord

RUN_STATUS_OF = {
    EventType.WORKFLOW_COMPLETED: RunStatus.SUCCEEDED,
    EventType.WORKFLOW_FAILED: RunStatus.FAILED,
    EventType.WORKFLOW_CANCELLED: RunStatus.CANCELLED,
}
DURATION_BUCKETS = (0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 51.2, 102.4, 300, 900, 3600)


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

    def observe(self, event: EventRecord) -> None:
        workflow = str(event.data.get("workflow", ""))
        match event.type:
            case EventType.WORKFLOW_STARTED:
                self.workflows_started.labels(workflow).inc()
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
            case node_event if node_event.about_a_node:
                self.node_events.labels(event.type).inc()

    def _usage(self, workflow: str, event: EventRecord) -> None:
        usage = event.data.get("usage")
        if not isinstance(usage, dict):
            return  # a failure the node never ran (or recorded before usage was)
        for resource, value in ResourceUsage.from_dict(usage).figures().items():
            self.resource_usage.labels(workflow, event.step, resource).set(value)

    async def follow(self, engine: Engine) -> None:
        """Consume every committed event until cancelled."""
        with engine.core.bus.subscribe() as sub:
            while True:
                try:
                    event = await sub.get()
                except SubscriberLagged:
                    continue
                self.observe(event)
                self.connected_nodes.set(len(engine.fleet.sessions))
