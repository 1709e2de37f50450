"""The pool of step cgroups on this host's real cgroup v1 hierarchies.

Each step borrows a directory `steps/pool-<n>`; these tests check with the kernel that a
second step gets the same directory with its own limits and its own stats, that a cgroup
still holding a task or too much leftover memory charge is never lent again, and that the
pool grows to the steps running at once and no further. Like `test_cgroups_v1.py` they need
root and writable v1 hierarchies, and work under a node name of their own.
"""

from __future__ import annotations

import logging
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

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
from noded.cgroups import POOL_CHARGE_MAX, FileStepCgroup, StepLimits, V1Driver, fs, open_driver

pytestmark = pytest.mark.component

ROOMY = StepLimits(memory_bytes=256 * MiB, cpu_millis=0, pids_max=32)
TIGHT = StepLimits(memory_bytes=64 * MiB, cpu_millis=0, pids_max=32)

WORKER = r"""
import os, signal, subprocess, sys, time
kept = []
for line in sys.stdin:
    cmd, *args = line.split()
    if cmd == "burn":  # this many seconds of its own CPU time
        end = time.process_time() + float(args[0])
        while time.process_time() < end:
            pass
    elif cmd == "alloc":  # this many MiB, every page touched, kept
        block = bytearray(int(args[0]) << 20)
        block[::4096] = b"\x01" * (len(block) // 4096)
        kept.append(block)
        del block
    elif cmd == "free":
        kept.clear()
    elif cmd == "write":  # a file of this many MiB, on disk when it answers
        with open(args[0], "wb") as f:
            for _ in range(int(args[1])):
                f.write(b"\x02" * (1 << 20))
            f.flush()
            os.fsync(f.fileno())
    elif cmd == "spawn":  # a child that waits for a signal, in whatever cgroup this process is
        quiet = {"stdin": subprocess.DEVNULL, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        child = subprocess.Popen([sys.executable, "-c", "import signal; signal.pause()"], **quiet)
        print(child.pid, flush=True)
        continue
    print("ok", flush=True)
"""


class Worker:
    """A child that does what it is told, one line at a time, like a warm worker running steps."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.pid = proc.pid

    def ask(self, command: str) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def do(self, command: str) -> None:
        assert self.ask(command) == "ok", f"{command!r} failed (exit code {self.proc.poll()})"


@pytest.fixture
def driver(real_v1_driver: V1Driver) -> V1Driver:
    return real_v1_driver


@pytest.fixture
def worker(driver: V1Driver, spawn: Spawn) -> Callable[[], Worker]:
    """A new worker-like child in the node's workers cgroup, warm (done starting up, so what
    the interpreter allocates as it starts is not charged to a step) and reaped before the
    driver's cleanup."""

    def start() -> Worker:
        w = Worker(spawn(WORKER))
        driver.adopt(w.pid)
        w.do("ready")
        return w

    return start


def create(driver: V1Driver, name: str, limits: StepLimits) -> FileStepCgroup:
    step = driver.create(name, limits)
    assert isinstance(step, FileStepCgroup)
    return step


def pooled(driver: V1Driver) -> list[str]:
    """The directory names under `steps/`, the same in every hierarchy."""
    names = {c: [d.name for d in fs.child_dirs(driver.node_dir(c) / "steps")] for c in (*CONTROLLERS, "cpuacct")}
    assert len({tuple(n) for n in names.values()}) == 1, names
    return names["memory"]


def value(step: FileStepCgroup, controller: str, control: str) -> str:
    return (step.path(controller) / control).read_text().strip()


def test_a_second_step_reuses_the_directory_with_limits_of_its_own(driver: V1Driver) -> None:
    """Shrinking and growing limits in one directory, in the orders the kernel is picky about:
    a quota below the last step's burst, a memory limit above the last step's memsw limit."""
    big = create(driver, "big", StepLimits(memory_bytes=512 * MiB, cpu_millis=1500, pids_max=64))
    assert value(big, "cpu", "cpu.cfs_quota_us") == "150000"
    big.release(None)

    slow = create(driver, "slow", StepLimits(memory_bytes=48 * MiB, cpu_millis=100, pids_max=8))
    assert slow.dirs == big.dirs
    assert pooled(driver) == ["pool-0"]
    assert value(slow, "memory", "memory.limit_in_bytes") == str(48 * MiB)
    has_memsw = (slow.path("memory") / "memory.memsw.limit_in_bytes").exists()
    if has_memsw:
        assert value(slow, "memory", "memory.memsw.limit_in_bytes") == str(48 * MiB)
    assert value(slow, "cpu", "cpu.cfs_quota_us") == "10000"
    has_burst = (slow.path("cpu") / "cpu.cfs_burst_us").exists()
    if has_burst:
        assert value(slow, "cpu", "cpu.cfs_burst_us") == "10000"
    assert value(slow, "pids", "pids.max") == "8"
    slow.release(None)

    unlimited = create(driver, "unlimited", StepLimits(memory_bytes=256 * MiB, cpu_millis=0, pids_max=16))
    assert unlimited.dirs == big.dirs
    assert value(unlimited, "memory", "memory.limit_in_bytes") == str(256 * MiB)
    if has_memsw:
        assert value(unlimited, "memory", "memory.memsw.limit_in_bytes") == str(256 * MiB)
    assert value(unlimited, "cpu", "cpu.cfs_quota_us") == "-1"
    assert value(unlimited, "cpu", "cpu.cfs_period_us") == "100000"
    if has_burst:
        assert value(unlimited, "cpu", "cpu.cfs_burst_us") == "0", "no burst survives a step without a quota"
    assert value(unlimited, "pids", "pids.max") == "16"
    unlimited.release(None)
    assert pooled(driver) == ["pool-0"]


def test_a_smaller_memory_limit_after_a_larger_one_is_enforced(driver: V1Driver, worker: Callable[[], Worker]) -> None:
    roomy_step = create(driver, "roomy", ROOMY)
    first = worker()
    roomy_step.attach(first.pid)
    first.do("alloc 100")
    first.do("free")
    roomy_step.release(first.pid)

    tight_step = create(driver, "tight", TIGHT)
    assert tight_step.dirs == roomy_step.dirs
    second = worker()
    tight_step.attach(second.pid)
    assert second.ask("alloc 100") == "", "killed at the 64 MiB limit"
    assert second.proc.wait(timeout=30) == -signal.SIGKILL
    stats = tight_step.release(second.pid)
    assert stats.memory_peak_bytes is not None
    assert stats.memory_peak_bytes <= 64 * MiB


def test_stats_are_those_of_the_step(driver: V1Driver, worker: Callable[[], Worker]) -> None:
    """One warm worker, two steps in one directory: CPU time and peak memory of the first
    do not show in the second's."""
    w = worker()
    first = create(driver, "first", ROOMY)
    first.attach(w.pid)
    w.do("burn 0.3")
    w.do("alloc 64")
    w.do("free")
    busy = first.release(w.pid)

    second = create(driver, "second", ROOMY)
    assert second.dirs == first.dirs
    second.attach(w.pid)
    w.do("noop")
    idle = second.release(w.pid)

    assert busy.cpu_usage_ns is not None and idle.cpu_usage_ns is not None
    assert busy.cpu_usage_ns >= 0.3e9
    assert idle.cpu_usage_ns < 0.1e9, f"{idle.cpu_usage_ns / 1e9:.3f} s of CPU for a no-op step"
    assert busy.memory_peak_bytes is not None and idle.memory_peak_bytes is not None
    assert busy.memory_peak_bytes >= 64 * MiB
    assert idle.memory_peak_bytes < 16 * MiB
    assert {c: cgroup_of(w.pid)[c] for c in CONTROLLERS} == expected(driver.node_name, "workers")


def test_an_oom_kill_in_a_pooled_cgroup_is_counted_once_for_its_step(
    driver: V1Driver, worker: Callable[[], Worker]
) -> None:
    counts = []
    dirs = set()
    for name, limits in (("before", ROOMY), ("killed", TIGHT), ("after", ROOMY), ("after-again", ROOMY)):
        step = create(driver, name, limits)
        dirs.add(step.dirs)
        w = worker()
        step.attach(w.pid)
        answer = w.ask("alloc 100")
        if limits is TIGHT:
            assert answer == ""
            assert w.proc.wait(timeout=30) == -signal.SIGKILL  # reaped, as noded's child watcher does
        else:
            assert answer == "ok"
            w.do("free")
        counts.append(step.release(w.pid).oom_kills)

    assert len(dirs) == 1, "all four steps ran in one pooled cgroup"
    counts_oom_kills = "oom_kill " in value(step, "memory", "memory.oom_control")
    assert counts == ([0, 1, 0, 0] if counts_oom_kills else [0, 0, 0, 0])


def test_a_cgroup_still_holding_a_process_is_killed_and_not_reused(
    driver: V1Driver, worker: Callable[[], Worker], caplog: pytest.LogCaptureFixture
) -> None:
    w = worker()
    step = create(driver, "left-a-child", ROOMY)
    step.attach(w.pid)
    grandchild = int(w.ask("spawn"))  # forked inside the step cgroup, stays there
    assert (step.path("memory") / "cgroup.procs").read_text().split() == [str(w.pid), str(grandchild)]

    with caplog.at_level(logging.WARNING, logger="noded.cgroups.pool"):
        step.release(w.pid)

    assert not any(d.exists() for d in step.dirs)
    assert f"still holds tasks [{grandchild}]" in caplog.text
    assert wait_for(lambda: state(grandchild) in ("Z", None), what=f"{grandchild} killed")
    assert w.proc.poll() is None, "the worker itself was moved out and lives on"
    assert driver.pool.idle == ()
    after = create(driver, "after", ROOMY)
    assert after.slot.name == "pool-1"
    after.release(None)


def test_concurrent_steps_make_as_many_cgroups_and_all_are_reused(
    driver: V1Driver, worker: Callable[[], Worker]
) -> None:
    workers = [worker() for _ in range(3)]
    first = [create(driver, f"a-{i}", ROOMY) for i in range(3)]
    for step, w in zip(first, workers, strict=True):
        step.attach(w.pid)
    assert sorted(s.slot.name for s in first) == ["pool-0", "pool-1", "pool-2"]
    for step, w in zip(first, workers, strict=True):
        step.release(w.pid)
    assert pooled(driver) == ["pool-0", "pool-1", "pool-2"]
    assert len(driver.pool.idle) == 3

    again = [create(driver, f"b-{i}", ROOMY) for i in range(3)]
    assert {s.dirs for s in again} == {s.dirs for s in first}
    for step in again:
        step.release(None)
    assert pooled(driver) == ["pool-0", "pool-1", "pool-2"]


def test_memory_the_worker_kept_gets_the_cgroup_removed(
    driver: V1Driver, worker: Callable[[], Worker], caplog: pytest.LogCaptureFixture
) -> None:
    """v1 leaves the worker's charges in the step cgroup: 32 MiB it kept are above
    POOL_CHARGE_MAX, and force_empty cannot reclaim them without swap."""
    w = worker()
    step = create(driver, "keeps", ROOMY)
    step.attach(w.pid)
    w.do("alloc 32")
    with caplog.at_level(logging.INFO, logger="noded.cgroups.pool"):
        step.release(w.pid)
    assert not any(d.exists() for d in step.dirs)
    assert "MiB are still charged to it" in caplog.text

    fresh = create(driver, "fresh", ROOMY)
    assert fresh.slot.name == "pool-1"
    assert int(value(fresh, "memory", "memory.usage_in_bytes")) <= POOL_CHARGE_MAX
    fresh.release(None)


def test_page_cache_left_behind_is_reclaimed_and_the_cgroup_pooled(
    driver: V1Driver, worker: Callable[[], Worker], tmp_path: Path
) -> None:
    w = worker()
    step = create(driver, "writes", ROOMY)
    step.attach(w.pid)
    w.do(f"write {tmp_path / 'out'} 32")
    assert int(value(step, "memory", "memory.usage_in_bytes")) >= 32 * MiB, "the file's pages are charged here"
    step.release(w.pid)

    assert driver.pool.idle and driver.pool.idle[-1].dirs == step.dirs
    assert int(value(step, "memory", "memory.usage_in_bytes")) <= POOL_CHARGE_MAX
    after = create(driver, "after", ROOMY)
    assert after.dirs == step.dirs
    after.release(None)


def test_cleanup_stale_removes_pooled_and_running_leftovers(
    driver: V1Driver, node: str, worker: Callable[[], Worker]
) -> None:
    """A node died with one idle pooled cgroup and one step running."""
    done = create(driver, "done", ROOMY)
    w = worker()
    running = create(driver, "running", ROOMY)
    running.attach(w.pid)
    done.release(None)
    assert pooled(driver) == ["pool-0", "pool-1"]

    restarted = open_driver(Isolation.CGROUP1, node_name=node)
    restarted.setup()
    assert restarted.cleanup_stale() == 2
    assert w.proc.wait(timeout=10) == -signal.SIGKILL
    assert pooled(driver) == []
    assert restarted.cleanup_stale() == 0

    again = create(driver, "again", ROOMY)  # the old driver's pooled cgroup is gone: a new one
    assert again.slot.name == "pool-2"
    assert all(d.is_dir() for d in again.dirs)
    again.release(None)


def test_cleanup_stale_forgets_the_pool_it_removes(driver: V1Driver) -> None:
    create(driver, "done", ROOMY).release(None)
    assert driver.cleanup_stale() == 1
    assert driver.pool.idle == ()
    assert pooled(driver) == []
    step = create(driver, "next", ROOMY)
    assert step.slot.name == "pool-1"
    step.release(None)


def test_teardown_removes_the_pool(node: str) -> None:
    driver = open_driver(Isolation.CGROUP1, node_name=node)
    assert isinstance(driver, V1Driver)
    driver.setup()
    steps = [create(driver, f"s{i}", ROOMY) for i in range(2)]
    for step in steps:
        step.release(None)
    assert len(driver.pool.idle) == 2
    driver.teardown()
    assert not any(d.exists() for d in node_dirs(node))
