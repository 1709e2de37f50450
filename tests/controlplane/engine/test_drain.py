"""DrainNode/UndrainNode: a draining node keeps its steps, gets no new ones, and is told so."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from sample_workflows import ONE_STEP

from agentflow.clock import ManualClock
from agentflow.v1 import controlplane_pb2, node_pb2, types_pb2

pytestmark = pytest.mark.component


def node_events(data_dir, node: str) -> list[str]:
    with sqlite3.connect(data_dir / "state.db") as db:
        return [r[0] for r in db.execute("SELECT type FROM events WHERE node = ? ORDER BY seq", (node,))]


def attempt_rows(data_dir, run_id: str) -> list[tuple[int, str, str]]:
    with sqlite3.connect(data_dir / "state.db") as db:
        return list(
            db.execute("SELECT attempt, status, error FROM attempts WHERE run_id = ? ORDER BY attempt", (run_id,))
        )


async def drain(cp, name: str, deadline_s: float | None = None) -> types_pb2.Node:
    request = controlplane_pb2.DrainNodeRequest(name=name)
    if deadline_s is not None:
        request.deadline.FromTimedelta(timedelta(seconds=deadline_s))
    return await cp.admin.DrainNode(request, timeout=5)


async def undrain(cp, name: str) -> types_pb2.Node:
    return await cp.admin.UndrainNode(controlplane_pb2.UndrainNodeRequest(name=name), timeout=5)


async def test_a_draining_node_finishes_its_step_and_gets_no_new_ones(cp, echo_wasm) -> None:
    await cp.push(echo_wasm)
    a = await cp.node("a").join()
    first_run = await cp.submit(ONE_STEP)
    first = await a.assignment()
    await a.started(first)

    node = await drain(cp, "a")
    assert (node.status, node.draining, node.running) == (types_pb2.NODE_STATUS_DRAINING, True, 1)
    assert not node.HasField("drain_deadline")
    notice = await a.expect("drain")
    assert notice.draining and not notice.HasField("deadline")

    second_run = await cp.submit(ONE_STEP)

    async def blocked() -> bool:
        return (await cp.step(second_run, "only")).error == "waiting: no ready nodes (1 draining)"

    await cp.eventually(blocked, what="the new step blocked by the drain")
    await a.quiet("assign", 0.3)
    await a.quiet("cancel", 0)

    # the running step is not disturbed: its result lands as usual
    await a.result(first, output={"done": 1})
    assert (await a.ack(first)).stale is False
    await cp.wait_run(first_run, types_pb2.RUN_STATUS_SUCCEEDED)

    async def drained() -> bool:
        return "node.drained" in node_events(cp.data_dir, "a")

    await cp.eventually(drained, what="node.drained once nothing runs there")
    assert node_events(cp.data_dir, "a").count("node.drained") == 1
    assert (await cp.list_nodes())["a"].running == 0

    # another node takes the waiting step
    b = await cp.node("b").join()
    await b.finish(await b.assignment(), {"done": 2})
    await cp.wait_run(second_run, types_pb2.RUN_STATUS_SUCCEEDED)


async def test_undrain_lets_the_node_take_steps_again(cp, echo_wasm) -> None:
    await cp.push(echo_wasm)
    a = await cp.node("a").join()
    await drain(cp, "a")
    assert (await a.expect("drain")).draining
    run_id = await cp.submit(ONE_STEP)
    await a.quiet("assign", 0.3)

    node = await undrain(cp, "a")
    assert (node.status, node.draining) == (types_pb2.NODE_STATUS_READY, False)
    assert not (await a.expect("drain")).draining
    await a.finish(await a.assignment(), {"ok": True})
    await cp.wait_run(run_id, types_pb2.RUN_STATUS_SUCCEEDED)
    events = node_events(cp.data_dir, "a")
    assert events.index("node.draining") < events.index("node.undrained")

    # undraining a node that is not draining changes nothing and says nothing
    again = await undrain(cp, "a")
    assert again.status == types_pb2.NODE_STATUS_READY
    assert node_events(cp.data_dir, "a").count("node.undrained") == 1


async def test_past_the_deadline_running_steps_move_without_costing_an_attempt(control_plane, echo_wasm) -> None:
    clock = ManualClock()
    cp = await control_plane(clock=clock)
    await cp.push(echo_wasm)
    a = await cp.node("a").join()
    run_id = await cp.submit(ONE_STEP)  # retry: one attempt only
    first = await a.assignment()
    await a.started(first)
    b = await cp.node("b").join()

    node = await drain(cp, "a", deadline_s=30)
    assert node.HasField("drain_deadline")
    notice = await a.expect("drain")
    assert notice.deadline == node.drain_deadline

    await clock.wait_for_sleepers(2)  # the reaper and the scheduler
    await clock.advance(timedelta(seconds=29))
    await a.quiet("cancel", 0.2)  # not yet
    await clock.advance(timedelta(seconds=2))
    await a.cancel(first)
    moved = await b.assignment()
    assert (moved.step, moved.attempt) == ("only", 2)
    # the node answers the cancel; that result is for an attempt no longer current
    await a.result(first, outcome=types_pb2.STEP_OUTCOME_CANCELLED, error="cancelled")
    assert (await a.ack(first)).stale is True

    await b.finish(moved, {"moved": True})
    run = await cp.wait_run(run_id, types_pb2.RUN_STATUS_SUCCEEDED)
    assert cp.step_of(run, "only").attempt == 2
    assert [r[:2] for r in attempt_rows(cp.data_dir, run_id)] == [(1, "cancelled"), (2, "succeeded")]
    assert "deadline passed" in attempt_rows(cp.data_dir, run_id)[0][2]


async def test_a_zero_deadline_moves_steps_at_once(cp, echo_wasm) -> None:
    await cp.push(echo_wasm)
    a = await cp.node("a").join()
    await cp.submit(ONE_STEP)
    first = await a.assignment()
    node = await drain(cp, "a", deadline_s=0)
    assert node.running == 0  # moved off before the answer
    await a.cancel(first)


async def test_a_drain_outlives_reconnects_and_control_plane_restarts(control_plane, echo_wasm) -> None:
    cp = await control_plane()
    a = await cp.node("a").join()
    await drain(cp, "a", deadline_s=600)

    await a.drop()
    await a.connect()
    notice = await a.expect("drain")  # told again after each hello
    assert notice.draining and notice.HasField("deadline")
    await a.register()  # re-registering (e.g. after an upgrade) keeps the drain
    assert (await cp.list_nodes())["a"].draining

    before = (await cp.list_nodes())["a"]
    await cp.close()
    cp2 = await control_plane(cp.data_dir)
    after = (await cp2.list_nodes())["a"]
    assert (after.draining, after.drain_deadline) == (True, before.drain_deadline)
    back = cp2.node("a")
    await back.register(node_id=a.node_id)
    await back.connect()
    await back.wait_status(types_pb2.NODE_STATUS_DRAINING)
    assert (await back.expect("drain")).draining
    await cp2.push(echo_wasm)
    await cp2.submit(ONE_STEP)
    await back.quiet("assign", 0.3)


async def test_bad_drain_requests_change_nothing(cp) -> None:
    await cp.node("a").join()
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await drain(cp, "nope")
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    assert 'node "nope" not found' in missing.value.details()
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await undrain(cp, "nope")
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND

    request = controlplane_pb2.DrainNodeRequest(name="a", deadline=Duration(seconds=-5))
    with pytest.raises(grpc.aio.AioRpcError) as negative:
        await cp.admin.DrainNode(request, timeout=5)
    assert negative.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "deadline: must not be negative" in negative.value.details()
    node = (await cp.list_nodes())["a"]
    assert (node.status, node.draining) == (types_pb2.NODE_STATUS_READY, False)
    assert "node.draining" not in node_events(cp.data_dir, "a")


async def test_a_node_may_ask_for_its_own_drain_and_always_gets_an_answer(cp) -> None:
    a = await cp.node("a").join()
    ask = node_pb2.DrainRequest(draining=True)
    ask.deadline.FromTimedelta(timedelta(seconds=60))
    await a.send(node_pb2.NodeMessage(drain=ask))
    notice = await a.expect("drain")
    assert notice.draining and notice.HasField("deadline")
    node = (await cp.list_nodes())["a"]
    assert (node.status, node.draining) == (types_pb2.NODE_STATUS_DRAINING, True)

    for _ in range(2):  # the second undrain changes nothing, but is answered all the same
        await a.send(node_pb2.NodeMessage(drain=node_pb2.DrainRequest(draining=False)))
        assert not (await a.expect("drain")).draining
    assert not (await cp.list_nodes())["a"].draining

    # a bad request is dropped without taking the stream down
    bad = node_pb2.DrainRequest(draining=True, deadline=Duration(seconds=-1))
    await a.send(node_pb2.NodeMessage(drain=bad))
    await a.heartbeat()
    await a.quiet("drain", 0.3)
    assert not a.stream_ended.is_set()
    assert (await cp.list_nodes())["a"].status == types_pb2.NODE_STATUS_READY
