"""A control plane restarted from its data dir carries every run on; nodes reconnect and reconcile."""

from __future__ import annotations

import json
import logging
import sqlite3

import pytest
from sample_workflows import CHAIN

from agentflow.v1 import controlplane_pb2, types_pb2

pytestmark = pytest.mark.component


def event_types(data_dir, run_id: str) -> list[str]:
    with sqlite3.connect(data_dir / "state.db") as db:
        return [r[0] for r in db.execute("SELECT type FROM events WHERE run_id = ? ORDER BY seq", (run_id,))]


async def start_mid_run(control_plane, echo_wasm):
    """A chain run whose first step succeeded and whose second runs on n1."""
    cp = await control_plane()
    node = await cp.node("n1").join()
    await cp.push(echo_wasm)
    run_id = await cp.submit(CHAIN, input={"seed": 7})
    await node.finish(await node.assignment("first"), {"first": 1})
    second = await node.assignment("second")
    await node.started(second)
    await cp.wait_step(run_id, "second", types_pb2.STEP_STATUS_RUNNING)
    return cp, node, run_id, second


async def test_restart_mid_run_the_node_reconnects_and_the_run_completes(
    control_plane, echo_wasm, caplog: pytest.LogCaptureFixture
) -> None:
    cp, node, run_id, second = await start_mid_run(control_plane, echo_wasm)
    before = await cp.get_run(run_id)
    with caplog.at_level(logging.WARNING):
        await cp.close()  # the server stops under the node's open stream (stop() waits for its handlers)
    assert [r.getMessage() for r in caplog.records if r.name.startswith("controlplane")] == []

    cp2 = await control_plane(cp.data_dir)
    assert await cp2.get_run(run_id) == before
    assert (await cp2.list_nodes())["n1"].status == types_pb2.NODE_STATUS_DISCONNECTED
    modules = await cp2.admin.ListModules(controlplane_pb2.ListModulesRequest(), timeout=5)
    assert [m.digest for m in modules.modules] == [cp.module_digests["./echo.wasm"]]

    # the node finds the new control plane, registers again with its id and reports its attempt
    back = cp2.node("n1")
    assert await back.register(node_id=node.node_id) == node.node_id
    await back.connect(in_flight=[second])
    await back.wait_status(types_pb2.NODE_STATUS_READY)
    await back.quiet("cancel", 0.2)
    await back.quiet("assign", 0)
    await back.result(second, output={"second": 2})
    assert (await back.ack(second)).stale is False

    # third was armed behind second on the node; a node that reports only second has lost it,
    # so it is placed again (attempt 2) once second's result is in
    third = await back.assignment("third")
    assert third.attempt == 2
    doc = json.loads(third.stdin_json)
    assert doc["input"] == {"seed": 7}
    assert doc["upstream"] == {"second": {"second": 2}}
    await back.finish(third, {"third": 3})

    run = await cp2.wait_run(run_id, types_pb2.RUN_STATUS_SUCCEEDED)
    assert [json.loads(s.output_json) for s in run.steps] == [{"first": 1}, {"second": 2}, {"third": 3}]
    assert [s.attempt for s in run.steps] == [1, 1, 2]
    assert run.created_at == before.created_at
    types = event_types(cp2.data_dir, run_id)
    assert types[0] == "workflow.started"
    assert types.count("agent.completed") == 3
    assert types[-1] == "workflow.completed"


async def test_restart_the_node_lost_its_attempt_so_it_runs_again(control_plane, echo_wasm) -> None:
    cp, node, run_id, _ = await start_mid_run(control_plane, echo_wasm)
    await cp.close()

    cp2 = await control_plane(cp.data_dir)
    back = cp2.node("n1")
    await back.register(node_id=node.node_id)
    await back.connect()  # the node restarted too: nothing in flight
    again = await back.assignment("second")
    assert again.attempt == 2
    assert json.loads(again.stdin_json)["upstream"] == {"first": {"first": 1}}
    await back.finish(again, {"second": 2})
    await back.finish(await back.assignment("third"), {"third": 3})
    run = await cp2.wait_run(run_id, types_pb2.RUN_STATUS_SUCCEEDED)
    assert [s.attempt for s in run.steps] == [1, 2, 2]  # third, armed behind second, was lost with it


async def test_restart_a_node_that_never_returns_goes_down_and_its_step_moves(control_plane, echo_wasm) -> None:
    cp, _, run_id, _ = await start_mid_run(control_plane, echo_wasm)
    await cp.close()

    cp2 = await control_plane(cp.data_dir, heartbeat_interval=0.1, node_ttl=0.5)
    other = await cp2.node("n2").join()
    other.start_heartbeats(0.1)
    moved = await other.assignment("second")
    assert moved.attempt == 2
    assert (await cp2.list_nodes())["n1"].status == types_pb2.NODE_STATUS_DOWN
    await other.finish(moved, 2)
    await other.finish(await other.assignment("third"), 3)
    await cp2.wait_run(run_id, types_pb2.RUN_STATUS_SUCCEEDED)


async def test_reopening_the_data_dir_keeps_finished_runs(control_plane, echo_wasm) -> None:
    cp = await control_plane()
    node = await cp.node("n1").join()
    await cp.push(echo_wasm)
    run_id = await cp.submit(CHAIN)
    for name in ("first", "second", "third"):
        await node.finish(await node.assignment(name), name)
    run = await cp.wait_run(run_id, types_pb2.RUN_STATUS_SUCCEEDED)
    await cp.close()

    cp2 = await control_plane(cp.data_dir)
    assert await cp2.get_run(run_id) == run
    listed = await cp2.admin.ListRuns(controlplane_pb2.ListRunsRequest(workflow_name="chain"), timeout=5)
    assert [r.id for r in listed.runs] == [run_id]
