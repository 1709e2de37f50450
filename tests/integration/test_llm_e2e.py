"""AI agents end to end: a real control plane, router and noded; the router answers with its
offline dev provider. A step's LLM calls are attributed, and a retried step replays what its
earlier attempt was answered instead of asking again."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest
from cluster import (
    REPO_ROOT,
    Daemon,
    cli,
    nodes_ready,
    start_controlplane,
    start_noded,
    start_router,
    wait_for,
    write_workflow,
)

pytestmark = pytest.mark.integration

LLM_AGENT = REPO_ROOT / "tests" / "agents" / "llm.wasm"
SUMMARIZE = REPO_ROOT / "examples" / "summarize.yaml"


def spend(router: Daemon, run: str, step: str, attempt: int) -> dict[str, Any]:
    url = f"http://{router.state['http']}/v1/agentflow/spend"
    data: dict[str, Any] = httpx.get(url, params={"run": run, "step": step, "attempt": attempt}, timeout=10).json()
    return data


def test_the_example_ai_agent_summarises_its_input_offline(ai_cluster) -> None:
    server, router = ai_cluster.server, ai_cluster.router
    text = "Steps of a workflow run as WebAssembly and ask their LLM through the host's router."
    done = cli(server, "run", str(SUMMARIZE), "--input", json.dumps({"text": text}), "--wait", "--json")
    assert done.code == 0, done.out + done.err
    run = done.json()
    summary = run["outputs"]["summarize"]["summary"]
    assert summary.startswith("[agentflow dev provider]")  # the offline provider says what it is
    assert "Summarise the following text in one sentence" in summary
    assert run["outputs"]["summarize"]["chars"] == len(text)
    assert "summarised with one llm.complete call" in run["steps"][0]["stderr"]
    assert spend(router, run["run_id"], "summarize", 1)["calls"] == 1  # attributed to the attempt

    status = cli(server, "router", "status", "--router", router.state["http"], "--json")
    assert status.code == 0, status.err
    assert status.json()["dev"] is True and status.json()["cache"]["entries"] >= 1


def test_a_retried_step_replays_its_earlier_llm_answers_for_free(ai_cluster, tmp_path: Path) -> None:
    server, router = ai_cluster.server, ai_cluster.router
    calls = [{"prompt": "first question", "model": "m", "temperature": 0},
             {"prompt": "second question", "model": "m", "temperature": 0}]  # fmt: skip
    workflow = write_workflow(
        tmp_path / "ask.yaml",
        "apiVersion: agentflow/v1\nkind: Workflow\nname: ask\nversion: '1'\nagents:\n"
        f"  - name: ask\n    module: {LLM_AGENT}\n    capabilities: {{llm: true}}\n"
        f"    retry: {{maxAttempts: 2, backoff: 100ms}}\n"
        f"    input: {json.dumps({'calls': calls, 'crash': 1})}\n",
    )
    done = cli(server, "run", str(workflow), "--wait", "--json")
    assert done.code == 1, done.out + done.err  # it crashes after its calls, twice
    run = done.json()
    assert run["steps"][0]["attempt"] == 2 and run["steps"][0]["error"] == "exited with code 9"

    def both_recorded() -> tuple[dict[str, Any], dict[str, Any]] | None:
        first, second = spend(router, run["run_id"], "ask", 1), spend(router, run["run_id"], "ask", 2)
        return (first, second) if first["calls"] == 2 and second["calls"] == 2 else None

    first, second = wait_for(both_recorded, timeout=10, what="both attempts in the router's ledger")
    assert first["upstream_calls"] == 2 and first["replays"] == 0
    assert second["upstream_calls"] == 0 and second["replays"] == 2  # asked nothing new
    assert second["cost_usd"] == 0


def test_the_journal_survives_the_loss_of_its_node(tmp_path: Path, built_agents: Path) -> None:
    """Two hosts, each with its router; the first dies (noded and router, SIGKILL) after the step's
    two LLM calls. The control plane, which got the journal through the node's outbox, hands it
    to the second node with the next attempt: that one replays both calls and asks nothing."""
    cp = start_controlplane(tmp_path / "cp", ttl="2s")
    server = cp.state["grpc"]
    routers = [start_router(tmp_path / f"router-{n}") for n in (1, 2)]
    first = start_noded(tmp_path / "node-1", server, name="first", extra=["--router", routers[0].state["http"]])
    second: Daemon | None = None
    try:
        wait_for(lambda: nodes_ready(server, 1), timeout=30, what="the first node")
        calls = [{"prompt": "what is 6 x 7?", "model": "m", "temperature": 0},
                 {"prompt": "and 7 x 8?", "model": "m", "temperature": 0}]  # fmt: skip
        workflow = write_workflow(
            tmp_path / "ask.yaml",
            "apiVersion: agentflow/v1\nkind: Workflow\nname: ask\nversion: '1'\nagents:\n"
            f"  - name: ask\n    module: {LLM_AGENT}\n    capabilities: {{llm: true}}\n    timeout: 60s\n"
            f"    input: {json.dumps({'calls': calls, 'hang_on_attempt': 1})}\n",
        )
        run_id = cli(server, "run", str(workflow), "--json").json()["run_id"]

        def journaled_on_first() -> bool:
            return spend(routers[0], run_id, "ask", 1).get("calls", 0) == 2

        wait_for(journaled_on_first, timeout=30, what="both calls on the first node")
        # the entries reach the control plane through the node's outbox; then the host dies
        wait_for(lambda: journal_rows(tmp_path / "cp", run_id) == 2, timeout=10, what="the journal upstream")
        first.kill()
        routers[0].kill()

        second = start_noded(tmp_path / "node-2", server, name="second", extra=["--router", routers[1].state["http"]])
        done = cli(server, "status", run_id, "--wait", "--json")
        assert done.code == 0, done.out + done.err + cp.log_tail()
        run = done.json()
        assert (run["steps"][0]["attempt"], run["steps"][0]["node"]) == (2, "second")
        answers = run["outputs"]["ask"]
        assert [a["response"]["cache"] for a in answers] == ["replay", "replay"]
        ledger = spend(routers[1], run_id, "ask", 2)
        assert (ledger["upstream_calls"], ledger["replays"], ledger["cost_usd"]) == (0, 2, 0)
    finally:
        if second is not None:
            second.stop()
        first.kill()
        for router in routers:
            router.stop()
        cp.stop()


def journal_rows(cp_dir: Path, run_id: str) -> int:
    with sqlite3.connect(cp_dir / "state.db") as db:
        return int(db.execute("SELECT COUNT(*) FROM llm_journal WHERE run_id = ?", (run_id,)).fetchone()[0])


def test_a_run_budget_is_enforced_by_the_router_and_shown_by_status(ai_cluster, tmp_path: Path) -> None:
    server = ai_cluster.server
    calls = [{"prompt": f"question number {i}", "model": "m", "temperature": 0, "max_tokens": 20} for i in range(8)]
    workflow = write_workflow(
        tmp_path / "capped.yaml",
        "apiVersion: agentflow/v1\nkind: Workflow\nname: capped\nversion: '1'\nbudget: {tokens: 60}\nagents:\n"
        f"  - name: ask\n    module: {LLM_AGENT}\n    capabilities: {{llm: true}}\n"
        f"    input: {json.dumps({'calls': calls})}\n",
    )
    done = cli(server, "run", str(workflow), "--wait", "--json")
    assert done.code == 0, done.out + done.err
    run = done.json()
    codes = [c["rc"] for c in run["outputs"]["ask"]]
    answered = [rc for rc in codes if rc > 0]
    assert answered and codes[: len(answered)] == answered  # answered until the grant ran out...
    assert set(codes[len(answered) :]) == {-8}  # ...then refused as over budget (AF_ERR_BUDGET_EXCEEDED)
    spent = run["llm"]["input_tokens"] + run["llm"]["output_tokens"]
    assert 0 < spent <= 60 and run["llm"]["calls"] == len(answered)
    assert run["steps"][0]["llm"]["calls"] == len(answered)
    assert run["budget"] == {"usd": None, "tokens": 60} and run["reserved"]["tokens"] == 0
    assert "token budget exceeded" in run["steps"][0]["stderr"] and "of a grant of 60" in run["steps"][0]["stderr"]

    text = cli(server, "status", run["run_id"])
    assert f"llm: {len(answered)} calls, {spent} tokens" in text.out and "budget 60 tokens" in text.out
