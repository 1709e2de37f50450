"""The cgroup v1 driver on this host's real v1 hierarchies: limits enforced by the kernel.

Skipped unless this process is root and v1 memory, cpu and pids hierarchies are mounted
and writable. Each test works under its own node name (`pytest-<uuid>`) and the fixtures
kill what they started and remove the node's cgroups even when a test fails.
"""

from __future__ import annotations

import errno
import signal
import time

import pytest
from v1_hierarchies import (
    CONTROLLERS,
    MiB,
    Spawn,
    cgroup_of,
    expected,
    node_dirs,
    state,
    wait_for,
)

from agentflow.vocabulary import Isolation
from noded.cgroups import CgroupError, FileStepCgroup, StepLimits, V1Driver, fs, open_driver

pytestmark = pytest.mark.component


@pytest.fixture
def driver(real_v1_driver: V1Driver) -> V1Driver:
    return real_v1_driver


@pytest.fixture
def procs(driver: V1Driver, spawn: Spawn) -> Spawn:
    """`spawn`, ordered after `driver` so children are reaped before the driver's cleanup."""
    return spawn


def create(driver: V1Driver, name: str, limits: StepLimits) -> FileStepCgroup:
    step = driver.create(name, limits)
    assert isinstance(step, FileStepCgroup)
    return step


def test_setup_makes_workers_and_steps_in_each_hierarchy(driver: V1Driver, node: str) -> None:
    assert driver.mode is Isolation.CGROUP1
    dirs = node_dirs(node)
    assert len(dirs) >= 3
    for d in dirs:
        assert (d / "workers" / "cgroup.procs").is_file()
        assert (d / "steps" / "cgroup.procs").is_file()


def test_create_writes_exact_limits(driver: V1Driver) -> None:
    step = create(driver, "limits", StepLimits(memory_bytes=48 * MiB, cpu_millis=250, pids_max=32))
    memory, cpu, pids = (step.path(c) for c in CONTROLLERS)
    assert (memory / "memory.limit_in_bytes").read_text().strip() == str(48 * MiB)
    if (memory / "memory.memsw.limit_in_bytes").exists():
        assert (memory / "memory.memsw.limit_in_bytes").read_text().strip() == str(48 * MiB)
    assert (cpu / "cpu.cfs_quota_us").read_text().strip() == "25000"
    assert (cpu / "cpu.cfs_period_us").read_text().strip() == "100000"
    if (cpu / "cpu.cfs_burst_us").exists():  # CFS burst (5.14+): up to one more period's quota
        assert (cpu / "cpu.cfs_burst_us").read_text().strip() == "25000"
    assert (pids / "pids.max").read_text().strip() == "32"
    step.release(None)
    assert all(d.is_dir() for d in step.dirs), "released into the pool"
    assert [s.dirs for s in driver.pool.idle] == [step.dirs]

    unlimited = create(driver, "no-quota", StepLimits(memory_bytes=48 * MiB, cpu_millis=0, pids_max=32))
    assert unlimited.dirs == step.dirs
    assert (unlimited.path("cpu") / "cpu.cfs_quota_us").read_text().strip() == "-1"
    unlimited.release(None)


def test_create_that_the_kernel_refuses_leaves_nothing(driver: V1Driver) -> None:
    """A CFS quota beyond the kernel's maximum fails after the directories were made."""
    with pytest.raises(CgroupError, match=r"cpu\.cfs_quota_us: EINVAL") as info:
        driver.create("too-fast", StepLimits(memory_bytes=48 * MiB, cpu_millis=10**12, pids_max=32))
    assert info.value.errno == errno.EINVAL
    assert "step cgroup too-fast" in str(info.value)
    for controller in (*CONTROLLERS, "cpuacct"):
        assert fs.child_dirs(driver.node_dir(controller) / "steps") == []
    assert driver.pool.idle == ()


def test_create_refuses_a_name_in_use(driver: V1Driver) -> None:
    step = create(driver, "twice", StepLimits(memory_bytes=48 * MiB, cpu_millis=0, pids_max=8))
    with pytest.raises(CgroupError, match="EEXIST") as info:
        driver.create("twice", StepLimits(memory_bytes=48 * MiB, cpu_millis=0, pids_max=8))
    assert info.value.errno == errno.EEXIST
    assert all(d.is_dir() for d in step.dirs)
    step.release(None)


def test_adopt_attach_release_move_a_real_process(driver: V1Driver, node: str, procs: Spawn) -> None:
    child = procs()
    driver.adopt(child.pid)
    workers = expected(node, "workers")
    assert {c: cgroup_of(child.pid)[c] for c in CONTROLLERS} == workers

    step = create(driver, "Run/1:attach", StepLimits(memory_bytes=48 * MiB, cpu_millis=250, pids_max=32))
    step.attach(child.pid)
    assert step.slot.name == "pool-0"
    assert {c: cgroup_of(child.pid)[c] for c in CONTROLLERS} == expected(node, "steps/pool-0")
    assert (step.path("memory") / "cgroup.procs").read_text().split() == [str(child.pid)]

    stats = step.release(child.pid)

    assert {c: cgroup_of(child.pid)[c] for c in CONTROLLERS} == workers
    assert all((d / "cgroup.procs").read_text() == "" for d in step.dirs), "empty, back in the pool"
    assert [s.dirs for s in driver.pool.idle] == [step.dirs]
    assert child.poll() is None, "release must not kill the worker"
    assert stats.oom_kills == 0
    assert stats.memory_peak_bytes is not None
    assert stats.cpu_usage_ns is not None
    assert step.release(child.pid) == stats


def test_release_after_attach_failed(driver: V1Driver, procs: Spawn) -> None:
    child = procs()
    child.kill()
    child.wait()
    step = create(driver, "dead", StepLimits(memory_bytes=48 * MiB, cpu_millis=0, pids_max=8))
    with pytest.raises(CgroupError, match="ESRCH") as info:
        step.attach(child.pid)
    assert info.value.errno == errno.ESRCH
    step.release(child.pid)
    assert [s.dirs for s in driver.pool.idle] == [step.dirs]


def test_release_of_a_process_killed_in_the_step(driver: V1Driver, procs: Spawn) -> None:
    child = procs()
    step = create(driver, "killed", StepLimits(memory_bytes=48 * MiB, cpu_millis=0, pids_max=8))
    step.attach(child.pid)
    child.kill()
    wait_for(lambda: state(child.pid) == "Z", what="a zombie")  # not reaped: still counts in pids.current
    step.release(child.pid)
    assert not any(d.exists() for d in step.dirs), "removed, not pooled"
    assert driver.pool.idle == ()


OOM_CHILD = """
import sys
sys.stdin.readline()
blocks = []
for _ in range(300):
    block = bytearray(1 << 20)
    block[::4096] = b"\\x01" * 256  # touch every page
    blocks.append(block)
print("survived", flush=True)
"""


def test_memory_limit_oom_kills_the_step(driver: V1Driver, procs: Spawn) -> None:
    """Allocating ~300 MiB inside a 64 MiB step cgroup gets the child OOM-killed.

    The kill is counted by the `oom_kill` line of `memory.oom_control` (Linux 4.13+); on a
    kernel without it the test falls back to `memory.failcnt`. (On some newer kernels,
    such as the 6.18 this was written on, v1 `memory.failcnt` stays 0 even then.)
    """
    child = procs(OOM_CHILD)
    step = create(driver, "oom", StepLimits(memory_bytes=64 * MiB, cpu_millis=0, pids_max=8))
    step.attach(child.pid)
    out, _ = child.communicate("go\n", timeout=60)
    assert child.returncode == -signal.SIGKILL, out
    assert "survived" not in out

    memory = step.path("memory")
    counts_oom_kills = "oom_kill " in (memory / "memory.oom_control").read_text()
    failcnt = int((memory / "memory.failcnt").read_text())
    stats = step.release(None)

    if counts_oom_kills:
        assert stats.oom_kills >= 1
    else:
        assert stats.oom_kills == 0
        assert failcnt > 0
    assert stats.memory_peak_bytes is not None
    assert 56 * MiB <= stats.memory_peak_bytes <= 64 * MiB, "the step ran into its limit"


BUSY_CHILD = """
import sys, time
sys.stdin.readline()
end = time.monotonic() + 1.0
while time.monotonic() < end:
    pass
"""


def test_cpu_quota_is_enforced(driver: V1Driver, procs: Spawn) -> None:
    """A busy loop for 1 s of wall time under a 100m quota gets about 0.1 s of CPU (not a benchmark)."""
    child = procs(BUSY_CHILD)
    step = create(driver, "cpu", StepLimits(memory_bytes=64 * MiB, cpu_millis=100, pids_max=8))
    step.attach(child.pid)
    started = time.monotonic()
    child.communicate("go\n", timeout=30)
    wall = time.monotonic() - started
    assert child.returncode == 0
    throttled = fs.read_keyed(step.path("cpu") / "cpu.stat").get("nr_throttled", 0)
    stats = step.release(None)

    assert wall >= 1.0
    assert stats.cpu_usage_ns is not None
    assert 0 < stats.cpu_usage_ns < 0.5e9, f"{stats.cpu_usage_ns / 1e9:.3f} s of CPU in {wall:.2f} s"
    assert throttled > 0


THREADS_CHILD = """
import sys, threading
sys.stdin.readline()
started = 0
try:
    for _ in range(16):
        threading.Thread(target=threading.Event().wait, daemon=True).start()
        started += 1
except RuntimeError:
    pass
print(started, flush=True)
"""


def test_pids_limit_caps_threads(driver: V1Driver, procs: Spawn) -> None:
    child = procs(THREADS_CHILD)
    step = create(driver, "pids", StepLimits(memory_bytes=64 * MiB, cpu_millis=0, pids_max=4))
    step.attach(child.pid)
    out, _ = child.communicate("go\n", timeout=30)
    step.release(None)
    assert int(out) == 3, "the main thread plus 3 more make 4 tasks"


def test_cleanup_stale_kills_leftovers(driver: V1Driver, node: str, procs: Spawn) -> None:
    """A node that died mid-step left a step cgroup with a live worker in it."""
    child = procs()
    driver.adopt(child.pid)
    crashed = create(driver, "left-over", StepLimits(memory_bytes=48 * MiB, cpu_millis=250, pids_max=32))
    crashed.attach(child.pid)

    restarted = open_driver(Isolation.CGROUP1, node_name=node)
    restarted.setup()
    assert restarted.cleanup_stale() == 1

    assert child.wait(timeout=10) == -signal.SIGKILL
    assert not any(d.exists() for d in crashed.dirs)
    assert restarted.cleanup_stale() == 0


def test_teardown_leaves_nothing_behind(node: str, procs: Spawn) -> None:
    driver = open_driver(Isolation.CGROUP1, node_name=node)
    assert isinstance(driver, V1Driver)
    driver.setup()
    child = procs()
    driver.adopt(child.pid)
    create(driver, "s", StepLimits(memory_bytes=48 * MiB, cpu_millis=250, pids_max=32)).release(None)

    driver.teardown()  # a live worker keeps workers/ (and the node) in place
    assert all(d.exists() for d in node_dirs(node))
    assert not any((d / "steps").exists() for d in node_dirs(node))

    child.kill()
    child.wait()
    driver.teardown()
    assert not any(d.exists() for d in node_dirs(node))
