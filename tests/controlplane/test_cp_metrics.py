"""The control plane's metrics: fleet gauges computed at scrape time from the engine's liveness
and the figures the follower reads after changes, the scheduler's pass metrics, budget
thresholds, and an exposition that `promtool check metrics` finds clean."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry
from prometheus_support import exposition, lint
from sample_workflows import ONE_STEP
from waiting import eventually

from agentflow.clock import ManualClock
from agentflow.usage import ResourceUsage
from agentflow.v1 import types_pb2
from agentflow.vocabulary import EventType, NodeStatus, ResourceLimit
from controlplane.metrics import ControlPlaneMetrics
from controlplane.store import EventRecord

pytestmark = pytest.mark.component

GiB = 1 << 30
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def event(seq: int, kind: EventType, **fields: object) -> EventRecord:
    return EventRecord(seq=seq, type=kind, time=NOW, **fields)  # type: ignore[arg-type]


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> ControlPlaneMetrics:
    return ControlPlaneMetrics(registry)


@pytest.fixture
async def following(cp, metrics: ControlPlaneMetrics) -> AsyncIterator[ControlPlaneMetrics]:
    """The metrics following `cp`'s engine, as the daemon's MetricsFollower runs them."""
    task = asyncio.create_task(metrics.follow(cp.engine), name="metrics")
    try:
        yield metrics
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert cp.engine.scheduler_observer is None


@pytest.fixture
async def cp(control_plane):
    """A control plane whose scheduler passes the test drives (`engine.schedule_once()`)."""
    return await control_plane(start=False)


async def test_fleet_gauges_follow_nodes_placements_and_passes(cp, following, registry, echo_wasm) -> None:
    node = await cp.node("alpha", slots=4, cpu_millis=4000, memory_bytes=8 * GiB).join()
    await cp.push(echo_wasm)
    await cp.submit(ONE_STEP)
    await cp.engine.schedule_once()
    await node.assignment()

    def placed() -> bool:
        return sample(registry, "agentflow_cluster_node_running_steps", node="alpha") == 1

    await eventually(placed, what="the placed step in the node's gauges")
    assert sample(registry, "agentflow_cluster_node_capacity", node="alpha", resource="slots") == 4
    assert sample(registry, "agentflow_cluster_node_capacity", node="alpha", resource="cpu_millis") == 4000
    assert sample(registry, "agentflow_cluster_node_capacity", node="alpha", resource="memory_bytes") == 8 * GiB
    assert sample(registry, "agentflow_cluster_node_free", node="alpha", resource="slots") == 3
    free_cpu = sample(registry, "agentflow_cluster_node_free", node="alpha", resource="cpu_millis")
    assert free_cpu is not None and 0 <= free_cpu < 4000
    statuses = {s: sample(registry, "agentflow_cluster_node_status", node="alpha", status=s) for s in NodeStatus}
    assert statuses == {s: 1.0 if s is NodeStatus.READY else 0.0 for s in NodeStatus}
    assert sample(registry, "agentflow_cluster_node_info", node="alpha", isolation="none", version="test") == 1
    assert sample(registry, "agentflow_scheduler_placed_steps_total") == 1
    assert sample(registry, "agentflow_scheduler_pass_duration_seconds_count") == 1
    assert sample(registry, "agentflow_scheduler_ready_steps") == 0

    await node.drop()

    def disconnected() -> bool:
        return sample(registry, "agentflow_cluster_node_status", node="alpha", status="disconnected") == 1

    await eventually(disconnected, what="the node's status gauge to say disconnected")
    assert sample(registry, "agentflow_cluster_node_status", node="alpha", status="ready") == 0


async def test_queue_gauges_count_ready_steps_no_node_can_take(cp, metrics, registry, echo_wasm) -> None:
    metrics.fleet.bind(cp.engine.fleet, cp.engine.core.clock)
    cp.engine.scheduler_observer = metrics.scheduler
    await cp.push(echo_wasm)
    await cp.submit(ONE_STEP)
    await cp.submit(ONE_STEP)
    await cp.engine.schedule_once()  # no node: both stay ready, blocked
    await metrics.refresh(cp.engine)
    assert sample(registry, "agentflow_scheduler_ready_steps") == 2
    assert sample(registry, "agentflow_scheduler_blocked_steps") == 2
    assert sample(registry, "agentflow_scheduler_placed_steps_total") == 0

    await cp.node("alpha").join()
    await cp.engine.schedule_once()
    await metrics.refresh(cp.engine)
    assert sample(registry, "agentflow_scheduler_ready_steps") == 0
    assert sample(registry, "agentflow_scheduler_blocked_steps") == 0
    assert sample(registry, "agentflow_scheduler_placed_steps_total") == 2
    assert sample(registry, "agentflow_cluster_node_running_steps", node="alpha") == 2


async def test_heartbeat_age_is_read_when_scraped(control_plane, metrics, registry) -> None:
    clock = ManualClock()
    cp = await control_plane(start=False, clock=clock)
    node = await cp.node("alpha").join()
    metrics.fleet.bind(cp.engine.fleet, clock)
    await metrics.refresh(cp.engine)
    assert sample(registry, "agentflow_cluster_node_heartbeat_age_seconds", node="alpha") == 0

    await clock.advance(timedelta(seconds=7))  # no refresh in between: read from the fleet
    assert sample(registry, "agentflow_cluster_node_heartbeat_age_seconds", node="alpha") == 7

    await node.heartbeat_seen(clock)
    assert sample(registry, "agentflow_cluster_node_heartbeat_age_seconds", node="alpha") == 0


def test_unbound_fleet_gauges_have_no_samples(metrics, registry) -> None:
    assert sample(registry, "agentflow_scheduler_ready_steps") is None
    assert "# TYPE agentflow_cluster_node_status gauge" in exposition(registry)


def test_a_started_workflow_has_its_outcome_series_at_zero(metrics, registry) -> None:
    assert sample(registry, "agentflow_workflow_executions_total", workflow="digest", status="succeeded") is None
    metrics.observe(event(1, EventType.WORKFLOW_STARTED, run_id="r-1", data={"workflow": "digest"}))
    outcomes = {s: sample(registry, "agentflow_workflow_executions_total", workflow="digest", status=s)
                for s in ("succeeded", "failed", "cancelled")}  # fmt: skip
    assert outcomes == {"succeeded": 0, "failed": 0, "cancelled": 0}  # so increase() counts the first run
    metrics.observe(event(2, EventType.WORKFLOW_COMPLETED, run_id="r-1", data={"workflow": "digest"}))
    assert sample(registry, "agentflow_workflow_executions_total", workflow="digest", status="succeeded") == 1


def test_budget_thresholds_are_counted_per_workflow_and_fraction(metrics, registry) -> None:
    metrics.observe(event(1, EventType.WORKFLOW_STARTED, run_id="r-1", data={"workflow": "digest"}))
    zeros = {t: sample(registry, "agentflow_cost_thresholds_met_total", workflow="digest", threshold=t)
             for t in ("0.5", "0.8", "1")}  # fmt: skip
    assert zeros == {"0.5": 0, "0.8": 0, "1": 0}  # present before the first crossing, for increase()

    for seq, fraction in enumerate((0.5, 0.8, 1.0), start=2):
        crossed = {"workflow": "digest", "fraction": fraction}
        metrics.observe(event(seq, EventType.COST_THRESHOLD_MET, run_id="r-1", data=crossed))
    metrics.observe(event(5, EventType.COST_THRESHOLD_MET, run_id="r-2", data={"workflow": "digest", "fraction": 0.5}))
    assert sample(registry, "agentflow_cost_thresholds_met_total", workflow="digest", threshold="0.5") == 2
    assert sample(registry, "agentflow_cost_thresholds_met_total", workflow="digest", threshold="0.8") == 1
    assert sample(registry, "agentflow_cost_thresholds_met_total", workflow="digest", threshold="1") == 1


async def test_exposition_passes_promtool_and_names_no_run(cp, metrics, registry, echo_wasm) -> None:
    run_id = "digest-0123456789"
    usage = ResourceUsage(cpu_seconds=0.5, peak_memory_bytes=1 << 20, wall_seconds=0.7).to_dict()
    for seq, (kind, data) in enumerate(
        [
            (EventType.WORKFLOW_STARTED, {}),
            (EventType.AGENT_COMPLETED, {"usage": usage, "duration_s": 0.7}),
            (EventType.AGENT_FAILED, {"usage": usage}),
            (EventType.RESOURCE_LIMIT_HIT, {"limit": ResourceLimit.MEMORY}),
            (EventType.COST_THRESHOLD_MET, {"fraction": 0.8}),
            (EventType.WORKFLOW_COMPLETED, {"duration_s": 2.5}),
            (EventType.WORKFLOW_FAILED, {"duration_s": 1.5}),
            (EventType.WORKFLOW_CANCELLED, {}),
            (EventType.NODE_READY, {}),
        ],
        start=1,
    ):
        metrics.observe(event(seq, kind, run_id=run_id, step="fetch", data={"workflow": "digest", **data}))
    cp.engine.scheduler_observer = metrics.scheduler
    metrics.fleet.bind(cp.engine.fleet, cp.engine.core.clock)
    await cp.node("alpha").join()
    await cp.push(echo_wasm)
    await cp.submit(ONE_STEP)
    await cp.engine.schedule_once()
    await metrics.refresh(cp.engine)
    assert (await cp.list_nodes())["alpha"].status == types_pb2.NODE_STATUS_READY

    text = exposition(registry)
    for name in ("agentflow_cluster_node_status{", "agentflow_cluster_node_heartbeat_age_seconds{",
                 "agentflow_scheduler_ready_steps ", "agentflow_cost_thresholds_met_total{",
                 "agentflow_scheduler_pass_duration_seconds_bucket{"):  # fmt: skip
        assert name in text, name
    result = lint(registry)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", ""), result.stdout + result.stderr
    assert run_id not in text
