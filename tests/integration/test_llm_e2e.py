"""AI agents end to end: a real control plane, router and noded; the router answers with its
offline dev provider. A step's LLM calls are attributed, and a retried step replays what its
earlier attempt was answered instead of asking again."""

from __future__ import annotations

import json
from collections.abc import Iterator
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


@pytest.fixture
def ai_cluster(tmp_path: Path, built_agents: Path) -> Iterator[tuple[str, Daemon]]:
    cp = start_controlplane(tmp_path / "cp")
    router = start_router(tmp_path / "router")
    server = cp.state["grpc"]
    node = start_noded(tmp_path / "node", server, name="n1", extra=["--router", router.state["http"]])
    try:
        wait_for(lambda: nodes_ready(server, 1), timeout=30, what="the node")
        yield server, router
    finally:
        node.stop()
        router.stop()
        cp.stop()


def spend(router: Daemon, run: str, step: str, attempt: int) -> dict[str, Any]:
    url = f"http://{router.state['http']}/v1/agentflow/spend"
    data: dict[str, Any] = httpx.get(url, params={"run": run, "step": step, "attempt": attempt}, timeout=10).json()
    return data


def test_the_example_ai_agent_summarises_its_input_offline(ai_cluster) -> None:
    server, router = ai_cluster
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
    server, router = ai_cluster
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
