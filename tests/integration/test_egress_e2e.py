"""Egress end to end: a real control plane and noded. The agent's http.fetch leaves from the node,
to a local HTTP server the step's manifest names, and nowhere else; the worker that runs the
guest has no network of its own, and the node reports its sandbox layers."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from cluster import (
    REPO_ROOT,
    EchoRequest,
    cli,
    http_server,
    nodes_ready,
    start_controlplane,
    start_noded,
    wait_for,
    write_workflow,
)

pytestmark = pytest.mark.integration

AGENT = REPO_ROOT / "tests" / "agents" / "llm.wasm"


@pytest.fixture
def web() -> Iterator[int]:
    with http_server(EchoRequest) as port:
        yield port


def test_an_agent_fetches_what_its_manifest_allows_and_nothing_else(
    tmp_path: Path, built_agents: Path, web: int
) -> None:
    cp = start_controlplane(tmp_path / "cp")
    server = cp.state["grpc"]
    node = start_noded(tmp_path / "node", server, name="n1")
    try:
        wait_for(lambda: nodes_ready(server, 1), timeout=30, what="the node")
        calls = [
            {"url": f"http://127.0.0.1:{web}/hello?x=1"},
            {"url": f"http://localhost:{web}/other-name"},  # same server, a name the manifest lacks
            {"url": "http://169.254.169.254/latest/meta-data/"},
        ]
        workflow = write_workflow(
            tmp_path / "fetch.yaml",
            "apiVersion: agentflow/v1\nkind: Workflow\nname: fetch\nversion: '1'\nagents:\n"
            f"  - name: fetch\n    module: {AGENT}\n"
            f"    capabilities: {{http: {{allowedHosts: ['127.0.0.1:{web}']}}}}\n"
            f"    input: {json.dumps({'op': 'http.fetch', 'calls': calls})}\n",
        )
        done = cli(server, "run", str(workflow), "--wait", "--json")
        assert done.code == 0, done.out + done.err
        run = done.json()
        allowed, other, metadata = run["outputs"]["fetch"]
        assert allowed["rc"] > 0
        assert allowed["response"]["status"] == 200
        assert json.loads(allowed["response"]["body"]) == {"path": "/hello?x=1", "host": f"127.0.0.1:{web}"}
        assert other == {"rc": -2, "response": None} and metadata == {"rc": -2, "response": None}
        stderr = run["steps"][0]["stderr"]
        assert f"localhost:{web} is not in capabilities.http.allowedHosts" in stderr
        assert "169.254.169.254:80 is not in capabilities.http.allowedHosts" in stderr

        [listed] = cli(server, "nodes", "--json").json()
        assert listed["sandbox_layers"] == ["landlock", "netns", "seccomp"]
        workers = psutil.Process(node.proc.pid).children()
        assert workers, "noded keeps a warm worker"
        own_netns = os.readlink("/proc/self/ns/net")
        for worker in workers:
            assert os.readlink(f"/proc/{worker.pid}/ns/net") != own_netns
            status = Path(f"/proc/{worker.pid}/status").read_text()
            assert "Seccomp:\t2" in status  # filter mode
    finally:
        node.stop()
        cp.stop()

    # Each fetch is an http.fetch span under the attempt's agent.execute, in the run's trace.
    spans = [json.loads(line) for line in (tmp_path / "node" / "traces.jsonl").read_text().splitlines()]
    trace_id = "0x" + run["trace_id"]
    [attempt] = [s for s in spans if s["name"] == "agent.execute" and s["context"]["trace_id"] == trace_id]
    fetches = [s for s in spans if s["name"] == "http.fetch" and s["context"]["trace_id"] == trace_id]
    assert [s["parent_id"] for s in fetches] == [attempt["context"]["span_id"]] * 3
    assert [s["attributes"]["url.full"] for s in fetches] == [c["url"] for c in calls]
    assert fetches[0]["attributes"]["http.response.status_code"] == 200
    assert fetches[0]["status"]["status_code"] == "UNSET"
    assert [s["status"]["status_code"] for s in fetches[1:]] == ["ERROR", "ERROR"]
    assert "denied" in fetches[1]["status"]["description"]
