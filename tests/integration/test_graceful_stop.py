"""SIGTERM to noded: running steps finish and their results land before it exits."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
from pathlib import Path

import pytest
from cluster import cli, nodes_ready, sleep_workflow, start_noded, wait_for

pytestmark = pytest.mark.integration


def step_of(server: str, run_id: str) -> dict:
    return cli(server, "status", run_id, "--json", timeout=15).json()["steps"][0]


def start_gamma(cluster, grace: str):
    """A node with a grace period, alone in the cluster (alpha leaves first)."""
    cluster.nodes[0].stop()
    node = start_noded(cluster.root / "node-gamma", cluster.server, name="gamma", extra=["--shutdown-grace", grace])
    cluster.nodes.append(node)
    wait_for(lambda: nodes_ready(cluster.server, 1), timeout=30, what="gamma to be ready")
    return node


def test_sigterm_lets_the_running_step_finish_and_report(cluster, tmp_path: Path):
    gamma = start_gamma(cluster, "60s")
    run_id = cli(cluster.server, "run", str(sleep_workflow(tmp_path / "nap.yaml", ms=5000)), "--json").json()["run_id"]
    wait_for(lambda: step_of(cluster.server, run_id)["status"] == "running", timeout=30, what="the step to run")

    gamma.proc.send_signal(signal.SIGTERM)
    assert gamma.proc.wait(timeout=60) == 0, gamma.log_tail()
    # it exited only after the result was acknowledged: the run is done, on gamma, first attempt
    step = step_of(cluster.server, run_id)
    assert (step["status"], step["node"], step["attempt"]) == ("succeeded", "gamma", 1)
    with sqlite3.connect(cluster.root / "node-gamma" / "noded.db") as db:
        assert db.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0
    with sqlite3.connect(cluster.root / "controlplane" / "state.db") as db:
        events = [r[0] for r in db.execute("SELECT type FROM events WHERE node = 'gamma' ORDER BY seq")]
    assert "node.stopping" in events
    assert "letting running steps finish before stopping" in gamma.log_file.read_text()


def test_a_second_signal_cuts_the_grace_period_short(cluster, tmp_path: Path):
    gamma = start_gamma(cluster, "600s")
    run_id = cli(cluster.server, "run", str(sleep_workflow(tmp_path / "nap.yaml", ms=600_000)), "--json").json()[
        "run_id"
    ]
    wait_for(lambda: step_of(cluster.server, run_id)["status"] == "running", timeout=30, what="the step to run")

    gamma.proc.send_signal(signal.SIGTERM)
    wait_for(lambda: "letting running steps finish" in gamma.log_file.read_text(), timeout=30,
             what="the node to start its grace period")  # fmt: skip
    assert gamma.proc.poll() is None  # still waiting for the step (the grace is 10 minutes)
    gamma.proc.send_signal(signal.SIGTERM)
    try:
        code = gamma.proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        raise AssertionError("noded kept waiting after a second SIGTERM:\n" + gamma.log_tail()) from None
    assert code == 0
    assert "stopping with steps still running (signalled again)" in gamma.log_file.read_text()
