"""A node that says goodbye (shutting down) gets no new steps; its results still count."""

from __future__ import annotations

import sqlite3

import pytest
from sample_workflows import ONE_STEP

from agentflow.v1 import node_pb2, types_pb2

pytestmark = pytest.mark.component


async def test_a_stopping_node_finishes_its_step_and_gets_no_new_one(cp, echo_wasm) -> None:
    await cp.push(echo_wasm)
    a = await cp.node("a").join()
    first_run = await cp.submit(ONE_STEP)
    first = await a.assignment()
    await a.started(first)

    await a.send(node_pb2.NodeMessage(goodbye=node_pb2.Goodbye()))
    await a.wait_status(types_pb2.NODE_STATUS_STOPPING)
    second_run = await cp.submit(ONE_STEP)

    async def blocked() -> bool:
        return (await cp.step(second_run, "only")).error == "waiting: no ready nodes (1 stopping)"

    await cp.eventually(blocked, what="the new step waiting for a ready node")
    await a.quiet("assign", 0.3)
    await a.result(first, output={"done": 1})
    assert (await a.ack(first)).stale is False
    await cp.wait_run(first_run, types_pb2.RUN_STATUS_SUCCEEDED)

    # the node restarts: a new stream and hello make it ready, and it takes the waiting step
    await a.drop()
    await a.connect()
    await a.wait_status(types_pb2.NODE_STATUS_READY)
    await a.finish(await a.assignment(), {"done": 2})
    await cp.wait_run(second_run, types_pb2.RUN_STATUS_SUCCEEDED)
    with sqlite3.connect(cp.data_dir / "state.db") as db:
        events = [r[0] for r in db.execute("SELECT type FROM events WHERE node = 'a' ORDER BY seq")]
    assert events.count("node.stopping") == 1
    assert events.index("node.stopping") < len(events) - 1 - events[::-1].index("node.ready")
