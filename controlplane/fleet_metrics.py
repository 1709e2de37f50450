"""Gauges of the fleet and the scheduler queue, computed when Prometheus scrapes, and the
scheduler's pass metrics.

A node's status and heartbeat age come from the engine's in-memory liveness at scrape time.
What lives in the store (node records, the resources held by placed steps, the ready queue) is
read by `FleetFigures.load`, which the metrics follower calls after committed events and
scheduling passes, at most once per `REFRESH_INTERVAL`: a scrape never reads the database.

Label values are node names, statuses and resource names: bounded by the fleet, never a run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from agentflow.clock import Clock
from agentflow.vocabulary import NodeStatus
from controlplane.domain import Resources, node_status
from controlplane.engine.fleet import Fleet
from controlplane.store import NodeRecord, Reader

REFRESH_INTERVAL = timedelta(seconds=1)
READY_COUNTED = 10_000
"""Ready steps counted at most: a longer queue shows as this many (the alert fires either way)."""
PASS_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
RESOURCES = ("cpu_millis", "memory_bytes", "slots")


def resource_figures(amount: Resources) -> dict[str, int]:
    """An amount of resources by the `resource` label values."""
    return {"cpu_millis": amount.cpu_millis, "memory_bytes": amount.memory_bytes, "slots": amount.slots}


@dataclass(frozen=True, slots=True, kw_only=True)
class FleetFigures:
    """What the store says about the nodes and the queue, as of one refresh."""

    nodes: tuple[NodeRecord, ...] = ()
    allocated: Mapping[str, Resources] = field(default_factory=dict)  # node id: held by placed steps
    ready: int = 0  # ready steps that may be placed now (not backing off), up to READY_COUNTED
    blocked: int = 0  # of those, the ones the last pass could not place (no node fits, budget)

    @classmethod
    async def load(cls, read: Reader, *, now: datetime) -> FleetFigures:
        allocations = read.allocations()
        ready, blocked = read.ready_counts(now=now, limit=READY_COUNTED)
        return cls(
            nodes=tuple(read.nodes()),
            allocated={node_id: held for node_id, (held, _) in allocations.items()},
            ready=ready,
            blocked=blocked,
        )


class FleetCollector(Collector):
    """The `agentflow_cluster_node_*` and `agentflow_scheduler_*` gauges; empty until bound."""

    def __init__(self) -> None:
        self.figures = FleetFigures()
        self._fleet: Fleet | None = None
        self._clock: Clock | None = None

    def bind(self, fleet: Fleet, clock: Clock) -> None:
        self._fleet, self._clock = fleet, clock

    def unbind(self) -> None:
        self._fleet = self._clock = None

    def describe(self) -> Iterator[Metric]:
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        families = self._families()
        status, age, capacity, free, running, info, ready, blocked = families
        fleet, clock, figures = self._fleet, self._clock, self.figures
        if fleet is None or clock is None:
            yield from families
            return
        now = clock.now()
        for node in figures.nodes:
            live = fleet.liveness.get(node.id)
            current = node_status(live.status if live else node.status, draining=node.draining)
            for each in NodeStatus:
                status.add_metric([node.name, each], 1.0 if each is current else 0.0)
            if live is not None:
                age.add_metric([node.name], max((now - live.last_seen).total_seconds(), 0.0))
            held = figures.allocated.get(node.id, Resources())
            offered = resource_figures(node.capacity)
            left = resource_figures(node.capacity - held)
            for resource in RESOURCES:
                capacity.add_metric([node.name, resource], offered[resource])
                free.add_metric([node.name, resource], max(left[resource], 0))
            running.add_metric([node.name], held.slots)
            info.add_metric([node.name, node.isolation, node.version], 1.0)
        ready.add_metric([], figures.ready)
        blocked.add_metric([], figures.blocked)
        yield from families

    @staticmethod
    def _families() -> list[GaugeMetricFamily]:
        return [
            GaugeMetricFamily(
                "agentflow_cluster_node_status",
                "1 for the status the control plane sees a node in (ready, disconnected, down, draining, "
                "stopping), 0 for the others",
                labels=["node", "status"],
            ),
            GaugeMetricFamily(
                "agentflow_cluster_node_heartbeat_age_seconds",
                "Seconds since the control plane last heard from a node (heartbeat, hello or registration)",
                labels=["node"],
            ),
            GaugeMetricFamily(
                "agentflow_cluster_node_capacity",
                "What a node offers to steps: cpu_millis, memory_bytes, slots",
                labels=["node", "resource"],
            ),
            GaugeMetricFamily(
                "agentflow_cluster_node_free",
                "What a node has left after the steps placed on it: cpu_millis, memory_bytes, slots",
                labels=["node", "resource"],
            ),
            GaugeMetricFamily(
                "agentflow_cluster_node_running_steps",
                "Step attempts placed on a node (assigned or running)",
                labels=["node"],
            ),
            GaugeMetricFamily(
                "agentflow_cluster_node_info",
                "1 per registered node, labelled with its isolation (cgroup2, cgroup1, none) and version",
                labels=["node", "isolation", "version"],
            ),
            GaugeMetricFamily(
                "agentflow_scheduler_ready_steps",
                f"Ready steps waiting for a node now, not counting those backing off (at most {READY_COUNTED})",
            ),
            GaugeMetricFamily(
                "agentflow_scheduler_blocked_steps",
                "Ready steps the scheduler could not place (no node fits, or the run's LLM budget is held)",
            ),
        ]


class SchedulerMetrics:
    """The engine's `SchedulerObserver`: how long passes take and how many steps they place."""

    def __init__(self, registry: CollectorRegistry, *, changed: asyncio.Event) -> None:
        self._changed = changed
        self.pass_duration = Histogram(
            "agentflow_scheduler_pass_duration_seconds",
            "Duration of scheduling passes that found ready steps (snapshot, plan and commit)",
            buckets=PASS_BUCKETS,
            registry=registry,
        )
        self.placed = Counter(
            "agentflow_scheduler_placed_steps_total", "Step attempts placed on nodes", registry=registry
        )

    def on_pass(self, *, placed: int, seconds: float) -> None:
        self.pass_duration.observe(seconds)
        self.placed.inc(placed)
        self._changed.set()  # the queue may have moved: refresh its figures
