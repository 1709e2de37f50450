"""Each running step lives in its own cgroup with its limits; the node reports its isolation.

This machine offers writable cgroup v1 hierarchies, so the node runs with `cgroup1` and these
tests look at the real kernel files. (cgroup v2 is tested against cgroupfs-shaped trees in
tests/noded/cgroups.)
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cluster import REPO_ROOT, cli, sleep_workflow, start_controlplane, start_noded, wait_for, write_workflow

from noded.cgroups import node_subtree

pytestmark = pytest.mark.integration

ROOT = Path("/sys/fs/cgroup")


def own_cgroup(controller: str) -> str:
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return path
    raise AssertionError(f"no {controller} line in /proc/self/cgroup")


def node_dir(controller: str, cluster) -> Path:
    subtree = node_subtree("alpha", cluster.root / "node-alpha")
    return ROOT / controller / own_cgroup(controller).lstrip("/") / "agentflow" / subtree


def test_running_step_is_confined_by_its_cgroup(cluster, tmp_path: Path):
    nodes = cli(cluster.server, "nodes", "--json").json()
    assert nodes[0]["isolation"] == "cgroup1", (
        "this host should offer writable cgroup v1 memory, cpu and pids hierarchies under /sys/fs/cgroup; "
        f"the node reports {nodes[0]['isolation']!r}"
    )
    wf = write_workflow(
        tmp_path / "confined.yaml",
        f"""\
apiVersion: agentflow/v1
kind: Workflow
name: confined
version: "1"
agents:
  - name: slow
    module: {REPO_ROOT / "tests" / "agents" / "sleep.wasm"}
    input: {{ms: 4000}}
    resources: {{cpu: 250m, memory: 64Mi}}
""",
    )
    run_id = cli(cluster.server, "run", str(wf), "--json").json()["run_id"]
    steps = node_dir("memory", cluster) / "steps"

    def running_step() -> Path | None:
        dirs = [d for d in steps.iterdir() if d.is_dir()] if steps.exists() else []
        if len(dirs) == 1 and (dirs[0] / "cgroup.procs").read_text().split():
            return dirs[0]
        return None

    memory_dir = wait_for(running_step, timeout=30, what="the step's cgroup to hold its worker")
    name = memory_dir.name
    pid = int((memory_dir / "cgroup.procs").read_text().split()[0])
    assert int((memory_dir / "memory.limit_in_bytes").read_text()) == (64 + 128) * 1024 * 1024
    cpu_dir = node_dir("cpu", cluster) / "steps" / name
    assert int((cpu_dir / "cpu.cfs_quota_us").read_text()) == 25_000
    assert int((cpu_dir / "cpu.cfs_period_us").read_text()) == 100_000
    pids_dir = node_dir("pids", cluster) / "steps" / name
    assert (pids_dir / "pids.max").read_text().strip() == "64"
    membership = Path(f"/proc/{pid}/cgroup").read_text()
    subtree = node_subtree("alpha", cluster.root / "node-alpha")
    assert subtree.startswith("alpha-")
    assert f"/agentflow/{subtree}/steps/{name}" in membership
    assert "noded.workers.worker_main" in Path(f"/proc/{pid}/cmdline").read_bytes().decode().replace("\0", " ")

    result = cli(cluster.server, "status", run_id, "--wait", "--json")
    assert result.code == 0, result.err
    # Afterwards the worker is back among the idle workers and the step cgroup is gone.
    wait_for(lambda: not memory_dir.exists() and not cpu_dir.exists() and not pids_dir.exists(), timeout=10,
             what="the step cgroup to be removed")  # fmt: skip
    if os.path.exists(f"/proc/{pid}"):
        assert f"/agentflow/{subtree}/workers" in Path(f"/proc/{pid}/cgroup").read_text()


def test_node_stop_removes_its_cgroups(cluster):
    assert node_dir("memory", cluster).exists()
    cluster.nodes[0].stop()
    wait_for(lambda: not node_dir("memory", cluster).exists(), timeout=10, what="the node's cgroups to be removed")
    assert not node_dir("pids", cluster).exists()


def test_a_second_node_of_the_same_name_leaves_the_first_ones_steps_alone(cluster, tmp_path: Path):
    """Start-up kills leftover step cgroups; another node's running steps are not leftovers."""
    wf = sleep_workflow(tmp_path / "nap.yaml", ms=6000)
    run_id = cli(cluster.server, "run", str(wf), "--json").json()["run_id"]

    def running() -> bool:
        result = cli(cluster.server, "status", run_id, "--json", timeout=15)
        return result.code == 0 and result.json()["steps"][0]["status"] == "running"

    wait_for(running, timeout=30, what="the step to run")
    other_cp = start_controlplane(tmp_path / "other-cp")
    other = start_noded(tmp_path / "other-alpha", str(other_cp.state["grpc"]), name="alpha")
    try:
        result = cli(cluster.server, "status", run_id, "--wait", "--json")
        assert result.code == 0, result.out + result.err + cluster.logs()
        assert result.json()["steps"][0]["attempt"] == 1
    finally:
        other.stop()
        other_cp.stop()
