"""Reconnecting nodes reconcile through their Hello: lost attempts are requeued, stale ones cancelled."""

from __future__ import annotations

import json

import pytest
from sample_workflows import ONE_STEP

from agentflow.v1 import controlplane_pb2, types_pb2

pytestmark = pytest.mark.component


async def test_hello_without_the_attempt_requeues_it_with_the_next_attempt(cp, echo_wasm) -> None:
    node = await cp.node("n1").join()
    await cp.push(echo_wasm)
    run_id = await cp.submit(ONE_STEP)
    a1 = await node.assignment()
    await node.started(a1)
    await cp.wait_step(run_id, "only", types_pb2.STEP_STATUS_RUNNING)

    await node.drop()
    await node.wait_status(types_pb2.NODE_STATUS_DISCONNECTED)
    # a dropped stream alone does not requeue: the node may come back with the attempt
    step = await cp.step(run_id, "only")
    assert (step.status, step.attempt, step.node) == (types_pb2.STEP_STATUS_RUNNING, 1, "n1")

    await node.connect()  # the node restarted and lost everything it ran
    a2 = await node.assignment()
    assert (a2.run_id, a2.step, a2.attempt) == (run_id, "only", 2)
    assert json.loads(a2.stdin_json)["step"]["attempt"] == 2
    step = await cp.step(run_id, "only")
    assert (step.status, step.attempt) == (types_pb2.STEP_STATUS_ASSIGNED, 2)

    assert (await node.finish(a2, {"attempt": 2})).stale is False
    run = await cp.wait_run(run_id, types_pb2.RUN_STATUS_SUCCEEDED)
    assert cp.step_of(run, "only").attempt == 2
    assert cp.step_of(run, "only").error == ""


async def test_hello_with_the_attempt_keeps_it(cp, echo_wasm) -> None:
    node = await cp.node("n1").join()
    await cp.push(echo_wasm)
    run_id = await cp.submit(ONE_STEP)
    a1 = await node.assignment()
    await node.started(a1)

    await node.drop()
    await node.wait_status(types_pb2.NODE_STATUS_DISCONNECTED)
    await node.connect(in_flight=[a1])
    await node.wait_status(types_pb2.NODE_STATUS_READY)
    await node.quiet("assign", 0.3)
    await node.quiet("cancel", 0)
    assert (await node.finish(a1, {"attempt": 1})).stale is False
    run = await cp.wait_run(run_id, types_pb2.RUN_STATUS_SUCCEEDED)
    assert cp.step_of(run, "only").attempt == 1


async def test_hello_with_an_unacked_result_keeps_the_attempt_until_the_result(cp, echo_wasm) -> None:
    node = await cp.node("n1").join()
    await cp.push(echo_wasm)
    run_id = await cp.submit(ONE_STEP)
    a1 = await node.assignment()
    await node.started(a1)

    await node.drop()  # finished meanwhile, result still in the node's outbox
    await node.connect(unacked=[a1])
    await node.wait_status(types_pb2.NODE_STATUS_READY)
    await node.quiet("assign", 0.3)
    await node.result(a1, output={"late": True})
    assert (await node.ack(a1)).stale is False
    run = await cp.wait_run(run_id, types_pb2.RUN_STATUS_SUCCEEDED)
    assert json.loads(cp.step_of(run, "only").output_json) == {"late": True}


async def test_hello_with_an_attempt_cancelled_meanwhile_gets_a_cancel(cp, echo_wasm) -> None:
    node = await cp.node("n1").join()
    await cp.push(echo_wasm)
    run_id = await cp.submit(ONE_STEP)
    a1 = await node.assignment()
    await node.started(a1)
    await node.drop()

    await cp.admin.CancelRun(controlplane_pb2.CancelRunRequest(run_id=run_id), timeout=5)
    await node.connect(in_flight=[a1])
    assert await node.cancel(a1) == cp.attempt_ref(a1)
    await node.result(a1, outcome=types_pb2.STEP_OUTCOME_CANCELLED, error="cancelled")
    assert (await node.ack(a1)).stale is True
    run = await cp.get_run(run_id)
    assert run.status == types_pb2.RUN_STATUS_CANCELLED
    assert cp.step_of(run, "only").status == types_pb2.STEP_STATUS_CANCELLED


async def test_hello_with_an_attempt_superseded_meanwhile_gets_a_cancel(control_plane, echo_wasm) -> None:
    """A partitioned node goes down, its step moves on; when it heals it is told to stop."""
    cp = await control_plane(heartbeat_interval=0.1, node_ttl=0.5)
    a = await cp.node("a").join()
    a.start_heartbeats(0.1)
    await cp.push(echo_wasm)
    run_id = await cp.submit(ONE_STEP)
    a1 = await a.assignment()
    await a.started(a1)
    b = await cp.node("b").join()
    b.start_heartbeats(0.1)

    await a.drop()
    b2 = await b.assignment()
    assert (b2.step, b2.attempt) == ("only", 2)
    await a.wait_status(types_pb2.NODE_STATUS_DOWN)

    await a.register()
    await a.connect(in_flight=[a1])
    assert await a.cancel(a1) == cp.attempt_ref(a1)
    await a.wait_status(types_pb2.NODE_STATUS_READY)
    step = await cp.step(run_id, "only")
    assert (step.attempt, step.node) == (2, "b")  # the healed node does not take it back
    assert (await b.finish(b2, {"on": "b"})).stale is False
    await cp.wait_run(run_id, types_pb2.RUN_STATUS_SUCCEEDED)
