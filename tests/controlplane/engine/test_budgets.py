"""LLM budgets as a resource: grants reserved at placement, steps waiting for budget with the
reason shown, settlement from the node's count, thresholds crossed, spent budgets failing steps."""

from __future__ import annotations

import json
import sqlite3

import pytest

from agentflow.v1 import node_pb2, types_pb2

pytestmark = pytest.mark.component

TWO_LLM_STEPS = """
apiVersion: agentflow/v1
kind: Workflow
name: ai
version: "1"
budget: {tokens: 100}
agents:
  - {name: a, module: ./echo.wasm, capabilities: {llm: true}}
  - {name: b, module: ./echo.wasm, capabilities: {llm: true}}
  - {name: c, module: ./echo.wasm, capabilities: {llm: true}, dependsOn: [a, b]}
"""

STEP_BUDGET = """
apiVersion: agentflow/v1
kind: Workflow
name: capped
version: "1"
agents:
  - name: only
    module: ./echo.wasm
    capabilities: {llm: true}
    budget: {tokens: 50, usd: 1}
    retry: {maxAttempts: 3, backoff: 0s}
"""


def usage(tokens: int, cost: float = 0.0) -> types_pb2.LLMUsage:
    return types_pb2.LLMUsage(calls=1, input_tokens=tokens // 2, output_tokens=tokens - tokens // 2, cost_usd=cost)


def threshold_events(cp, run_id: str) -> list[float]:
    with sqlite3.connect(cp.data_dir / "state.db") as db:
        rows = db.execute(
            "SELECT data_json FROM events WHERE run_id = ? AND type = 'cost.threshold_met' ORDER BY seq", (run_id,)
        ).fetchall()
    return [json.loads(r[0])["fraction"] for r in rows]


async def test_steps_share_the_run_budget_one_grant_at_a_time(cp, echo_wasm) -> None:
    await cp.push(echo_wasm)
    node = await cp.node("n1").join()
    run_id = await cp.submit(TWO_LLM_STEPS)
    first = await node.assignment()
    assert (first.grant.HasField("tokens"), first.grant.tokens, first.grant.HasField("usd")) == (True, 100, False)
    other = "b" if first.step == "a" else "a"
    await node.quiet("assign", 0.3)  # the other step waits: the first holds the whole budget
    waiting = await cp.step(run_id, other)
    assert waiting.error == "waiting: waiting for LLM budget: running steps hold 100 tokens of the run's"
    run = await cp.get_run(run_id)
    assert (run.budget.tokens, run.reserved.tokens) == (100, 100)

    await node.finish(first, {"ok": 1}, llm=usage(60))  # it used 60: 40 are left for the other
    second = await node.assignment(other)
    assert second.grant.tokens == 40
    run = await cp.get_run(run_id)
    assert (run.llm.input_tokens + run.llm.output_tokens, run.reserved.tokens) == (60, 40)
    assert threshold_events(cp, run_id) == [0.5]

    await node.finish(second, {"ok": 2}, llm=usage(40))
    run = await cp.wait_run(run_id, types_pb2.RUN_STATUS_FAILED)  # c finds the budget spent
    c = cp.step_of(run, "c")
    assert c.error == "the run's LLM budget is spent (100 of 100 tokens)"
    assert threshold_events(cp, run_id) == [0.5, 0.8, 1.0]  # each crossed once
    assert (cp.step_of(run, "a").llm.calls, run.llm.calls, run.reserved.tokens) == (1, 2, 0)


async def test_a_step_budget_spans_its_attempts(cp, echo_wasm) -> None:
    await cp.push(echo_wasm)
    node = await cp.node("n1").join()
    run_id = await cp.submit(STEP_BUDGET)
    first = await node.assignment()
    assert (first.grant.tokens, first.grant.usd) == (50, 1.0)
    await node.finish(first, outcome=types_pb2.STEP_OUTCOME_FAILED, error="exit 1", llm=usage(30, 0.25))
    second = await node.assignment()
    assert (second.attempt, second.grant.tokens, second.grant.usd) == (2, 20, 0.75)  # what is left of it
    await node.finish(second, outcome=types_pb2.STEP_OUTCOME_FAILED, error="exit 1", llm=usage(20, 0.1))
    run = await cp.wait_run(run_id, types_pb2.RUN_STATUS_FAILED)
    step = cp.step_of(run, "only")
    assert step.attempt == 2  # no third attempt: nothing left to spend
    assert step.error == "the step's LLM budget is spent ($0.3500 of $1.0000, 50 of 50 tokens)"
    assert (step.llm.calls, step.llm.cost_usd) == (2, pytest.approx(0.35))


async def test_a_lost_attempt_counts_what_its_journal_says_it_spent(cp, echo_wasm) -> None:
    await cp.push(echo_wasm)
    node = await cp.node("n1").join()
    run_id = await cp.submit(STEP_BUDGET)
    first = await node.assignment()
    await node.started(first)
    entry = {
        "call_index": 0,
        "cost_usd": 0.5,
        "cache": "miss",
        "response": {"usage": [10, 0, 5]},  # the router's form: input, cached input, output tokens
    }
    await node.send(
        node_pb2.NodeMessage(
            journal=node_pb2.Journal(
                entries=[types_pb2.JournalEntry(run_id=run_id, step="only", attempt=1, call_index=0,
                                                entry_json=json.dumps(entry))]
            )
        )
    )  # fmt: skip
    await node.expect("journal_ack")
    await node.drop()
    await node.register()
    await node.connect()  # back without the attempt: it was lost
    again = await node.assignment()
    assert (again.attempt, again.grant.tokens, again.grant.usd) == (2, 35, 0.5)
