"""`agentflow drain` / `undrain` against real control-plane and noded processes."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from cluster import REPO_ROOT, cli, sleep_workflow, wait_for

pytestmark = pytest.mark.integration


def nap(server: str, run_id: str) -> dict:
    return cli(server, "status", run_id, "--json", timeout=15).json()["steps"][0]


def node_metric(cluster, name: str) -> str:
    body = httpx.get(f"http://{cluster.nodes[0].state['metrics']}/metrics", timeout=10).text
    return next(line for line in body.splitlines() if line.startswith(name + " "))


def test_drain_waits_for_the_running_step_and_undrain_resumes_placement(cluster, tmp_path: Path):
    server = cluster.server
    busy = cli(server, "run", str(sleep_workflow(tmp_path / "busy.yaml", name="busy", ms=5000)), "--json")
    run_id = busy.json()["run_id"]
    wait_for(lambda: nap(server, run_id)["status"] == "running", timeout=30, what="the step to run")

    drain = subprocess.run(
        [sys.executable, "-m", "agentflow.cli.main", "--server", server, "drain", "alpha", "--wait"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert drain.returncode == 0, drain.stderr + cluster.logs()
    assert "alpha: waiting for 1 step(s) to finish" in drain.stdout
    assert drain.stdout.strip().splitlines()[-1] == "alpha: draining, 0 step(s) on it, no deadline"
    # --wait returned only after the step finished, on the node it started on, at attempt 1
    step = nap(server, run_id)
    assert (step["status"], step["node"], step["attempt"]) == ("succeeded", "alpha", 1)

    node = cli(server, "nodes", "--json").json()[0]
    assert (node["status"], node["draining"], node["running"]) == ("draining", True, 0)
    wait_for(lambda: node_metric(cluster, "agentflow_node_draining") == "agentflow_node_draining 1.0",
             timeout=15, what="the node to learn it drains")  # fmt: skip

    later = cli(server, "run", str(sleep_workflow(tmp_path / "later.yaml", name="later", ms=10)), "--json")
    later_id = later.json()["run_id"]
    wait_for(lambda: "draining" in nap(server, later_id)["error"], timeout=15, what="the step to wait")
    assert nap(server, later_id)["status"] == "ready"

    undrain = cli(server, "undrain", "alpha")
    assert undrain.code == 0, undrain.err
    # the waiting step may already be placed in the commit that undrained the node
    assert re.fullmatch(r"alpha: ready, [01] step\(s\) on it, takes new steps", undrain.out.strip()), undrain.out
    done = cli(server, "status", later_id, "--wait", "--json")
    assert done.code == 0, done.err + cluster.logs()
    assert done.json()["outputs"] == {"nap": {"slept": 10}}
    assert node_metric(cluster, "agentflow_node_draining") == "agentflow_node_draining 0.0"


def test_drain_deadline_moves_a_running_step_to_another_node(cluster, tmp_path: Path):
    server = cluster.server
    run_id = cli(server, "run", str(sleep_workflow(tmp_path / "long.yaml", name="long", ms=8000)), "--json").json()[
        "run_id"
    ]
    wait_for(lambda: nap(server, run_id)["status"] == "running", timeout=30, what="the step to run on alpha")
    cluster.add_node("beta")

    result = cli(server, "drain", "alpha", "--deadline", "0s", "--json")
    assert result.code == 0, result.err
    assert result.json()["draining"] is True and result.json()["drain_deadline"] is not None

    finished = cli(server, "status", run_id, "--wait", "--json")
    assert finished.code == 0, finished.err + cluster.logs()
    step = finished.json()["steps"][0]
    assert (step["status"], step["node"], step["attempt"]) == ("succeeded", "beta", 2)
    # alpha really stopped the cancelled attempt: nothing runs there any more
    node = {n["name"]: n for n in cli(server, "nodes", "--json").json()}["alpha"]
    assert node["running"] == 0
    wait_for(lambda: node_metric(cluster, "agentflow_node_running_steps") == "agentflow_node_running_steps 0.0",
             timeout=15, what="alpha to stop the cancelled step")  # fmt: skip


def test_drain_bad_input(cluster):
    bad = cli(cluster.server, "drain", "alpha", "--deadline", "soon")
    assert bad.code == 2
    assert "argument --deadline: 'soon'" in bad.err
    missing = cli(cluster.server, "drain", "nope")
    assert missing.code == 1
    assert 'node "nope" not found' in missing.err
    node = cli(cluster.server, "nodes", "--json").json()[0]
    assert (node["status"], node["draining"]) == ("ready", False)
