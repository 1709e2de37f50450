"""Batch messages on the node stream: the control plane says it reads them, sends what waits
together as one batch to a node that reads them (and one by one to a node that does not), and
handles a node's batch in order."""

from __future__ import annotations

import asyncio
import json

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from sample_workflows import FANOUT_3

from agentflow.transport import BATCHES_METADATA
from agentflow.v1 import node_pb2, types_pb2

pytestmark = pytest.mark.component


async def _join(cp, *, batches: bool):
    node = cp.node("n1")
    await node.register()
    await node.connect(batches=batches)
    await node.wait_status(types_pb2.NODE_STATUS_READY)
    return node


def _success(a: types_pb2.Assignment, output: object) -> node_pb2.NodeMessage:
    return node_pb2.NodeMessage(
        result=types_pb2.StepResult(
            run_id=a.run_id,
            step=a.step,
            attempt=a.attempt,
            outcome=types_pb2.STEP_OUTCOME_SUCCEEDED,
            output_json=json.dumps(output),
            duration=Duration(nanos=1_000_000),
        )
    )


async def test_the_placements_of_one_pass_reach_a_node_that_reads_batches_as_one_batch(cp, echo_wasm) -> None:
    node = await _join(cp, batches=True)
    assert dict(await node.call.initial_metadata()).get(BATCHES_METADATA) == "1"
    await cp.push(echo_wasm)
    await cp.submit(FANOUT_3)
    got = sorted([(await node.assignment()).step for _ in range(3)])
    assert got == ["a", "b", "c"]
    assert 3 in node.batches  # the three of one pass, in one message


async def test_a_node_that_does_not_read_batches_gets_messages_one_by_one(cp, echo_wasm) -> None:
    node = await _join(cp, batches=False)
    assert dict(await node.call.initial_metadata()).get(BATCHES_METADATA) == "1"  # the control plane reads them
    await cp.push(echo_wasm)
    run_id = await cp.submit(FANOUT_3)
    assignments = [await node.assignment() for _ in range(3)]
    for a in assignments:
        await node.finish(a, a.step)
    run = await cp.wait_run(run_id, types_pb2.RUN_STATUS_SUCCEEDED)
    assert {s.name: json.loads(s.output_json) for s in run.steps} == {"a": "a", "b": "b", "c": "c"}
    assert node.batches == []


async def test_a_batch_of_results_is_applied_in_order_and_each_is_acked(cp, echo_wasm) -> None:
    node = await _join(cp, batches=True)
    await cp.push(echo_wasm)
    run_id = await cp.submit(FANOUT_3)
    assignments = [await node.assignment() for _ in range(3)]
    await node.send(
        node_pb2.NodeMessage(batch=node_pb2.NodeMessages(messages=[_success(a, a.step) for a in assignments]))
    )
    for a in assignments:
        ack = await node.ack(a)
        assert not ack.stale
    run = await cp.wait_run(run_id, types_pb2.RUN_STATUS_SUCCEEDED)
    assert {s.name: json.loads(s.output_json) for s in run.steps} == {"a": "a", "b": "b", "c": "c"}


async def test_a_batch_inside_a_batch_ends_the_stream_as_invalid_argument(cp) -> None:
    node = await _join(cp, batches=True)
    inner = node_pb2.NodeMessage(batch=node_pb2.NodeMessages(messages=[node_pb2.NodeMessage(goodbye={})]))
    await node.send(node_pb2.NodeMessage(batch=node_pb2.NodeMessages(messages=[inner])))
    async with asyncio.timeout(5):
        await node.stream_ended.wait()
    assert node.stream_code == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_batch_cannot_come_before_the_hello(cp) -> None:
    node = cp.node("n1")
    await node.register()
    call = cp.gateway.Connect(metadata=(("agentflow-node-id", node.node_id), (BATCHES_METADATA, "1")))
    hello = node_pb2.NodeMessage(hello=node_pb2.Hello())
    heartbeat = node_pb2.NodeMessage(heartbeat=node_pb2.Heartbeat())
    await call.write(node_pb2.NodeMessage(batch=node_pb2.NodeMessages(messages=[heartbeat, hello])))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async with asyncio.timeout(5):
            async for _ in call:
                pass
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "first message must be a hello" in (caught.value.details() or "")
