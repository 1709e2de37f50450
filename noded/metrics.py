"""Prometheus metrics of a node."""

from __future__ import annotations

from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from agentflow.clock import Clock, SystemClock
from agentflow.vocabulary import Isolation, StepOutcome
from noded.messages import Capacity
from noded.sandbox import ExecResult

STEP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


class Workers(Protocol):
    """What the metrics read of the worker pool (at scrape time)."""

    @property
    def idle_count(self) -> int: ...
    @property
    def busy_count(self) -> int: ...
    @property
    def queued_count(self) -> int: ...


class NodeMetrics:
    def __init__(self, registry: CollectorRegistry, *, clock: Clock | None = None) -> None:
        self._clock = clock or SystemClock()
        self._last_heartbeat = self._clock.monotonic()  # until the first one: since start
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
        self.capacity = Gauge(
            "agentflow_node_capacity",
            "What this node offers to steps: cpu_millis, memory_bytes, slots",
            ["resource"],
            registry=registry,
        )
        self.info = Gauge(
            "agentflow_node_info",
            "1, labelled with the node's name, isolation (cgroup2, cgroup1, none) and version",
            ["node", "isolation", "version"],
            registry=registry,
        )
        self.warm_workers = Gauge(
            "agentflow_node_warm_workers", "Idle worker processes, started and ready to take a step", registry=registry
        )
        self.busy_workers = Gauge("agentflow_node_busy_workers", "Worker processes running a step", registry=registry)
        self.queued_steps = Gauge(
            "agentflow_node_queued_steps", "Step attempts waiting for a worker process", registry=registry
        )
        self.heartbeat_age = Gauge(
            "agentflow_node_heartbeat_age_seconds",
            "Seconds since this node last sent a heartbeat to the control plane (since start, before the first)",
            registry=registry,
        )
        self.heartbeat_age.set_function(lambda: max(self._clock.monotonic() - self._last_heartbeat, 0.0))

    def describe(self, *, name: str, capacity: Capacity, isolation: Isolation, version: str) -> None:
        """What the node registers with: its capacity and how it confines steps."""
        self.capacity.labels("cpu_millis").set(capacity.cpu_millis)
        self.capacity.labels("memory_bytes").set(capacity.memory_bytes)
        self.capacity.labels("slots").set(capacity.slots)
        self.info.labels(name, isolation, version).set(1)

    def watch_workers(self, workers: Workers) -> None:
        """Read the worker pool's counts whenever the metrics are scraped."""
        self.warm_workers.set_function(lambda: workers.idle_count)
        self.busy_workers.set_function(lambda: workers.busy_count)
        self.queued_steps.set_function(lambda: workers.queued_count)

    def heartbeat_sent(self) -> None:
        self._last_heartbeat = self._clock.monotonic()

    def observe(self, result: ExecResult, *, workflow: str) -> None:
        status = StepOutcome.SUCCEEDED if result.failure_kind is None else StepOutcome.FAILED
        self.steps.labels(workflow, status, result.failure_kind or "").inc()
        self.step_duration.labels(workflow).observe(result.duration_s)
        if result.denied_host_calls:
            self.denied_host_calls.labels(workflow).inc(result.denied_host_calls)
