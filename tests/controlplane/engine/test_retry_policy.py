"""Retry policy: failed attempts back off and run again up to maxAttempts; then the run fails."""

from __future__ import annotations

import json
from datetime import UTC, timedelta

import pytest

from agentflow.clock import ManualClock
from agentflow.v1 import types_pb2
from agentflow.vocabulary import FailureKind

pytestmark = pytest.mark.component


def workflow(max_attempts: int) -> str:
    return f"""
apiVersion: agentflow/v1
kind: Workflow
name: flaky
version: "1"
agents:
  - name: flaky
    module: ./echo.wasm
    retry: {{maxAttempts: {max_attempts}, backoff: 100ms}}
  - name: after
    module: ./echo.wasm
    dependsOn: [flaky]
  - name: last
    module: ./echo.wasm
    dependsOn: [after]
"""


async def fail(node, assignment, n: int) -> None:
    await node.started(assignment)
    await node.result(
        assignment,
        outcome=types_pb2.STEP_OUTCOME_FAILED,
        error=f"exit code {n}",
        exit_code=n,
        stderr=f"boom {n}\n",
        failure_kind=FailureKind.EXIT,
    )
    assert (await node.ack(assignment)).stale is False


async def test_step_failing_twice_then_succeeding_ends_succeeded_at_attempt_3(control_plane, echo_wasm) -> None:
    clock = ManualClock()
    cp = await control_plane(clock=clock)
    node = await cp.node("n1").join()
    await cp.push(echo_wasm)
    run_id = await cp.submit(workflow(3))

    a1 = await node.assignment("flaky")
    assert a1.attempt == 1
    await fail(node, a1, 1)
    step = await cp.step(run_id, "flaky")
    assert step.status == types_pb2.STEP_STATUS_READY  # backing off: the clock has not moved
    assert (step.error, step.exit_code, step.stderr) == ("exit code 1", 1, "boom 1\n")
    assert step.not_before.ToDatetime(tzinfo=UTC) - clock.now() >= timedelta(milliseconds=80)  # 100ms ±20 %

    await clock.advance(timedelta(milliseconds=79))  # less than the shortest backoff: still waiting
    await node.quiet("assign", 0.2)
    await clock.advance(timedelta(milliseconds=42))  # 121 ms: past the longest
    a2 = await node.assignment("flaky")
    assert a2.attempt == 2
    assert json.loads(a2.stdin_json)["step"]["attempt"] == 2
    await fail(node, a2, 2)

    await clock.advance(timedelta(milliseconds=159))  # the delay doubled: 160-240 ms
    await node.quiet("assign", 0.2)
    await clock.advance(timedelta(milliseconds=82))
    a3 = await node.assignment("flaky")
    assert a3.attempt == 3
    await node.finish(a3, {"third": "time lucky"})
    step = await cp.wait_step(run_id, "flaky", types_pb2.STEP_STATUS_SUCCEEDED)
    assert (step.attempt, step.max_attempts, step.error) == (3, 3, "")
    assert json.loads(step.output_json) == {"third": "time lucky"}

    await node.finish(await node.assignment("after"), 1)
    await node.finish(await node.assignment("last"), 2)
    run = await cp.wait_run(run_id, types_pb2.RUN_STATUS_SUCCEEDED)
    # "after" and "last" were armed behind flaky's first attempt and taken back when it failed:
    # placements, so they run as their attempt 2
    assert [s.attempt for s in run.steps] == [3, 2, 2]
    assert [(e["attempt"], e["retrying"]) for e in cp.failed_events(run_id)] == [(1, True), (2, True)]


async def test_step_out_of_attempts_fails_the_run_and_skips_dependents(cp, echo_wasm) -> None:
    node = await cp.node("n1").join()
    await cp.push(echo_wasm)
    run_id = await cp.submit(workflow(2))

    await fail(node, await node.assignment("flaky"), 1)
    await fail(node, await node.assignment("flaky"), 2)

    run = await cp.wait_run(run_id, types_pb2.RUN_STATUS_FAILED)
    assert run.error == "step flaky failed"
    assert run.finished_at.ToSeconds() > 0
    steps = {s.name: s for s in run.steps}
    flaky = steps["flaky"]
    assert flaky.status == types_pb2.STEP_STATUS_FAILED
    assert (flaky.attempt, flaky.max_attempts) == (2, 2)
    assert (flaky.error, flaky.exit_code, flaky.stderr) == ("exit code 2", 2, "boom 2\n")
    assert flaky.output_json == ""
    assert flaky.finished_at.ToSeconds() > 0
    assert steps["after"].status == types_pb2.STEP_STATUS_SKIPPED
    assert steps["after"].error == 'dependency "flaky" failed'
    assert steps["last"].status == types_pb2.STEP_STATUS_SKIPPED
    assert steps["last"].error == 'dependency "after" skipped'
    assert [(e["attempt"], e["retrying"]) for e in cp.failed_events(run_id)] == [(1, True), (2, False)]
    await node.quiet("assign", 0.3)


async def test_default_policy_does_not_retry(cp, echo_wasm) -> None:
    node = await cp.node("n1").join()
    await cp.push(echo_wasm)
    run_id = await cp.submit(workflow(3).replace("    retry: {maxAttempts: 3, backoff: 100ms}\n", ""))
    await fail(node, await node.assignment("flaky"), 9)
    run = await cp.wait_run(run_id, types_pb2.RUN_STATUS_FAILED)
    assert (cp.step_of(run, "flaky").attempt, cp.step_of(run, "flaky").max_attempts) == (1, 1)
