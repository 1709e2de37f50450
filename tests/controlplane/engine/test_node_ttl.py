"""Liveness: a node silent past its TTL goes down and its steps move on; only READY nodes get work.

Time is a manual clock: the reaper runs when the test advances it, and nodes heartbeat when the
test says so.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sample_workflows import ONE_STEP
from waiting import eventually

from agentflow.clock import ManualClock
from agentflow.v1 import types_pb2

pytestmark = pytest.mark.component

HEARTBEAT_S = 1.0
TTL = timedelta(seconds=5)

THREE_PARALLEL = """
apiVersion: agentflow/v1
kind: Workflow
name: three
version: "1"
agents:
  - {name: s1, module: ./echo.wasm}
  - {name: s2, module: ./echo.wasm}
  - {name: s3, module: ./echo.wasm}
"""


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def cp(control_plane, clock):
    return await control_plane(heartbeat_interval=HEARTBEAT_S, node_ttl=TTL.total_seconds(), clock=clock)


async def advance(clock: ManualClock, delta: timedelta) -> None:
    """Move time on once the engine's loops wait on the clock (the reaper and the scheduler)."""
    await clock.wait_for_sleepers(2)
    await clock.advance(delta)


async def test_silent_node_goes_down_and_its_step_moves_to_another_node(cp, clock, echo_wasm) -> None:
    a = await cp.node("a").join()
    await cp.push(echo_wasm)
    run_id = await cp.submit(ONE_STEP)
    a1 = await a.assignment()
    await a.started(a1)
    b = await cp.node("b").join()

    # a keeps its stream open but stops heartbeating; b heartbeats within its TTL
    await advance(clock, TTL * 0.6)
    await b.heartbeat_seen(clock)
    assert (await cp.list_nodes())["a"].status == types_pb2.NODE_STATUS_READY  # 3 s silent: not yet
    await advance(clock, TTL * 0.6)  # a: 6 s silent, b: 3 s
    b2 = await b.assignment()
    assert (b2.run_id, b2.step, b2.attempt) == (run_id, "only", 2)
    nodes = await cp.list_nodes()
    assert nodes["a"].status == types_pb2.NODE_STATUS_DOWN
    assert nodes["a"].running == 0
    assert nodes["b"].status == types_pb2.NODE_STATUS_READY
    assert nodes["b"].running == 1
    step = await cp.step(run_id, "only")
    assert (step.status, step.attempt, step.node) == (types_pb2.STEP_STATUS_ASSIGNED, 2, "b")
    # the control plane closed the down node's stream
    async with asyncio.timeout(5):
        await a.stream_ended.wait()

    assert (await b.finish(b2, {"on": "b"})).stale is False
    await cp.wait_run(run_id, types_pb2.RUN_STATUS_SUCCEEDED)
    assert [m.assign.attempt for m in a.received if m.WhichOneof("kind") == "assign"] == [1]


async def test_heartbeating_node_stays_ready_past_the_ttl(cp, clock, echo_wasm) -> None:
    a = await cp.node("a").join()
    await cp.push(echo_wasm)
    run_id = await cp.submit(ONE_STEP)
    a1 = await a.assignment()
    for _ in range(6):  # 6 x 4 s = almost five TTLs, with a heartbeat every 4 s
        await advance(clock, TTL * 0.8)
        await a.heartbeat_seen(clock)
    await a.quiet("assign", 0)
    assert (await cp.list_nodes())["a"].status == types_pb2.NODE_STATUS_READY
    assert (await a.finish(a1, None)).stale is False
    await cp.wait_run(run_id, types_pb2.RUN_STATUS_SUCCEEDED)


async def test_steps_never_go_to_down_or_disconnected_nodes(cp, clock, echo_wasm) -> None:
    await cp.push(echo_wasm)
    # registered, never connected: disconnected, then down once its TTL passes
    never = cp.node("big-never-connected", slots=64)
    await never.register()
    # connected, then its stream dropped: disconnected, then down
    dropped = await cp.node("big-dropped", slots=64).join()
    await dropped.drop()
    await dropped.wait_status(types_pb2.NODE_STATUS_DISCONNECTED)

    run_id = await cp.submit(THREE_PARALLEL)

    async def all_blocked() -> bool:
        steps = (await cp.get_run(run_id)).steps
        assert {s.status for s in steps} == {types_pb2.STEP_STATUS_READY}
        return all(s.error.startswith("waiting: no ready nodes (") for s in steps)

    await cp.eventually(all_blocked, what="steps blocked for want of ready nodes")
    await advance(clock, TTL * 1.2)
    await never.wait_status(types_pb2.NODE_STATUS_DOWN)
    await dropped.wait_status(types_pb2.NODE_STATUS_DOWN)

    # the only READY node has one slot: the steps go there one at a time, never elsewhere
    small = await cp.node("small", slots=1).join()
    for _ in range(3):
        assignment = await small.assignment()
        waiting = [s for s in (await cp.get_run(run_id)).steps if s.status == types_pb2.STEP_STATUS_READY]
        for s in waiting:
            assert s.error == "waiting: waiting for capacity: all matching nodes are full"
        await small.quiet("assign", 0.1)
        await small.finish(assignment, {"step": assignment.step})

    run = await cp.wait_run(run_id, types_pb2.RUN_STATUS_SUCCEEDED)
    assert {s.node for s in run.steps} == {"small"}
    assert {s.attempt for s in run.steps} == {1}
    nodes = await cp.list_nodes()
    assert nodes["big-never-connected"].status == types_pb2.NODE_STATUS_DOWN
    assert nodes["big-dropped"].status == types_pb2.NODE_STATUS_DOWN


async def test_heartbeats_renew_the_lease_in_memory_and_reach_the_store_once_per_ttl(cp, clock) -> None:
    a = await cp.node("a").join()
    stored = cp.engine.core.store.read

    def written() -> datetime | None:
        record = stored.node(a.node_id)
        assert record is not None
        return record.last_heartbeat

    connected = written()
    for _ in range(3):  # three beats within one TTL: shown at once, not written
        await advance(clock, TTL * 0.3)
        await a.heartbeat_seen(clock)
        assert written() == connected
    shown = (await cp.list_nodes())["a"].last_heartbeat.ToDatetime(tzinfo=UTC)
    assert shown == clock.now()
    await advance(clock, TTL * 0.3)  # 1.2 TTL after the last write: this beat is written
    await a.heartbeat_seen(clock)
    await eventually(lambda: written() == clock.now(), what="the heartbeat written to the store")
    assert (await cp.list_nodes())["a"].status == types_pb2.NODE_STATUS_READY
