"""A full disk under the control plane's data dir: new work is refused with the reason, nothing is lost.

The data dir lives on a small tmpfs that the test fills to the last page (mounting needs root).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cluster import REPO_ROOT, cli, nodes_ready, start_controlplane, start_noded, wait_for, write_workflow
from disks import fill, mounted_tmpfs

pytestmark = pytest.mark.integration

SLEEP = REPO_ROOT / "tests" / "agents" / "sleep.wasm"
ECHO = REPO_ROOT / "tests" / "agents" / "echo.wasm"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    with mounted_tmpfs(tmp_path / "disk") as disk:
        yield disk


def chain(path: Path) -> Path:
    return write_workflow(
        path,
        "apiVersion: agentflow/v1\nkind: Workflow\nname: chain\nversion: '1'\nagents:\n"
        f"  - name: s0\n    module: {SLEEP}\n    input: {{ms: 4000}}\n"
        f"  - name: s1\n    module: {SLEEP}\n    input: {{ms: 10}}\n    dependsOn: [s0]\n",
    )


def finished_on_node(node) -> float:
    body = httpx.get(f"http://{node.state['metrics']}/metrics", timeout=10).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in body.splitlines()
        if line.startswith("agentflow_node_step_executions_total{")
    )


def test_a_full_disk_refuses_new_work_and_loses_no_result(small_disk: Path, tmp_path: Path, built_agents):
    cp = start_controlplane(small_disk / "cp", ttl="30s")
    server = cp.state["grpc"]
    node = start_noded(tmp_path / "node", server, name="alpha")
    try:
        wait_for(lambda: nodes_ready(server, 1), timeout=30, what="the node")
        wf = chain(tmp_path / "chain.yaml")
        run_id = cli(server, "run", str(wf), "--json").json()["run_id"]

        def s0_running() -> bool:
            result = cli(server, "status", run_id, "--json", timeout=15)
            return result.code == 0 and result.json()["steps"][0]["status"] == "running"

        wait_for(s0_running, timeout=30, what="s0 to run")
        filler = fill(small_disk)

        # a new run is refused with the reason, and leaves no trace
        big = tmp_path / "big.json"
        big.write_text(json.dumps({"text": "x" * 900_000}))
        refused = cli(server, "run", str(wf), "--input-file", str(big), "--json")
        assert refused.code == 1, refused.out + refused.err
        assert "RESOURCE_EXHAUSTED" in refused.err and "the disk is full" in refused.err, refused.err
        assert [r["run_id"] for r in cli(server, "runs", "--json").json()] == [run_id]

        # so is a module upload, without leaving a partial file behind
        pushed = cli(server, "module", "push", str(ECHO))
        assert pushed.code == 1
        assert "no space left to store the module" in pushed.err, pushed.err
        stored = cli(server, "module", "list", "--json").json()
        assert [m["name"] for m in stored] == ["sleep.wasm"]
        assert [p.name for p in (small_disk / "cp" / "modules" / "sha256").iterdir() if p.name.startswith(".")] == []

        # s0 ends on the node while the disk is still full; its result must survive that
        wait_for(lambda: finished_on_node(node) >= 1, timeout=30, what="s0 to finish on the node")
        assert cp.proc.poll() is None, "the control plane died of a full disk:\n" + cp.log_tail()
        filler.unlink()

        done = cli(server, "status", run_id, "--wait", "--json")
        assert done.code == 0, done.out + done.err + cp.log_tail() + node.log_tail()
        run = done.json()
        assert run["outputs"] == {"s0": {"slept": 4000}, "s1": {"slept": 10}}
        assert [s["attempt"] for s in run["steps"]] == [1, 1]
        # and the control plane takes new work again
        again = cli(server, "module", "push", str(ECHO))
        assert again.code == 0, again.err
    finally:
        node.stop()
        cp.stop()
