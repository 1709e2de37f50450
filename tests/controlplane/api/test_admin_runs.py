"""CancelRun, RetryRun and WatchRun against a run driven by a fake node."""

from __future__ import annotations

import asyncio
import json

import grpc
import pytest
from sample_workflows import CHAIN, FANOUT_3, ONE_STEP

from agentflow.v1 import controlplane_pb2, types_pb2

pytestmark = pytest.mark.component

DIAMOND = """
apiVersion: agentflow/v1
kind: Workflow
name: diamond
version: "1"
agents:
  - name: fetch
    module: ./echo.wasm
  - name: count
    module: ./echo.wasm
    dependsOn: [fetch]
  - name: shout
    module: ./echo.wasm
    dependsOn: [fetch]
  - name: summarize
    module: ./echo.wasm
    dependsOn: [count, shout]
"""


async def rpc_error(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


async def watch_all(cp, run_id: str) -> list[controlplane_pb2.WatchRunResponse]:
    """Every message of a WatchRun stream; fails unless the stream ends within 5 s."""
    messages = []
    async with asyncio.timeout(5):
        async for message in cp.admin.WatchRun(controlplane_pb2.WatchRunRequest(run_id=run_id)):
            messages.append(message)
    return messages


# -- CancelRun ------------------------------------------------------------------------------


async def test_cancel_stops_the_running_step_and_fences_its_late_result(cp, echo_wasm) -> None:
    node = await cp.node("n1").join()
    await cp.push(echo_wasm)
    run_id = await cp.submit(CHAIN)
    first = await node.assignment()
    await node.finish(first, {"n": 1})
    second = await node.assignment()
    await node.started(second)
    await cp.wait_step(run_id, "second", types_pb2.STEP_STATUS_RUNNING)

    run = await cp.admin.CancelRun(controlplane_pb2.CancelRunRequest(run_id=run_id), timeout=5)
    assert run.status == types_pb2.RUN_STATUS_CANCELLED
    assert run.error == "cancelled by request"
    assert run.finished_at.ToSeconds() > 0
    assert {s.name: s.status for s in run.steps} == {
        "first": types_pb2.STEP_STATUS_SUCCEEDED,
        "second": types_pb2.STEP_STATUS_CANCELLED,
        "third": types_pb2.STEP_STATUS_CANCELLED,
    }
    assert await node.cancel(second) == cp.attempt_ref(second)
    assert (await cp.list_nodes())["n1"].running == 0

    # the node finished just before it saw the cancel: its result is fenced off
    await node.result(second, output={"n": 2})
    assert (await node.ack(second)).stale is True
    assert await cp.get_run(run_id) == run
    await node.quiet("assign", 0.3)

    err = await rpc_error(cp.admin.CancelRun(controlplane_pb2.CancelRunRequest(run_id=run_id), timeout=5))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "cancelled" in err.details()


async def test_cancel_of_a_succeeded_run_is_failed_precondition(cp, echo_wasm) -> None:
    node = await cp.node("n1").join()
    await cp.push(echo_wasm)
    run_id = await cp.submit(ONE_STEP)
    await node.finish(await node.assignment(), 1)
    await cp.wait_run(run_id, types_pb2.RUN_STATUS_SUCCEEDED)
    err = await rpc_error(cp.admin.CancelRun(controlplane_pb2.CancelRunRequest(run_id=run_id), timeout=5))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert (await cp.get_run(run_id)).status == types_pb2.RUN_STATUS_SUCCEEDED


async def test_cancel_of_a_run_not_yet_placed(cp, echo_wasm) -> None:
    await cp.push(echo_wasm)
    run_id = await cp.submit(CHAIN)  # no nodes: nothing is placed
    run = await cp.admin.CancelRun(controlplane_pb2.CancelRunRequest(run_id=run_id), timeout=5)
    assert run.status == types_pb2.RUN_STATUS_CANCELLED
    assert {s.status for s in run.steps} == {types_pb2.STEP_STATUS_CANCELLED}
    node = await cp.node("n1").join()
    await node.quiet("assign", 0.3)


# -- RetryRun -------------------------------------------------------------------------------


async def test_retry_runs_failed_and_skipped_steps_again_and_keeps_succeeded_outputs(cp, echo_wasm) -> None:
    node = await cp.node("n1").join()
    await cp.push(echo_wasm)
    run_id = await cp.submit(DIAMOND)
    await node.finish(await node.assignment("fetch"), {"words": 3})
    count = await node.assignment("count")
    shout = await node.assignment("shout")
    await node.finish(count, outcome=types_pb2.STEP_OUTCOME_FAILED, error="exit code 2", exit_code=2)
    await node.finish(shout, "LOUD")
    failed = await cp.wait_run(run_id, types_pb2.RUN_STATUS_FAILED)
    assert failed.error == "step count failed"
    assert cp.step_of(failed, "summarize").status == types_pb2.STEP_STATUS_SKIPPED

    err = await rpc_error(cp.admin.RetryRun(controlplane_pb2.RetryRunRequest(run_id="nope"), timeout=5))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    retried = await cp.admin.RetryRun(controlplane_pb2.RetryRunRequest(run_id=run_id), timeout=5)
    assert retried.status == types_pb2.RUN_STATUS_RUNNING
    assert retried.error == ""
    assert not retried.HasField("finished_at")
    steps = {s.name: s for s in retried.steps}
    assert steps["fetch"].status == steps["shout"].status == types_pb2.STEP_STATUS_SUCCEEDED
    assert steps["count"].status in (types_pb2.STEP_STATUS_READY, types_pb2.STEP_STATUS_ASSIGNED)
    assert steps["count"].error == ""
    # summarize waits for count alone: armed behind it on the node once count is placed
    assert steps["summarize"].status in (types_pb2.STEP_STATUS_PENDING, types_pb2.STEP_STATUS_ASSIGNED)

    again = await node.assignment("count")
    assert again.attempt == 2
    assert json.loads(again.stdin_json)["upstream"] == {"fetch": {"words": 3}}
    await node.finish(again, 3)
    summarize = await node.assignment("summarize")
    assert json.loads(summarize.stdin_json)["upstream"] == {"count": 3, "shout": "LOUD"}
    await node.finish(summarize, "done")

    run = await cp.wait_run(run_id, types_pb2.RUN_STATUS_SUCCEEDED)
    outputs = {s.name: json.loads(s.output_json) for s in run.steps}
    assert outputs == {"fetch": {"words": 3}, "count": 3, "shout": "LOUD", "summarize": "done"}
    assert {s.name: s.attempt for s in run.steps} == {"fetch": 1, "count": 2, "shout": 1, "summarize": 1}
    # fetch and shout were not run again
    assigned = [(m.assign.step, m.assign.attempt) for m in node.received if m.WhichOneof("kind") == "assign"]
    assert sorted(assigned) == [("count", 1), ("count", 2), ("fetch", 1), ("shout", 1), ("summarize", 1)]

    err = await rpc_error(cp.admin.RetryRun(controlplane_pb2.RetryRunRequest(run_id=run_id), timeout=5))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_retry_of_a_cancelled_run_resumes_it(cp, echo_wasm) -> None:
    node = await cp.node("n1").join()
    await cp.push(echo_wasm)
    run_id = await cp.submit(CHAIN)
    await node.finish(await node.assignment("first"), 1)
    second = await node.assignment("second")
    await cp.admin.CancelRun(controlplane_pb2.CancelRunRequest(run_id=run_id), timeout=5)
    await node.cancel(second)

    await cp.admin.RetryRun(controlplane_pb2.RetryRunRequest(run_id=run_id), timeout=5)
    second2 = await node.assignment("second")
    assert second2.attempt == 2
    await node.finish(second2, 2)
    await node.finish(await node.assignment("third"), 3)
    run = await cp.wait_run(run_id, types_pb2.RUN_STATUS_SUCCEEDED)
    assert [json.loads(s.output_json) for s in run.steps] == [1, 2, 3]


# -- WatchRun -------------------------------------------------------------------------------


async def test_watch_streams_the_snapshot_then_events_until_the_run_ends(cp, echo_wasm) -> None:
    await cp.push(echo_wasm)
    run_id = await cp.submit(ONE_STEP)  # no node yet, so nothing happens before the watch
    stream = cp.admin.WatchRun(controlplane_pb2.WatchRunRequest(run_id=run_id))
    async with asyncio.timeout(5):
        first = await stream.read()
    assert not first.HasField("event")
    assert first.run.id == run_id
    assert first.run.status == types_pb2.RUN_STATUS_RUNNING
    assert [(s.name, s.status) for s in first.run.steps] == [("only", types_pb2.STEP_STATUS_READY)]

    node = await cp.node("n1").join()
    a1 = await node.assignment()
    await node.finish(a1, {"done": True})

    rest = []
    async with asyncio.timeout(5):
        while (message := await stream.read()) is not grpc.aio.EOF:
            rest.append(message)
    assert await stream.code() == grpc.StatusCode.OK
    assert all(m.HasField("event") for m in rest)
    events = [e for m in rest for e in (m.event, *m.later_events)]  # several may share a message
    types = [e.type for e in events]
    assert types == ["agent.scheduled", "agent.started", "agent.completed", "workflow.completed"]
    for e in events:
        assert e.run_id == run_id
        assert e.seq > 0
    assert [e.step for e in events] == ["only", "only", "only", ""]
    assert events[0].node == "n1"
    assert events[0].attempt == 1
    assert json.loads(events[-1].data_json)["workflow"] == "one"
    assert rest[-1].run.status == types_pb2.RUN_STATUS_SUCCEEDED
    assert json.loads(rest[-1].run.steps[0].output_json) == {"done": True}  # the end: the whole run
    # in between, the run's own fields and just the step the events are about
    assert all(list(m.run.steps) == [] and [s.name for s in m.steps] == ["only"] for m in rest[:-1])
    statuses = [m.steps[0].status for m in rest[:-1]]  # as read after each event: never behind it
    assert statuses == sorted(statuses)
    assert rest[0].steps[0].status >= types_pb2.STEP_STATUS_ASSIGNED and rest[0].steps[0].node == "n1"
    seqs = [e.seq for e in events]
    assert seqs == sorted(seqs)


async def test_watch_sends_events_committed_together_in_one_message(cp, echo_wasm) -> None:
    """One pass places all three steps (one commit, three agent.scheduled): one message carries
    the three events and the three steps, not three messages."""
    await cp.push(echo_wasm)
    run_id = await cp.submit(FANOUT_3)
    stream = cp.admin.WatchRun(controlplane_pb2.WatchRunRequest(run_id=run_id))
    async with asyncio.timeout(5):
        await stream.read()  # the snapshot
        await cp.node("n1").join()
        message = await stream.read()
    assert message.event.type == "agent.scheduled"
    assert [e.type for e in message.later_events] == ["agent.scheduled", "agent.scheduled"]
    assert sorted(e.step for e in (message.event, *message.later_events)) == ["a", "b", "c"]
    assert sorted(s.name for s in message.steps) == ["a", "b", "c"]
    assert all(s.status == types_pb2.STEP_STATUS_ASSIGNED and s.node == "n1" for s in message.steps)
    assert list(message.run.steps) == []
    stream.cancel()


async def test_watch_of_a_cancelled_run_ends_with_workflow_cancelled(cp, echo_wasm) -> None:
    await cp.push(echo_wasm)
    run_id = await cp.submit(ONE_STEP)
    stream = cp.admin.WatchRun(controlplane_pb2.WatchRunRequest(run_id=run_id))
    async with asyncio.timeout(5):
        await stream.read()
    await cp.admin.CancelRun(controlplane_pb2.CancelRunRequest(run_id=run_id), timeout=5)
    rest = []
    async with asyncio.timeout(5):
        while (message := await stream.read()) is not grpc.aio.EOF:
            rest.append(message)
    assert [m.event.type for m in rest] == ["workflow.cancelled"]
    assert rest[-1].run.status == types_pb2.RUN_STATUS_CANCELLED


async def test_watch_of_a_finished_run_sends_only_the_snapshot(cp, echo_wasm) -> None:
    node = await cp.node("n1").join()
    await cp.push(echo_wasm)
    run_id = await cp.submit(ONE_STEP)
    await node.finish(await node.assignment(), 1)
    run = await cp.wait_run(run_id, types_pb2.RUN_STATUS_SUCCEEDED)

    messages = await watch_all(cp, run_id)
    assert len(messages) == 1
    assert not messages[0].HasField("event")
    assert messages[0].run == run


async def test_watch_of_an_unknown_run_is_not_found(cp) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await watch_all(cp, "nope")
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
