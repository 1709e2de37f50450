"""Results are idempotent per (step, attempt) and fenced: only the open attempt may change a step."""

from __future__ import annotations

import json
import sqlite3

import pytest
from sample_workflows import ONE_STEP

from agentflow.v1 import node_pb2, types_pb2

pytestmark = pytest.mark.component

RETRYING = """
apiVersion: agentflow/v1
kind: Workflow
name: retrying
version: "1"
agents:
  - name: only
    module: ./echo.wasm
    retry: {maxAttempts: 3, backoff: 10ms}
"""


def event_count(cp) -> int:
    with sqlite3.connect(cp.data_dir / "state.db") as db:
        return db.execute("SELECT count(*) FROM events").fetchone()[0]


async def test_repeated_result_is_acked_and_changes_nothing(cp, echo_wasm) -> None:
    node = await cp.node("n1").join()
    await cp.push(echo_wasm)
    run_id = await cp.submit(ONE_STEP)
    a1 = await node.assignment()
    assert (await node.finish(a1, {"v": 1})).stale is False
    before = await cp.wait_run(run_id, types_pb2.RUN_STATUS_SUCCEEDED)
    events = event_count(cp)

    # the node did not see the ack (say) and sends the same result again, then a different one
    await node.result(a1, output={"v": 1})
    assert (await node.ack(a1)).stale is False
    await node.result(a1, outcome=types_pb2.STEP_OUTCOME_FAILED, error="late failure", exit_code=3)
    assert (await node.ack(a1)).stale is False

    assert await cp.get_run(run_id) == before
    assert json.loads(cp.step_of(before, "only").output_json) == {"v": 1}
    assert event_count(cp) == events
    await node.quiet("assign", 0.2)


async def test_repeated_failure_is_not_counted_twice(cp, echo_wasm) -> None:
    node = await cp.node("n1").join()
    await cp.push(echo_wasm)
    run_id = await cp.submit(RETRYING)
    a1 = await node.assignment()
    await node.started(a1)
    await node.result(a1, outcome=types_pb2.STEP_OUTCOME_FAILED, error="exit 1", exit_code=1)
    assert (await node.ack(a1)).stale is False
    a2 = await node.assignment()
    assert a2.attempt == 2

    # a repeat of attempt 1's failure must not use up a second attempt
    await node.result(a1, outcome=types_pb2.STEP_OUTCOME_FAILED, error="exit 1", exit_code=1)
    assert (await node.ack(a1)).stale is False
    await node.result(a2, outcome=types_pb2.STEP_OUTCOME_FAILED, error="exit 1", exit_code=1)
    assert (await node.ack(a2)).stale is False
    a3 = await node.assignment()
    assert a3.attempt == 3  # 2 failures so far out of 3 attempts
    assert (await node.finish(a3, {"ok": True})).stale is False
    run = await cp.wait_run(run_id, types_pb2.RUN_STATUS_SUCCEEDED)
    assert cp.step_of(run, "only").attempt == 3


async def test_result_of_an_attempt_superseded_by_a_requeue_is_stale(cp, echo_wasm) -> None:
    a = await cp.node("a").join()
    await cp.push(echo_wasm)
    run_id = await cp.submit(ONE_STEP)
    a1 = await a.assignment()
    b = await cp.node("b").join()

    # a comes back without the attempt: it is requeued as attempt 2, away from a
    await a.drop()
    await a.connect()
    a2 = await b.assignment()
    assert (a2.step, a2.attempt) == ("only", 2)
    await b.started(a2)
    step = await cp.wait_step(run_id, "only", types_pb2.STEP_STATUS_RUNNING)
    events = event_count(cp)

    # a's result for attempt 1 arrives after all: fenced off
    await a.result(a1, output={"from": "a"})
    assert (await a.ack(a1)).stale is True
    assert await cp.step(run_id, "only") == step
    assert event_count(cp) == events

    assert (await b.finish(a2, {"from": "b"})).stale is False
    run = await cp.wait_run(run_id, types_pb2.RUN_STATUS_SUCCEEDED)
    assert json.loads(cp.step_of(run, "only").output_json) == {"from": "b"}
    assert cp.step_of(run, "only").node == "b"

    # and still stale once the step is done
    await a.result(a1, output={"from": "a"})
    assert (await a.ack(a1)).stale is True
    assert await cp.get_run(run_id) == run


@pytest.mark.parametrize(
    ("run_id", "step", "attempt"),
    [
        pytest.param("no-such-run", "only", 1, id="unknown-run"),
        pytest.param(None, "no-such-step", 1, id="unknown-step"),
        pytest.param(None, "only", 2, id="future-attempt"),
    ],
)
async def test_result_for_something_never_assigned_is_stale(cp, echo_wasm, run_id, step, attempt) -> None:
    node = await cp.node("n1").join()
    await cp.push(echo_wasm)
    real_run = await cp.submit(ONE_STEP)
    a1 = await node.assignment()
    key = node_pb2.AttemptRef(run_id=run_id or real_run, step=step, attempt=attempt)

    await node.started(key)
    await node.result(key, output={"x": 1})
    assert (await node.ack(key)).stale is True
    step_now = await cp.step(real_run, "only")
    assert (step_now.status, step_now.attempt, step_now.output_json) == (types_pb2.STEP_STATUS_ASSIGNED, 1, "")

    # the real attempt is unaffected
    assert (await node.finish(a1, {"x": 2})).stale is False
    await cp.wait_run(real_run, types_pb2.RUN_STATUS_SUCCEEDED)


CHAIN = """
apiVersion: agentflow/v1
kind: Workflow
name: chain
version: "1"
agents:
  - name: first
    module: ./echo.wasm
    retry: {maxAttempts: 2, backoff: 10ms}
  - name: second
    module: ./echo.wasm
    dependsOn: [first]
"""


@pytest.mark.parametrize(
    "output_json",
    [
        pytest.param("{not json", id="malformed"),
        pytest.param("", id="empty"),
        pytest.param("1 2", id="two-values"),
        pytest.param('{"x": NaN}', id="nan"),
        pytest.param("[" * 100_000 + "]" * 100_000, id="too-deep"),
    ],
)
async def test_a_success_whose_output_is_not_json_fails_the_attempt(cp, echo_wasm, output_json: str) -> None:
    """Output is validated on the way in: it never reaches a dependent's stdin or wedges placement."""
    node = await cp.node("n1").join()
    await cp.push(echo_wasm)
    run_id = await cp.submit(CHAIN)
    a1 = await node.assignment("first")
    await node.started(a1)
    result = types_pb2.StepResult(
        run_id=a1.run_id, step=a1.step, attempt=a1.attempt, outcome=types_pb2.STEP_OUTCOME_SUCCEEDED
    )
    result.output_json = output_json
    await node.send(node_pb2.NodeMessage(result=result))
    assert (await node.ack(a1)).stale is False

    # (the retry may be placed in the same commit, which clears the step's error: read the event)
    [failed] = cp.failed_events(run_id)
    assert failed["error"].startswith("output is not valid JSON"), failed
    assert failed["kind"] == "invalid_output" and failed["retrying"] is True
    assert (await cp.step(run_id, "first")).output_json == ""
    # the step is retried by its policy, and other runs still get placed meanwhile
    a2 = await node.assignment("first")
    assert a2.attempt == 2
    other = await cp.submit(ONE_STEP)
    assert (await node.assignment("only")).run_id == other
    await node.finish(a2, {"ok": 1})
    second = await node.assignment("second")
    assert json.loads(second.stdin_json)["upstream"] == {"first": {"ok": 1}}


async def test_a_cancel_the_control_plane_did_not_order_requeues_the_step(cp, echo_wasm) -> None:
    """E.g. the node is shutting down and stopped the attempt: it is placed again, attempt + 1."""
    node = await cp.node("n1").join()
    await cp.push(echo_wasm)
    run_id = await cp.submit(ONE_STEP)
    a1 = await node.assignment()
    await node.started(a1)
    await node.result(a1, outcome=types_pb2.STEP_OUTCOME_CANCELLED, error="node shutting down")
    assert (await node.ack(a1)).stale is False
    a2 = await node.assignment()
    assert a2.attempt == 2
    # attempt 1's cancellation is settled: a success reported for it now is stale
    await node.result(a1, output={"late": True})
    assert (await node.ack(a1)).stale is True
    await node.finish(a2, {"a": 2})
    run = await cp.wait_run(run_id, types_pb2.RUN_STATUS_SUCCEEDED)
    assert json.loads(cp.step_of(run, "only").output_json) == {"a": 2}
