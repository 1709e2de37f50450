"""What an attempt used is kept with its step, and every limit it ran into is an event."""

from __future__ import annotations

import json
import sqlite3

import pytest
from sample_workflows import ONE_STEP

from agentflow.v1 import types_pb2
from agentflow.vocabulary import FailureKind

pytestmark = pytest.mark.component


def limit_events(cp) -> list[dict]:
    with sqlite3.connect(cp.data_dir / "state.db") as db:
        rows = db.execute("SELECT data_json FROM events WHERE type = 'resource.limit_hit' ORDER BY seq").fetchall()
    return [json.loads(data) for (data,) in rows]


async def test_a_succeeded_step_keeps_its_usage_and_a_cut_fetch_is_a_limit_hit(cp, echo_wasm) -> None:
    node = await cp.node("n1").join()
    await cp.push(echo_wasm)
    run_id = await cp.submit(ONE_STEP)
    a1 = await node.assignment()
    usage = types_pb2.ResourceUsage(
        cpu_seconds=0.25, peak_memory_bytes=1 << 20, wall_seconds=0.5, fetched_bytes=524288, host_calls=3,
        limits_hit=[types_pb2.RESOURCE_LIMIT_FETCH_SIZE],
    )  # fmt: skip
    await node.finish(a1, {"v": 1}, usage=usage)
    run = await cp.wait_run(run_id, types_pb2.RUN_STATUS_SUCCEEDED)
    assert cp.step_of(run, "only").usage == usage
    assert limit_events(cp) == [{"workflow": "one", "limit": "fetch size", "fatal": False, "error": ""}]


async def test_the_limit_that_stopped_a_step_is_named_even_by_a_node_that_does_not_list_it(cp, echo_wasm) -> None:
    node = await cp.node("n1").join()
    await cp.push(echo_wasm)
    run_id = await cp.submit(ONE_STEP)
    a1 = await node.assignment()
    await node.started(a1)
    error = "wall time limit of 1.0s reached (timed out)"
    await node.result(a1, outcome=types_pb2.STEP_OUTCOME_FAILED, error=error, failure_kind=FailureKind.TIMEOUT)
    await node.ack(a1)
    run = await cp.wait_run(run_id, types_pb2.RUN_STATUS_FAILED)
    assert cp.step_of(run, "only").error == error
    assert limit_events(cp) == [{"workflow": "one", "limit": "wall time", "fatal": True, "error": error}]
