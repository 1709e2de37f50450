"""The cgroup v1 driver against plain temporary trees, for layouts this host does not have.

The real v1 hierarchies are exercised in `test_cgroups_v1.py`; here `cpu,cpuacct`
co-mounted, older kernels and broken setups are laid out as plain directories, and the
tests play the kernel by writing the counter files it would.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from noded.cgroups import CgroupError, CgroupStats, FileStepCgroup, StepLimits, V1Driver

pytestmark = pytest.mark.unit

MiB = 1024 * 1024
LIMITS = StepLimits(memory_bytes=48 * MiB, cpu_millis=250, pids_max=32)

COMOUNTED = """\
12:name=systemd:/system.slice/noded.service
8:pids:/system.slice/noded.service
4:memory:/system.slice/noded.service
3:cpu,cpuacct:/system.slice/noded.service
0::/system.slice/noded.service
"""


def v1_tree(tmp_path: Path, proc_text: str, mounts: tuple[str, ...]) -> V1Driver:
    root = tmp_path / "cgroup"
    for mount in mounts:
        (root / mount / "system.slice" / "noded.service").mkdir(parents=True)
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text(proc_text)
    return V1Driver(node_name="node-1", root=root, proc_self_cgroup=proc)


def test_comounted_cpu_and_cpuacct_are_one_hierarchy(tmp_path: Path) -> None:
    driver = v1_tree(tmp_path, COMOUNTED, ("pids", "memory", "cpu,cpuacct"))
    driver.setup()
    root = tmp_path / "cgroup"
    node = Path("system.slice/noded.service/agentflow/node-1")
    assert driver.node_dir("cpu") == driver.node_dir("cpuacct") == root / "cpu,cpuacct" / node
    assert driver.node_dir("memory") == root / "memory" / node

    step = driver.create("s1", LIMITS)
    assert isinstance(step, FileStepCgroup)
    assert step.path("cpu") == step.path("cpuacct") == root / "cpu,cpuacct" / node / "steps" / "pool-0"
    assert len(step.dirs) == 3
    assert (step.path("cpu") / "cpu.cfs_quota_us").read_text() == "25000"
    assert (step.path("cpu") / "cpu.cfs_period_us").read_text() == "100000"
    assert (step.path("memory") / "memory.limit_in_bytes").read_text() == "50331648"
    assert (step.path("pids") / "pids.max").read_text() == "32"

    (step.path("memory") / "memory.max_usage_in_bytes").write_text("50327552\n")
    (step.path("memory") / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    (step.path("cpuacct") / "cpuacct.usage").write_text("123456789\n")
    assert step.release(None) == CgroupStats(memory_peak_bytes=50327552, oom_kills=2, cpu_usage_ns=123456789)
    assert [s.dirs for s in driver.pool.idle] == [step.dirs]

    driver.teardown()
    for mount in ("pids", "memory", "cpu,cpuacct"):
        assert not (root / mount / "system.slice" / "noded.service" / "agentflow").exists()


def test_mount_found_by_controller_name(tmp_path: Path) -> None:
    """`cpu,cpuacct` mounted at `<root>/cpu` only (no comma-named directory)."""
    driver = v1_tree(tmp_path, COMOUNTED, ("pids", "memory", "cpu"))
    driver.setup()
    assert driver.node_dir("cpuacct") == tmp_path / "cgroup" / "cpu" / "system.slice/noded.service/agentflow/node-1"


def test_older_kernel_without_oom_kill_and_without_cpuacct(tmp_path: Path) -> None:
    proc = "8:pids:/\n4:memory:/\n3:cpu:/\n"
    driver = v1_tree(tmp_path, proc, ("pids", "memory", "cpu"))
    driver.setup()
    step = driver.create("s1", StepLimits(memory_bytes=MiB, cpu_millis=0, pids_max=1))
    assert (step.path("cpu") / "cpu.cfs_quota_us").read_text() == "-1"
    (step.path("memory") / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\n")
    assert step.release(None) == CgroupStats(memory_peak_bytes=None, oom_kills=0, cpu_usage_ns=None)


def test_missing_controller_is_named(tmp_path: Path) -> None:
    driver = v1_tree(tmp_path, "4:memory:/\n3:cpu,cpuacct:/\n", ("memory", "cpu,cpuacct"))
    with pytest.raises(CgroupError, match="no cgroup v1 hierarchy with the pids controller"):
        driver.setup()


def test_unmounted_hierarchy_is_named(tmp_path: Path) -> None:
    driver = v1_tree(tmp_path, COMOUNTED, ("pids", "memory"))
    with pytest.raises(CgroupError, match=r"hierarchy cpu,cpuacct is not mounted under .*cgroup/cpu,cpuacct"):
        driver.setup()


def test_own_cgroup_missing_under_the_mount(tmp_path: Path) -> None:
    driver = v1_tree(tmp_path, "8:pids:/elsewhere\n4:memory:/\n3:cpu:/\n", ("pids", "memory", "cpu"))
    with pytest.raises(CgroupError, match=r"pids cgroup /elsewhere, but .*pids/elsewhere does not exist") as info:
        driver.setup()
    assert info.value.path == tmp_path / "cgroup" / "pids" / "elsewhere"
