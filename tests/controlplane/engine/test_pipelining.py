"""Pipelined chains through a real control plane and a fake node: a dependent that waits for one
placed attempt alone is armed behind it on its node, and taken back when that attempt fails."""

from __future__ import annotations

import json

import pytest
from sample_workflows import CHAIN
from waiting import eventually

from agentflow.v1 import types_pb2

pytestmark = pytest.mark.component

NOT_ARMED = """
apiVersion: agentflow/v1
kind: Workflow
name: mapped
version: "1"
agents:
  - name: first
    module: ./echo.wasm
  - name: mapped
    module: ./echo.wasm
    dependsOn: [first]
    input: {from_first: "${ upstream.first.n }"}
  - name: asks
    module: ./echo.wasm
    dependsOn: [first]
    capabilities: {llm: true}
  - name: elsewhere
    module: ./echo.wasm
    dependsOn: [first]
    nodeSelector: {zone: b}
"""


def armed(node, step: str) -> list[types_pb2.Assignment]:
    return [m.assign for m in node.received if m.WhichOneof("kind") == "assign" and m.assign.step == step
            and m.assign.after_step]  # fmt: skip


async def test_each_link_of_a_chain_is_armed_behind_the_one_before(cp, echo_wasm) -> None:
    node = await cp.node("n1").join()
    await cp.push(echo_wasm)
    run_id = await cp.submit(CHAIN, input={"seed": 1})
    first = await node.assignment("first")
    # two links ahead (LOOKAHEAD): second behind first, third behind second
    await eventually(lambda: armed(node, "second") and armed(node, "third"), what="second and third armed")
    [held] = armed(node, "second")
    assert (held.after_step, held.after_attempt, held.attempt) == ("first", 1, 1)
    assert json.loads(held.stdin_json)["upstream"] == {}
    assert [(a.after_step, a.after_attempt) for a in armed(node, "third")] == [("second", 1)]
    for name in ("second", "third"):
        assert (await cp.step(run_id, name)).status == types_pb2.STEP_STATUS_ASSIGNED
    assert (await cp.list_nodes())["n1"].allocated.slots == 3  # an armed attempt holds its room

    await node.finish(first, {"n": 1})
    second = await node.assignment("second")  # started by the node itself, first's output added
    assert json.loads(second.stdin_json)["upstream"] == {"first": {"n": 1}}
    await node.finish(second, {"n": 2})
    third = await node.assignment("third")
    assert json.loads(third.stdin_json)["upstream"] == {"second": {"n": 2}}
    await node.finish(third, {"n": 3})
    run = await cp.wait_run(run_id, types_pb2.RUN_STATUS_SUCCEEDED)
    assert [(s.name, s.attempt) for s in run.steps] == [("first", 1), ("second", 1), ("third", 1)]
    assert [json.loads(s.output_json) for s in run.steps] == [{"n": 1}, {"n": 2}, {"n": 3}]


async def test_an_armed_step_is_taken_back_when_the_one_it_waits_for_fails(cp, echo_wasm) -> None:
    node = await cp.node("n1").join()
    await cp.push(echo_wasm)
    run_id = await cp.submit(CHAIN)
    first = await node.assignment("first")
    await eventually(lambda: armed(node, "second"), what="second armed behind first")
    await eventually(lambda: armed(node, "third"), what="third armed behind second")
    [held], [next_held] = armed(node, "second"), armed(node, "third")
    await node.finish(first, outcome=types_pb2.STEP_OUTCOME_FAILED, error="exit code 1", exit_code=1)
    assert await node.cancel(held) == cp.attempt_ref(held)
    assert await node.cancel(next_held) == cp.attempt_ref(next_held)  # and what was armed behind it
    run = await cp.wait_run(run_id, types_pb2.RUN_STATUS_FAILED)
    assert {s.name: s.status for s in run.steps} == {
        "first": types_pb2.STEP_STATUS_FAILED,
        "second": types_pb2.STEP_STATUS_SKIPPED,
        "third": types_pb2.STEP_STATUS_SKIPPED,
    }
    assert (await cp.list_nodes())["n1"].allocated.slots == 0
    await node.quiet("assign", 0.2)


async def test_only_what_the_node_can_start_alone_is_armed(cp, echo_wasm) -> None:
    node = await cp.node("n1", labels={"zone": "a"}).join()
    await cp.node("n2", labels={"zone": "b"}).join()
    await cp.push(echo_wasm)
    run_id = await cp.submit(NOT_ARMED)
    first = await node.assignment("first")
    await node.quiet("assign", 0.2)
    assert [m.assign.step for m in node.received if m.WhichOneof("kind") == "assign"] == ["first"]
    for name in ("mapped", "asks", "elsewhere"):  # an input mapping, LLM calls, another node's selector
        assert (await cp.step(run_id, name)).status == types_pb2.STEP_STATUS_PENDING, name
    await node.finish(first, {"n": 1})
    mapped = await node.assignment("mapped")  # placed the ordinary way once first succeeded
    assert json.loads(mapped.stdin_json)["input"] == {"from_first": 1}
