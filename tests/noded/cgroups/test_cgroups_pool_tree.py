"""The pool of step cgroups against plain temporary trees shaped like cgroupfs (v2, and v1 layouts).

As in `test_cgroups_v2_tree.py` there is no kernel: the tests play it by writing the files
it would (counters, `cgroup.procs` emptied when it would move a task out, `pids.current`,
`memory.current`). The real v1 kernel's side of the same behaviour is in `test_cgroups_pool.py`.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from agentflow.vocabulary import Isolation
from noded.cgroups import CgroupError, CgroupStats, FileStepCgroup, StepLimits, V1Driver, V2Driver, open_driver, pool

pytestmark = pytest.mark.unit

MiB = 1024 * 1024
OWN = "system.slice/noded.service"
LIMITS = StepLimits(memory_bytes=48 * MiB, cpu_millis=250, pids_max=32)
Spawn = Callable[..., subprocess.Popen[str]]
UNWRITABLE = Path("/proc/version")
"""A file that may be opened for writing but refuses the write, as memory.peak does before Linux 6.12."""


@pytest.fixture
def v2(tmp_path: Path) -> V2Driver:
    root = tmp_path / "cgroup"
    (root / OWN).mkdir(parents=True)
    (root / OWN / "cgroup.controllers").write_text("cpu io memory pids\n")
    (root / OWN / "cgroup.procs").write_text(f"{os.getpid()}\n")
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text(f"0::/{OWN}\n")
    d = open_driver(Isolation.CGROUP2, node_name="node-1", root=root, proc_self_cgroup=proc)
    assert isinstance(d, V2Driver)
    d.setup()
    return d


@pytest.fixture
def v1(tmp_path: Path) -> V1Driver:
    """`cpu,cpuacct` co-mounted, as most v1 hosts have it."""
    root = tmp_path / "cgroup"
    for mount in ("pids", "memory", "cpu,cpuacct"):
        (root / mount / OWN).mkdir(parents=True)
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text(f"8:pids:/{OWN}\n4:memory:/{OWN}\n3:cpu,cpuacct:/{OWN}\n")
    d = V1Driver(node_name="node-1", root=root, proc_self_cgroup=proc)
    d.setup()
    return d


@pytest.fixture(autouse=True)
def _short_release_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """A plain tree's `cgroup.procs` never empties by itself: don't wait long for it."""
    monkeypatch.setattr(pool, "RELEASE_TIMEOUT_S", 0.05)


def take(driver: V1Driver | V2Driver, name: str, limits: StepLimits = LIMITS) -> FileStepCgroup:
    step = driver.create(name, limits)
    assert isinstance(step, FileStepCgroup)
    return step


def steps_dir(driver: V2Driver) -> Path:
    return driver.own / "steps"


def children(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.is_dir())


def read(step: FileStepCgroup, control: str, controller: str = "memory") -> str:
    return (step.path(controller) / control).read_text()


def test_a_second_step_reuses_the_directory_with_limits_of_its_own(v2: V2Driver) -> None:
    big = take(v2, "big", StepLimits(memory_bytes=512 * MiB, cpu_millis=1500, pids_max=64))
    step_dir = big.path("memory")
    assert step_dir == steps_dir(v2) / "pool-0"
    (step_dir / "cpu.max.burst").write_text("150000")  # as a kernel with CFS burst would hold now
    (step_dir / "memory.swap.max").write_text("max")
    big.release(None)

    slow = take(v2, "slow", StepLimits(memory_bytes=48 * MiB, cpu_millis=100, pids_max=8))
    assert slow.path("memory") == step_dir
    assert read(slow, "memory.max") == str(48 * MiB)
    assert read(slow, "memory.swap.max") == "0"
    assert read(slow, "cpu.max") == "10000 100000"
    assert read(slow, "cpu.max.burst") == "10000"
    assert read(slow, "pids.max") == "8"
    slow.release(None)

    unlimited = take(v2, "unlimited", StepLimits(memory_bytes=64 * MiB, cpu_millis=0, pids_max=16))
    assert unlimited.path("memory") == step_dir
    assert read(unlimited, "cpu.max") == "max 100000"
    assert read(unlimited, "cpu.max.burst") == "0", "no burst survives a step without a quota"
    assert read(unlimited, "memory.max") == str(64 * MiB)
    unlimited.release(None)
    assert children(steps_dir(v2)) == ["pool-0"]


def play_kernel(step_dir: Path, *, oom_kills: int, usage_usec: int, peak: int | None = None) -> None:
    """Cumulative counters as the kernel keeps them for the cgroup's whole life."""
    (step_dir / "memory.events").write_text(f"low 0\nhigh 0\nmax 3\noom {oom_kills}\noom_kill {oom_kills}\n")
    (step_dir / "cpu.stat").write_text(f"usage_usec {usage_usec}\nuser_usec {usage_usec}\nsystem_usec 0\n")
    if peak is not None:
        (step_dir / "memory.peak").write_text(f"{peak}\n")


def test_stats_are_those_of_the_step(v2: V2Driver) -> None:
    first = take(v2, "first")
    step_dir = first.path("memory")
    play_kernel(step_dir, oom_kills=1, usage_usec=2500, peak=50 * MiB)
    assert first.release(None) == CgroupStats(memory_peak_bytes=50 * MiB, oom_kills=1, cpu_usage_ns=2_500_000)

    second = take(v2, "second")
    assert second.path("memory") == step_dir
    assert (step_dir / "memory.peak").read_text().startswith("reset"), "the watermark was reset as it began"
    play_kernel(step_dir, oom_kills=1, usage_usec=4000, peak=MiB)  # what the reset descriptor reads
    assert second.release(None) == CgroupStats(memory_peak_bytes=MiB, oom_kills=0, cpu_usage_ns=1_500_000)

    third = take(v2, "third")
    play_kernel(step_dir, oom_kills=3, usage_usec=4000, peak=2 * MiB)
    assert third.release(None) == CgroupStats(memory_peak_bytes=2 * MiB, oom_kills=2, cpu_usage_ns=0)


def test_without_a_resettable_memory_peak_a_reused_cgroup_reports_no_peak(v2: V2Driver) -> None:
    """Before Linux 6.12 memory.peak refuses writes: its value in a reused cgroup is the peak of
    every step it ran, so None is reported; a fresh cgroup's is the step's own."""
    first = take(v2, "first")
    step_dir = first.path("memory")
    play_kernel(step_dir, oom_kills=0, usage_usec=100, peak=200 * MiB)
    assert first.release(None).memory_peak_bytes == 200 * MiB
    (step_dir / "memory.peak").unlink()
    (step_dir / "memory.peak").symlink_to(UNWRITABLE)

    reused = take(v2, "reused")
    fresh = take(v2, "fresh")  # runs alongside: a new directory
    assert (reused.path("memory"), fresh.path("memory")) == (step_dir, steps_dir(v2) / "pool-1")
    play_kernel(fresh.path("memory"), oom_kills=0, usage_usec=100, peak=3 * MiB)
    assert reused.release(None) == CgroupStats(memory_peak_bytes=None, oom_kills=0, cpu_usage_ns=0)
    assert fresh.release(None).memory_peak_bytes == 3 * MiB


def test_a_cgroup_still_holding_a_task_is_killed_and_never_reused(
    v2: V2Driver, spawn: Spawn, caplog: pytest.LogCaptureFixture
) -> None:
    child = spawn()
    step = take(v2, "busy")
    step.attach(child.pid)  # and the kernel never moves it out: something left behind
    with caplog.at_level(logging.WARNING, logger="noded.cgroups.pool"):
        step.release(None)
    assert child.wait(timeout=10) == -signal.SIGKILL
    assert not step.path("memory").exists()
    assert f"step cgroup pool-0 of step busy still holds tasks [{child.pid}]" in caplog.text
    assert v2.pool.idle == ()
    assert take(v2, "next").path("memory") == steps_dir(v2) / "pool-1"


def test_a_worker_moved_out_is_not_killed(v2: V2Driver, spawn: Spawn) -> None:
    child = spawn()
    v2.adopt(child.pid)
    step = take(v2, "s1")
    step.attach(child.pid)
    (step.path("memory") / "cgroup.procs").write_text("")  # the kernel moves it out as release writes workers/
    step.release(child.pid)
    assert child.poll() is None
    assert (v2.own / "workers" / "cgroup.procs").read_text() == str(child.pid)
    assert [s.dirs for s in v2.pool.idle] == [step.dirs]


def test_tasks_not_yet_reaped_get_the_cgroup_removed(v2: V2Driver, caplog: pytest.LogCaptureFixture) -> None:
    """A zombie is in no cgroup.procs but still counts against pids.max until it is reaped."""
    step = take(v2, "zombie")
    (step.path("pids") / "pids.current").write_text("1\n")
    with caplog.at_level(logging.INFO, logger="noded.cgroups.pool"):
        step.release(None)
    assert not step.path("memory").exists()
    assert "1 exited tasks not yet reaped" in caplog.text


@pytest.mark.parametrize(
    ("charge", "pooled"),
    [(0, True), (pool.POOL_CHARGE_MAX, True), (pool.POOL_CHARGE_MAX + 4096, False), (64 * MiB, False)],
    ids=["none", "at-the-limit", "just-above", "a-lot"],
)
def test_a_cgroup_with_memory_still_charged_is_reclaimed_or_removed(
    v2: V2Driver, charge: int, pooled: bool, caplog: pytest.LogCaptureFixture
) -> None:
    step = take(v2, "s1")
    step_dir = step.path("memory")
    (step_dir / "memory.current").write_text(f"{charge}\n")
    (step_dir / "memory.reclaim").write_text("")
    with caplog.at_level(logging.INFO, logger="noded.cgroups.pool"):
        step.release(None)
    assert step_dir.exists() is pooled
    assert len(v2.pool.idle) == int(pooled)
    if not pooled:
        assert "MiB are still charged to it after reclaim" in caplog.text


def test_reclaim_asks_for_what_is_charged(v2: V2Driver, monkeypatch: pytest.MonkeyPatch) -> None:
    """The kernel reclaims what memory.reclaim asks for; here it succeeds, so the cgroup is pooled."""
    step = take(v2, "s1")
    step_dir = step.path("memory")
    (step_dir / "memory.current").write_text(f"{64 * MiB}\n")
    (step_dir / "memory.reclaim").write_text("")
    asked: list[str] = []
    real_write = pool.fs.write

    def kernel_write(path: pool.fs.FilePath, value: str | int) -> None:
        real_write(path, value)
        if Path(path).name == "memory.reclaim":
            asked.append(str(value))
            (step_dir / "memory.current").write_text("8192\n")

    monkeypatch.setattr(pool.fs, "write", kernel_write)
    step.release(None)
    assert asked == [str(64 * MiB)]
    assert [s.dirs for s in v2.pool.idle] == [step.dirs]


def test_the_pool_keeps_at_most_pool_max(v2: V2Driver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pool, "POOL_MAX", 2)
    running = [take(v2, f"s{i}") for i in range(3)]
    assert children(steps_dir(v2)) == ["pool-0", "pool-1", "pool-2"]
    for step in running:
        step.release(None)
    assert children(steps_dir(v2)) == ["pool-0", "pool-1"]
    assert len(v2.pool.idle) == 2


def hold_at_once(driver: V2Driver, n: int) -> list[Path]:
    """`n` threads each take a step cgroup, wait until all hold one, release it: their directories."""
    barrier = threading.Barrier(n, timeout=10)
    held: list[Path] = []
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            step = take(driver, f"t{i}")
            held.append(step.path("memory"))
            barrier.wait()
            step.release(None)
        except BaseException as e:
            errors.append(e)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors
    return held


def test_concurrent_steps_make_as_many_cgroups_and_all_are_reused(v2: V2Driver) -> None:
    """Eight threads each hold a step cgroup at the same moment, twice over."""
    first = hold_at_once(v2, 8)
    assert len(set(first)) == 8, "no cgroup was lent to two steps at once"
    again = hold_at_once(v2, 8)
    assert set(again) == set(first)
    assert children(steps_dir(v2)) == [f"pool-{i}" for i in range(8)]


def test_a_pooled_cgroup_that_refuses_the_limits_is_replaced(v2: V2Driver, caplog: pytest.LogCaptureFixture) -> None:
    first = take(v2, "first")
    first.release(None)
    dangle(first.path("pids") / "pids.max")
    with caplog.at_level(logging.INFO, logger="noded.cgroups.pool"):
        second = take(v2, "second")
    assert second.path("memory") == steps_dir(v2) / "pool-1"
    assert read(second, "pids.max") == "32"
    assert children(steps_dir(v2)) == ["pool-1"]
    assert "pooled step cgroup pool-0 refused the limits of step second" in caplog.text


def dangle(control: Path) -> None:
    """Make writing `control` fail with ENOENT, as a control file the kernel does not offer."""
    control.unlink(missing_ok=True)
    control.symlink_to(control.parent / "nowhere" / control.name)


def test_a_create_that_fails_names_the_step_and_leaves_nothing(v2: V2Driver, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pooled cgroup refuses the limits, and so does the new one made instead."""
    first = take(v2, "first")
    first.release(None)
    dangle(first.path("pids") / "pids.max")
    real_mkdir = Path.mkdir

    def mkdir_with_a_trap(self: Path, *args: object, **kwargs: object) -> None:
        real_mkdir(self, *args, **kwargs)  # type: ignore[arg-type]
        if self.parent.name == "steps":
            dangle(self / "pids.max")

    monkeypatch.setattr(Path, "mkdir", mkdir_with_a_trap)
    with pytest.raises(CgroupError, match=r'^step cgroup s2: cannot write "32" to .*pool-1/pids\.max: ENOENT') as info:
        take(v2, "s2")
    monkeypatch.undo()
    assert info.value.path == steps_dir(v2) / "pool-1" / "pids.max"
    assert children(steps_dir(v2)) == []
    assert v2.pool.idle == ()
    assert take(v2, "s2").path("memory") == steps_dir(v2) / "pool-2", "the name is free again"


def test_leftover_names_are_skipped(v2: V2Driver) -> None:
    (steps_dir(v2) / "pool-0").mkdir()  # an earlier run's, not cleaned up
    step = take(v2, "s1")
    assert step.path("memory") == steps_dir(v2) / "pool-1"


def test_cleanup_stale_removes_pooled_leftovers(v2: V2Driver) -> None:
    done = take(v2, "done")
    running = take(v2, "running")
    done.release(None)
    assert children(steps_dir(v2)) == ["pool-0", "pool-1"]
    assert v2.cleanup_stale() == 2
    assert children(steps_dir(v2)) == []
    assert v2.pool.idle == ()
    running.release(None)  # its directory is gone: nothing to pool
    assert v2.pool.idle == ()
    assert take(v2, "next").path("memory") == steps_dir(v2) / "pool-2"


def test_teardown_removes_the_pool(v2: V2Driver) -> None:
    steps = [take(v2, f"s{i}") for i in range(2)]
    for step in steps:
        step.release(None)
    v2.teardown()
    assert children(v2.own) == ["daemon"]


def test_v1_resets_peak_and_cpu_and_counts_oom_kills_by_difference(v1: V1Driver) -> None:
    first = take(v1, "first")
    memory, cpu = first.path("memory"), first.path("cpuacct")
    (memory / "memory.max_usage_in_bytes").write_text(f"{50 * MiB}\n")
    (memory / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    (cpu / "cpuacct.usage").write_text("123456789\n")
    (memory / "memory.memsw.limit_in_bytes").write_text(f"{48 * MiB}\n")  # a kernel with swap accounting
    (cpu / "cpu.cfs_burst_us").write_text("25000\n")
    assert first.release(None) == CgroupStats(memory_peak_bytes=50 * MiB, oom_kills=2, cpu_usage_ns=123456789)

    second = take(v1, "second", StepLimits(memory_bytes=256 * MiB, cpu_millis=0, pids_max=8))
    assert second.dirs == first.dirs
    assert (memory / "memory.max_usage_in_bytes").read_text() == "0", "reset as the step began"
    assert (cpu / "cpuacct.usage").read_text() == "0", "reset as the step began"
    assert (memory / "memory.limit_in_bytes").read_text() == str(256 * MiB)
    assert (memory / "memory.memsw.limit_in_bytes").read_text() == str(256 * MiB)
    assert (cpu / "cpu.cfs_quota_us").read_text() == "-1"
    assert (cpu / "cpu.cfs_burst_us").read_text() == "0"
    assert (second.path("pids") / "pids.max").read_text() == "8"
    (memory / "memory.max_usage_in_bytes").write_text(f"{MiB}\n")
    (cpu / "cpuacct.usage").write_text("5000\n")
    assert second.release(None) == CgroupStats(memory_peak_bytes=MiB, oom_kills=0, cpu_usage_ns=5000)


def test_v1_charge_left_behind_is_force_emptied_or_the_cgroup_removed(
    v1: V1Driver, monkeypatch: pytest.MonkeyPatch
) -> None:
    step = take(v1, "s1")
    memory = step.path("memory")
    (memory / "memory.usage_in_bytes").write_text(f"{32 * MiB}\n")
    (memory / "memory.force_empty").write_text("")
    written: list[tuple[str, str]] = []
    real_write = pool.fs.write

    def recording_write(path: pool.fs.FilePath, value: str | int) -> None:
        written.append((Path(path).name, str(value)))
        real_write(path, value)

    monkeypatch.setattr(pool.fs, "write", recording_write)
    step.release(None)
    assert written == [("memory.force_empty", "0")], "asked the kernel to reclaim, once"
    assert not any(d.exists() for d in step.dirs), "and removed it when that did not help"
    assert take(v1, "s2").slot.name == "pool-1"
