"""The LLM replay journal on the control plane: a node's entries are stored and acked, a resend
is a no-op, and the step's next attempt, on any node, carries them."""

from __future__ import annotations

import json

import pytest
from sample_workflows import ONE_STEP

from agentflow.v1 import node_pb2, types_pb2

pytestmark = pytest.mark.component

LLM_STEP = ONE_STEP.replace("    module: ./echo.wasm\n", "    module: ./echo.wasm\n    capabilities: {llm: true}\n")


def entry(a: types_pb2.Assignment, call: int) -> types_pb2.JournalEntry:
    body = json.dumps({"run": a.run_id, "step": a.step, "attempt": a.attempt, "call_index": call, "response": {}})
    return types_pb2.JournalEntry(run_id=a.run_id, step=a.step, attempt=a.attempt, call_index=call, entry_json=body)


async def test_entries_are_acked_and_go_with_the_next_attempt_to_another_node(cp, echo_wasm) -> None:
    await cp.push(echo_wasm)
    a = await cp.node("a").join()
    run_id = await cp.submit(LLM_STEP)
    first = await a.assignment()
    assert list(first.journal) == []
    await a.started(first)
    sent = [entry(first, 0), entry(first, 1)]
    await a.send(node_pb2.NodeMessage(journal=node_pb2.Journal(entries=sent)))
    ack = await a.expect("journal_ack")
    assert [(e.attempt, e.call_index, e.entry_json) for e in ack.entries] == [(1, 0, ""), (1, 1, "")]
    await a.send(node_pb2.NodeMessage(journal=node_pb2.Journal(entries=sent[:1])))  # a resend
    await a.expect("journal_ack")

    b = await cp.node("b").join()
    # a restarts without the attempt, which is placed again; a is draining, so it goes to b
    await cp.engine.drains.drain("a", deadline=None)
    await a.drop()
    await a.register()
    await a.connect()
    second = await b.assignment()
    assert second.attempt == 2
    assert [(e.attempt, e.call_index) for e in second.journal] == [(1, 0), (1, 1)]
    assert json.loads(second.journal[1].entry_json)["call_index"] == 1
    await b.finish(second, {"ok": True})
    await cp.wait_run(run_id, types_pb2.RUN_STATUS_SUCCEEDED)


async def test_a_malformed_entry_ends_the_stream_as_invalid(cp) -> None:
    a = await cp.node("a").join()
    bad = types_pb2.JournalEntry(run_id="r", step="s", attempt=0, call_index=0, entry_json="{}")
    await a.send(node_pb2.NodeMessage(journal=node_pb2.Journal(entries=[bad])))
    await a.stream_ended.wait()
    assert a.stream_code is not None and a.stream_code.name == "INVALID_ARGUMENT"
