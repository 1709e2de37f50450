"""A whole run through a fake node on the real NodeGateway: placement, the ABI document, results."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import grpc
import pytest
from sample_workflows import ONE_STEP
from waiting import eventually

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
    resources: {cpu: 250m, memory: 32Mi}
    timeout: 7s
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
RUN_INPUT = {"text": "hello wasm world"}
OUTPUTS = {
    "fetch": {"words": ["hello", "wasm", "world"]},
    "count": {"count": 3},
    "shout": {"text": "HELLO WASM WORLD"},
    "summarize": {"summary": "3 words: HELLO WASM WORLD"},
}


def document(assignment: types_pb2.Assignment) -> dict:
    return json.loads(assignment.stdin_json)


async def test_node_joins_and_is_ready(cp) -> None:
    node = await cp.node("n1", slots=3, cpu_millis=2000, memory_bytes=1 << 30, labels={"zone": "a"}).join()

    listed = (await cp.list_nodes())["n1"]
    assert listed.id == node.node_id
    assert listed.status == types_pb2.NODE_STATUS_READY
    assert (listed.capacity.cpu_millis, listed.capacity.memory_bytes, listed.capacity.slots) == (2000, 1 << 30, 3)
    assert dict(listed.labels) == {"zone": "a"}
    assert listed.isolation == types_pb2.ISOLATION_NONE
    assert listed.running == 0
    assert listed.allocated == types_pb2.Resources()


async def test_get_node_of_an_unknown_name_is_not_found(cp) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await cp.admin.GetNode(controlplane_pb2.GetNodeRequest(name="nope"), timeout=5)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def summarize_armed_behind(node: Any, step: str) -> bool:
    return any(
        m.WhichOneof("kind") == "assign" and (m.assign.step, m.assign.after_step) == ("summarize", step)
        for m in node.received
    )


async def test_diamond_runs_to_success_through_a_fake_node(cp, echo_wasm) -> None:
    node = await cp.node("n1", slots=4).join()
    digest = (await cp.push(echo_wasm)).digest
    run_id = await cp.submit(DIAMOND, input=RUN_INPUT)

    fetch = await node.assignment()
    assert (fetch.run_id, fetch.step, fetch.attempt) == (run_id, "fetch", 1)
    assert fetch.module_digest == digest
    assert fetch.workflow_name == "diamond"
    assert (fetch.resources.cpu_millis, fetch.resources.memory_bytes) == (250, 32 << 20)
    assert fetch.timeout.ToSeconds() == 7
    doc = document(fetch)
    assert doc["input"] == RUN_INPUT
    assert doc["upstream"] == {}
    assert {k: doc["step"][k] for k in ("run", "name", "attempt")} == {"run": run_id, "name": "fetch", "attempt": 1}

    # count and shout wait for fetch alone: they are placed on its node at once, armed behind it
    def armed_messages() -> list[types_pb2.Assignment]:
        return [m.assign for m in node.received if m.WhichOneof("kind") == "assign" and m.assign.after_step]

    await eventually(lambda: len(armed_messages()) == 2, what="count and shout armed")
    armed = armed_messages()
    assert sorted((a.step, a.after_step, a.after_attempt) for a in armed) == [
        ("count", "fetch", 1),
        ("shout", "fetch", 1),
    ]
    assert all(document(a)["upstream"] == {} for a in armed)  # the node adds fetch's output
    assert (await cp.step(run_id, "count")).status == types_pb2.STEP_STATUS_ASSIGNED
    await node.quiet("assign", 0.3)  # and the node holds them while fetch has not succeeded

    await node.started(fetch)
    await cp.wait_step(run_id, "fetch", types_pb2.STEP_STATUS_RUNNING)
    await node.result(fetch, output=OUTPUTS["fetch"])
    assert (await node.ack(fetch)).stale is False

    # count and shout both start when fetch succeeds: they run in parallel
    first = await node.assignment()
    second = await node.assignment()
    assert {first.step, second.step} == {"count", "shout"}
    for a in (first, second):
        assert a.attempt == 1
        assert document(a)["upstream"] == {"fetch": OUTPUTS["fetch"]}
        assert document(a)["input"] == RUN_INPUT
        assert document(a)["step"]["name"] == a.step
    run = await cp.get_run(run_id)
    assert {s.name: s.status for s in run.steps} == {
        "fetch": types_pb2.STEP_STATUS_SUCCEEDED,
        "count": types_pb2.STEP_STATUS_ASSIGNED,
        "shout": types_pb2.STEP_STATUS_ASSIGNED,
        "summarize": types_pb2.STEP_STATUS_PENDING,
    }
    listed = (await cp.list_nodes())["n1"]
    assert listed.running == 2
    allocated = (listed.allocated.cpu_millis, listed.allocated.memory_bytes, listed.allocated.slots)
    assert allocated == (200, 128 << 20, 2)  # two steps at the default 100m cpu, 64Mi

    assert (await node.finish(first, OUTPUTS[first.step])).stale is False
    await node.quiet("assign", 0.3)  # summarize still waits for the other one, armed behind it
    await eventually(lambda: summarize_armed_behind(node, second.step), what="summarize armed")
    assert (await node.finish(second, OUTPUTS[second.step])).stale is False

    summarize = await node.assignment()
    assert summarize.step == "summarize"
    assert document(summarize)["upstream"] == {"count": OUTPUTS["count"], "shout": OUTPUTS["shout"]}
    assert (await node.finish(summarize, OUTPUTS["summarize"])).stale is False

    run = await cp.wait_run(run_id, types_pb2.RUN_STATUS_SUCCEEDED)
    assert run.error == ""
    assert run.finished_at.ToSeconds() > 0
    assert [s.name for s in run.steps] == ["fetch", "count", "shout", "summarize"]
    for step in run.steps:
        assert step.status == types_pb2.STEP_STATUS_SUCCEEDED
        assert json.loads(step.output_json) == OUTPUTS[step.name]
        assert step.attempt == 1
        assert step.node == "n1"
    assert (await cp.list_nodes())["n1"].running == 0
    await node.quiet("assign", 0.2)


async def test_steps_spread_over_nodes_within_their_slots(cp, echo_wasm) -> None:
    """Two one-slot nodes: the two parallel steps land one on each, never two on one node."""
    a = await cp.node("a", slots=1).join()
    b = await cp.node("b", slots=1).join()
    await cp.push(echo_wasm)
    run_id = await cp.submit(DIAMOND, input=RUN_INPUT)

    placed = await cp.wait_step(run_id, "fetch", types_pb2.STEP_STATUS_ASSIGNED)
    owner = {"a": a, "b": b}[placed.node]
    await owner.finish(await owner.assignment("fetch"), OUTPUTS["fetch"])

    on_a = await a.assignment()
    on_b = await b.assignment()
    assert {on_a.step, on_b.step} == {"count", "shout"}
    await a.quiet("assign", 0.2)
    await b.quiet("assign", 0.2)


MAPPED = """
apiVersion: agentflow/v1
kind: Workflow
name: mapped
version: "1"
agents:
  - name: fetch
    module: ./echo.wasm
    input: {url: "${ input.url }", retries: 2}
  - name: use
    module: ./echo.wasm
    dependsOn: [fetch]
    input: {first: "${ upstream.fetch.items[0] }", all: "${ upstream.fetch }"}
  - name: after
    module: ./echo.wasm
    dependsOn: [use]
"""


async def test_input_mappings_are_resolved_against_input_and_upstream(cp, echo_wasm) -> None:
    node = await cp.node("n1").join()
    await cp.push(echo_wasm)
    run_id = await cp.submit(MAPPED, input={"url": "https://example.org"})
    fetch = await node.assignment("fetch")
    assert document(fetch)["input"] == {"url": "https://example.org", "retries": 2}
    await node.finish(fetch, {"items": ["a", "b"]})
    use = await node.assignment("use")
    assert document(use)["input"] == {"first": "a", "all": {"items": ["a", "b"]}}
    assert document(use)["upstream"] == {"fetch": {"items": ["a", "b"]}}
    await node.finish(use, 1)
    await node.finish(await node.assignment("after"), 2)
    await cp.wait_run(run_id, types_pb2.RUN_STATUS_SUCCEEDED)


async def test_a_mapping_that_misses_its_reference_fails_the_step_not_the_scheduler(cp, echo_wasm) -> None:
    node = await cp.node("n1").join()
    await cp.push(echo_wasm)
    run_id = await cp.submit(MAPPED, input={"url": "u"})
    await node.finish(await node.assignment("fetch"), {"items": []})  # no items[0]

    run = await cp.wait_run(run_id, types_pb2.RUN_STATUS_FAILED)
    use = cp.step_of(run, "use")
    assert use.status == types_pb2.STEP_STATUS_FAILED
    assert use.error.startswith("input mapping: "), use.error
    assert "items" in use.error
    assert cp.step_of(run, "after").status == types_pb2.STEP_STATUS_SKIPPED
    assert run.error == "step use failed"
    # placement carries on for other runs
    other = await cp.submit(MAPPED, input={"url": "v"})
    assert (await node.assignment("fetch")).run_id == other


SELECTIVE = """
apiVersion: agentflow/v1
kind: Workflow
name: selective
version: "1"
agents:
  - name: gpu
    module: ./echo.wasm
    nodeSelector: {accel: gpu}
"""


async def test_node_selector_limits_placement_to_matching_nodes(cp, echo_wasm) -> None:
    plain = await cp.node("plain", slots=8).join()
    await cp.push(echo_wasm)
    run_id = await cp.submit(SELECTIVE)

    async def blocked() -> bool:
        return (await cp.step(run_id, "gpu")).error == "waiting: no ready node matches nodeSelector accel=gpu"

    await cp.eventually(blocked, what="the step waits for a matching node")
    gpu = await cp.node("gpu-1", slots=1, labels={"accel": "gpu"}).join()
    assignment = await gpu.assignment()
    assert assignment.step == "gpu"
    await gpu.finish(assignment, 1)
    run = await cp.wait_run(run_id, types_pb2.RUN_STATUS_SUCCEEDED)
    assert cp.step_of(run, "gpu").node == "gpu-1"
    await plain.quiet("assign", 0)


HEAD_OF_LINE = """
apiVersion: agentflow/v1
kind: Workflow
name: head-of-line
version: "1"
agents:
  - {name: gpu1, module: ./echo.wasm, nodeSelector: {accel: gpu}}
  - {name: gpu2, module: ./echo.wasm, nodeSelector: {accel: gpu}}
  - {name: gpu3, module: ./echo.wasm, nodeSelector: {accel: gpu}}
  - {name: gpu4, module: ./echo.wasm, nodeSelector: {accel: gpu}}
  - {name: plain, module: ./echo.wasm}
"""


async def test_steps_that_fit_nowhere_at_the_head_of_the_queue_do_not_hold_back_one_that_fits(cp, echo_wasm) -> None:
    """A pass reads the free slots and two more first (one slot here: the first three steps, all
    for a gpu node that is not there). Slots left free send it back for more of the queue."""
    await cp.push(echo_wasm)
    run_id = await cp.submit(HEAD_OF_LINE)
    node = await cp.node("plain-1", slots=1).join()
    assignment = await node.assignment()
    assert assignment.step == "plain"
    for name in ("gpu1", "gpu2", "gpu3", "gpu4"):
        assert (await cp.step(run_id, name)).error == "waiting: no ready node matches nodeSelector accel=gpu"


async def test_a_result_without_a_started_notice_starts_the_step_too(cp, echo_wasm) -> None:
    """A quick step's node sends only its result: the attempt is started from it, then ended."""
    node = await cp.node("n1").join()
    await cp.push(echo_wasm)
    run_id = await cp.submit(ONE_STEP)
    only = await node.assignment("only")
    await node.result(only, output={"n": 1})
    assert (await node.ack(only)).stale is False
    run = await cp.wait_run(run_id, types_pb2.RUN_STATUS_SUCCEEDED)
    step = cp.step_of(run, "only")
    assert step.HasField("started_at")
    assert step.started_at.ToDatetime() <= step.finished_at.ToDatetime()
    with sqlite3.connect(cp.data_dir / "state.db") as db:
        kinds = [t for (t,) in db.execute("SELECT type FROM events WHERE run_id = ? AND step = 'only' ORDER BY seq",
                                          (run_id,))]  # fmt: skip
    assert kinds == ["agent.scheduled", "agent.started", "agent.completed"]
