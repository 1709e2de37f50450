"""Killed processes and lost nodes: runs carry on and lose nothing."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from cluster import REPO_ROOT, cli, free_port, nodes_ready, start_controlplane, start_noded, wait_for, write_workflow

pytestmark = pytest.mark.integration

SLEEP = REPO_ROOT / "tests" / "agents" / "sleep.wasm"


def chain_workflow(path: Path, *, name: str, steps: int, ms: int) -> Path:
    agents = []
    for i in range(steps):
        dep = f"\n    dependsOn: [s{i - 1}]" if i else ""
        agents.append(f"  - name: s{i}\n    module: {SLEEP}\n    input: {{ms: {ms}}}{dep}")
    return write_workflow(
        path, f"apiVersion: agentflow/v1\nkind: Workflow\nname: {name}\nversion: '1'\nagents:\n" + "\n".join(agents)
    )


def step_status(server: str, run_id: str) -> dict[str, str]:
    result = cli(server, "status", run_id, "--json", timeout=15)
    if result.code != 0:
        return {}
    return {s["name"]: s["status"] for s in result.json()["steps"]}


def test_node_down_moves_its_step_to_another_node(cluster, tmp_path: Path):
    wf = chain_workflow(tmp_path / "one.yaml", name="one", steps=1, ms=3000)
    run_id = cli(cluster.server, "run", str(wf), "--json").json()["run_id"]
    wait_for(lambda: step_status(cluster.server, run_id).get("s0") == "running", timeout=30, what="s0 to run")
    alpha = cluster.nodes[0]
    alpha.kill()
    cluster.add_node("beta")

    result = cli(cluster.server, "status", run_id, "--wait", "--json")
    assert result.code == 0, result.out + result.err + cluster.logs()
    step = result.json()["steps"][0]
    assert step["status"] == "succeeded"
    assert step["node"] == "beta"
    assert step["attempt"] == 2  # the lost attempt 1 is fenced off
    nodes = {n["name"]: n["status"] for n in cli(cluster.server, "nodes", "--json").json()}
    assert nodes == {"alpha": "down", "beta": "ready"}


def test_two_nodes_share_a_fanout(cluster):
    cluster.add_node("beta")
    result = cli(cluster.server, "run", "examples/fanout.yaml", "--wait", "--json")
    assert result.code == 0, result.err
    run = result.json()
    used = {s["node"] for s in run["steps"]}
    assert used == {"alpha", "beta"}
    assert run["outputs"]["gather"] == {"count": 24, "sum": 4900}


def test_node_selector_places_on_matching_node(cluster, tmp_path: Path):
    cluster.add_node("gpu-box", labels="gpu=a100,zone=eu")
    wf = write_workflow(
        tmp_path / "sel.yaml",
        f"""\
apiVersion: agentflow/v1
kind: Workflow
name: sel
version: "1"
agents:
  - name: picky
    module: {SLEEP}
    nodeSelector: {{gpu: a100}}
""",
    )
    result = cli(cluster.server, "run", str(wf), "--wait", "--json")
    assert result.code == 0, result.err
    assert result.json()["steps"][0]["node"] == "gpu-box"


def test_controlplane_killed_mid_run_resumes_from_its_database(tmp_path: Path, built_agents):
    port = free_port()
    cp_dir = tmp_path / "cp"
    # The node redials with backoff of up to 5 s; a TTL longer than that keeps it from being
    # declared down (and s1 requeued) just because it came back between two dials.
    cp = start_controlplane(cp_dir, listen=f"127.0.0.1:{port}", ttl="30s")
    server = cp.state["grpc"]
    node = start_noded(tmp_path / "node", server, name="alpha")
    try:
        wait_for(lambda: nodes_ready(server, 1), timeout=30, what="the node")
        wf = chain_workflow(tmp_path / "chain.yaml", name="chain", steps=3, ms=3000)
        run_id = cli(server, "run", str(wf), "--json").json()["run_id"]
        wait_for(lambda: step_status(server, run_id).get("s1") == "running", timeout=30, what="s1 to run")

        cp.kill()  # SIGKILL: no shutdown, no goodbye
        cp = start_controlplane(cp_dir, listen=f"127.0.0.1:{port}", ttl="30s")

        result = cli(server, "status", run_id, "--wait", "--json")
        assert result.code == 0, result.out + result.err + cp.log_tail() + node.log_tail()
        run = result.json()
        assert run["status"] == "succeeded"
        assert run["outputs"] == {f"s{i}": {"slept": 3000} for i in range(3)}
        # s1 kept running on the node while the control plane was away; its result was
        # delivered after the reconnect, so it needed no second attempt.
        assert [s["attempt"] for s in run["steps"]] == [1, 1, 1]
    finally:
        node.stop()
        cp.stop()


def test_noded_restart_redelivers_results_from_its_outbox(tmp_path: Path, built_agents):
    """A result that finished while the control plane was away survives a node restart."""
    port = free_port()
    cp_dir = tmp_path / "cp"
    cp = start_controlplane(cp_dir, listen=f"127.0.0.1:{port}", ttl="30s")
    server = cp.state["grpc"]
    node = start_noded(tmp_path / "node", server, name="alpha")
    try:
        wait_for(lambda: nodes_ready(server, 1), timeout=30, what="the node")
        wf = chain_workflow(tmp_path / "one.yaml", name="one", steps=1, ms=4000)
        run_id = cli(server, "run", str(wf), "--json").json()["run_id"]
        wait_for(lambda: step_status(server, run_id).get("s0") == "running", timeout=30, what="s0 to run")
        cp.stop(signal.SIGKILL)
        # The step finishes with nobody to tell; its result must land in the node's outbox.
        outbox = tmp_path / "node" / "noded.db"
        wait_for(lambda: _outbox_size(outbox) == 1, timeout=30, what="the result in the outbox")
        node.stop()  # graceful stop of the node with an unacked result on disk

        cp = start_controlplane(cp_dir, listen=f"127.0.0.1:{port}", ttl="30s")
        node = start_noded(tmp_path / "node", server, name="alpha")
        result = cli(server, "status", run_id, "--wait", "--json")
        assert result.code == 0, result.out + result.err + node.log_tail()
        run = result.json()
        assert run["outputs"] == {"s0": {"slept": 4000}}
        assert run["steps"][0]["attempt"] == 1
        wait_for(lambda: _outbox_size(outbox) == 0, timeout=30, what="the acked result to leave the outbox")
    finally:
        node.stop()
        cp.stop()


def _outbox_size(db: Path) -> int:
    import sqlite3

    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return int(conn.execute("SELECT count(*) FROM outbox").fetchone()[0])
    except sqlite3.Error:
        return -1


def _up(data_dir: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "agentflow.cli.main", "up", "--data-dir", str(data_dir), "--port", str(port),
         "--metrics-port", "0"],
        cwd=REPO_ROOT, stdout=log.open("ab"), stderr=subprocess.STDOUT,
    )  # fmt: skip


def _daemon_pids(data_dir: Path) -> list[int]:
    pids = []
    for state in (data_dir / "controlplane" / "controlplane.json", data_dir / "noded" / "noded.json"):
        with contextlib.suppress(OSError, ValueError, KeyError):
            pids.append(int(json.loads(state.read_text())["pid"]))
    return pids


@pytest.mark.parametrize("how", ["sigkill", "ctrl-c"])
def test_agentflow_up_restarted_mid_run_finishes_the_run(tmp_path: Path, built_agents, how: str):
    port = free_port()
    data_dir = tmp_path / "data"
    server = f"127.0.0.1:{port}"
    log = tmp_path / "up.log"
    up = _up(data_dir, port, log)
    try:
        wait_for(lambda: nodes_ready(server, 1), timeout=60, what="agentflow up")
        assert f"agentflow node status --data-dir {data_dir / 'noded'}" in log.read_text()
        local = cli(server, "node", "status", "--data-dir", str(data_dir / "noded"), "--json")
        assert local.code == 0 and local.json()["connected"] is True, local.err
        wf = chain_workflow(tmp_path / "chain.yaml", name="chain", steps=3, ms=3000)
        run_id = cli(server, "run", str(wf), "--json").json()["run_id"]
        wait_for(lambda: step_status(server, run_id).get("s1") == "running", timeout=30, what="s1 to run")

        if how == "sigkill":
            pids = _daemon_pids(data_dir)
            assert len(pids) == 2
            up.kill()
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
            wait_for(lambda: not any(_alive(p) for p in pids), timeout=20, what="the daemons to die")
        else:
            up.send_signal(signal.SIGINT)
        assert up.wait(30) in (0, -signal.SIGKILL)
        assert cli(server, "nodes").code == 3  # really down

        up = _up(data_dir, port, log)
        result = cli(server, "status", run_id, "--wait", "--json")
        assert result.code == 0, result.out + result.err + log.read_text()[-3000:]
        run = result.json()
        assert run["status"] == "succeeded"
        assert run["outputs"] == {f"s{i}": {"slept": 3000} for i in range(3)}
    finally:
        up.send_signal(signal.SIGINT)
        try:
            up.wait(30)
        except subprocess.TimeoutExpired:
            up.kill()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False
