"""The node's metrics: capacity and isolation as registered, worker counts read at scrape time,
the age of the last heartbeat the link wrote, and an exposition `promtool check metrics` accepts."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta

import grpc
import pytest
from fake_gateway import FakeGateway, FakeHandlers, serve_gateway
from prometheus_client import CollectorRegistry, Gauge
from prometheus_support import lint
from waiting import eventually

from agentflow.clock import ManualClock
from agentflow.vocabulary import FailureKind, Isolation
from noded.link import ControlPlaneLink
from noded.messages import Capacity, Registration
from noded.metrics import NodeMetrics
from noded.sandbox import ExecResult
from noded.state import MemoryNodeState

pytestmark = [pytest.mark.component, pytest.mark.timeout(30)]

CAPACITY = Capacity(cpu_millis=2000, memory_bytes=1 << 30, slots=4)


@dataclass
class Pool:
    idle_count: int = 0
    busy_count: int = 0
    queued_count: int = 0


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def described(registry: CollectorRegistry, *, clock: ManualClock | None = None) -> NodeMetrics:
    metrics = NodeMetrics(registry, clock=clock)
    metrics.describe(name="alpha", capacity=CAPACITY, isolation=Isolation.CGROUP2, version="1.2.3")
    return metrics


def test_capacity_and_isolation_as_registered() -> None:
    registry = CollectorRegistry()
    described(registry)
    assert value(registry, "agentflow_node_capacity", resource="cpu_millis") == 2000
    assert value(registry, "agentflow_node_capacity", resource="memory_bytes") == 1 << 30
    assert value(registry, "agentflow_node_capacity", resource="slots") == 4
    assert value(registry, "agentflow_node_info", node="alpha", isolation="cgroup2", version="1.2.3") == 1


def test_worker_counts_are_read_when_scraped() -> None:
    registry = CollectorRegistry()
    pool = Pool(idle_count=2)
    described(registry).watch_workers(pool)
    assert value(registry, "agentflow_node_warm_workers") == 2
    assert value(registry, "agentflow_node_busy_workers") == 0
    pool.idle_count, pool.busy_count, pool.queued_count = 0, 4, 3
    assert value(registry, "agentflow_node_warm_workers") == 0
    assert value(registry, "agentflow_node_busy_workers") == 4
    assert value(registry, "agentflow_node_queued_steps") == 3


def test_heartbeat_age_counts_from_start_until_the_first_heartbeat() -> None:
    registry, clock = CollectorRegistry(), ManualClock()
    metrics = described(registry, clock=clock)
    clock.tick(timedelta(seconds=5))
    assert value(registry, "agentflow_node_heartbeat_age_seconds") == 5
    metrics.heartbeat_sent()
    assert value(registry, "agentflow_node_heartbeat_age_seconds") == 0
    clock.tick(timedelta(seconds=1.5))
    assert value(registry, "agentflow_node_heartbeat_age_seconds") == 1.5


async def test_the_link_reports_each_heartbeat_it_writes() -> None:
    registry, clock = CollectorRegistry(), ManualClock()
    metrics = described(registry, clock=clock)
    clock.tick(timedelta(seconds=3))  # started 3 s ago, no heartbeat yet
    assert value(registry, "agentflow_node_heartbeat_age_seconds") == 3
    gateway = FakeGateway()
    server, address = await serve_gateway(gateway)
    channel = grpc.aio.insecure_channel(address)
    registration = Registration(name="alpha", node_id="", labels={}, capacity=CAPACITY, isolation=Isolation.NONE,
                                version="test")  # fmt: skip
    link = ControlPlaneLink(channel, registration=registration, state=MemoryNodeState(), handlers=FakeHandlers(),
                            clock=clock, rng=random.Random(7), on_heartbeat=metrics.heartbeat_sent)  # fmt: skip
    try:
        async with link:
            stream = await gateway.stream()
            await stream.expect("heartbeat")  # one at once on a new stream
            await eventually(lambda: value(registry, "agentflow_node_heartbeat_age_seconds") == 0,
                             what="the heartbeat to reset the age")  # fmt: skip
            await clock.advance(timedelta(milliseconds=600))  # the gateway asked for one a second
            assert value(registry, "agentflow_node_heartbeat_age_seconds") == pytest.approx(0.6)
    finally:
        await channel.close()
        await server.stop(0)


def test_exposition_passes_promtool_check_metrics() -> None:
    registry = CollectorRegistry()
    metrics = described(registry)
    metrics.watch_workers(Pool(idle_count=1, busy_count=1))
    ok = ExecResult(exit_code=0, trap=None, failure_kind=None, error="", output_json="{}", stderr="", duration_s=0.2)
    failed = ExecResult(exit_code=None, trap="unreachable", failure_kind=FailureKind.TRAP, error="trap",
                        output_json=None, stderr="", duration_s=0.1, denied_host_calls=2)  # fmt: skip
    metrics.observe(ok, workflow="digest")
    metrics.observe(failed, workflow="digest")
    metrics.running.set(1)
    metrics.outbox_errors.inc()
    metrics.heartbeat_sent()
    result = lint(registry)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", ""), result.stdout + result.stderr


def test_the_lint_rejects_what_it_should() -> None:
    """Not a rubber stamp: a camelCase name fails `promtool check metrics`."""
    registry = CollectorRegistry()
    Gauge("agentflow_nodeRunning", "camel case", registry=registry).set(1)
    result = lint(registry)
    assert result.returncode != 0 and "camelCase" in result.stdout + result.stderr
