"""Prometheus metrics of a node."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from agentflow.vocabulary import StepOutcome
from noded.sandbox import ExecResult

STEP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


class NodeMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.steps = Counter(
            "agentflow_node_step_executions_total",
            "Step attempts this node finished, by outcome",
            ["workflow", "status", "kind"],
            registry=registry,
        )
        self.step_duration = Histogram(
            "agentflow_node_step_duration_seconds",
            "Wall time of step attempts in the sandbox",
            ["workflow"],
            buckets=STEP_BUCKETS,
            registry=registry,
        )
        self.denied_host_calls = Counter(
            "agentflow_host_calls_denied_total",
            "Host calls refused because the step lacked the capability",
            ["workflow"],
            registry=registry,
        )
        self.running = Gauge("agentflow_node_running_steps", "Step attempts running now", registry=registry)
        self.outbox_errors = Counter(
            "agentflow_node_outbox_errors_total", "Results that could not be written to the outbox", registry=registry
        )
        self.draining = Gauge(
            "agentflow_node_draining", "1 while the control plane places no new steps here", registry=registry
        )
        self.connected = Gauge(
            "agentflow_node_connected", "1 while the stream to the control plane is up", registry=registry
        )

    def observe(self, result: ExecResult, *, workflow: str) -> None:
        status = StepOutcome.SUCCEEDED if result.failure_kind is None else StepOutcome.FAILED
        self.steps.labels(workflow, status, result.failure_kind or "").inc()
        self.step_duration.labels(workflow).observe(result.duration_s)
        if result.denied_host_calls:
            self.denied_host_calls.labels(workflow).inc(result.denied_host_calls)
