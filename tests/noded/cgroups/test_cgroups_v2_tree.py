"""The cgroup v2 driver against a plain temporary tree shaped like cgroupfs.

This host only has cgroup v1 controllers, so there is no kernel here: writing a control
file just writes the file, and the tests play the kernel where it matters by writing the
files it would (`memory.events`, `memory.peak`, `cpu.stat`). Pids written to
`cgroup.procs` are real children of the test, since `cleanup_stale` SIGKILLs what it finds.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from agentflow.vocabulary import Isolation
from noded.cgroups import CgroupError, CgroupStats, FileStepCgroup, StepLimits, V2Driver, open_driver
from noded.cgroups.fs import ControlDir

pytestmark = pytest.mark.unit

MiB = 1024 * 1024
OWN = "system.slice/noded.service"
Spawn = Callable[..., subprocess.Popen[str]]
LIMITS = StepLimits(memory_bytes=48 * MiB, cpu_millis=250, pids_max=32)


def make_tree(tmp_path: Path, *, controllers: str = "cpu io memory pids", own: str = OWN) -> tuple[Path, Path]:
    """(cgroupfs root, fake /proc/self/cgroup) with this process in `own`."""
    root = tmp_path / "cgroup"
    (root / own).mkdir(parents=True)
    (root / "cgroup.controllers").write_text("cpuset cpu io memory pids hugetlb\n")
    (root / own / "cgroup.controllers").write_text(controllers + "\n")
    (root / own / "cgroup.subtree_control").write_text("")
    (root / own / "cgroup.procs").write_text(f"{os.getpid()}\n")
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text(f"0::/{own}\n")
    return root, proc


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    return make_tree(tmp_path)


@pytest.fixture
def driver(tree: tuple[Path, Path]) -> V2Driver:
    root, proc = tree
    d = open_driver(Isolation.CGROUP2, node_name="node-1", root=root, proc_self_cgroup=proc)
    assert isinstance(d, V2Driver)
    d.setup()
    return d


def test_setup_moves_the_daemon_into_a_leaf_and_enables_controllers(tree: tuple[Path, Path], driver: V2Driver) -> None:
    own = tree[0] / OWN
    assert driver.mode is Isolation.CGROUP2
    assert driver.own == own
    assert (own / "daemon" / "cgroup.procs").read_text() == str(os.getpid())
    assert (own / "cgroup.subtree_control").read_text() == "+memory +cpu +pids"
    assert (own / "workers").is_dir()
    assert (own / "steps" / "cgroup.subtree_control").read_text() == "+memory +cpu +pids"


def test_setup_is_idempotent(tree: tuple[Path, Path], driver: V2Driver) -> None:
    driver.setup()
    assert sorted(p.name for p in driver.own.iterdir() if p.is_dir()) == ["daemon", "steps", "workers"]


def test_setup_from_inside_the_daemon_leaf_uses_its_parent(tmp_path: Path) -> None:
    """A re-exec (or systemd's DelegateSubgroup=daemon) starts noded in <own>/daemon."""
    root, proc = make_tree(tmp_path)
    (root / OWN / "daemon").mkdir()
    proc.write_text(f"0::/{OWN}/daemon\n")
    driver = V2Driver(node_name="node-1", root=root, proc_self_cgroup=proc)
    driver.setup()
    assert driver.own == root / OWN
    assert (root / OWN / "steps").is_dir()
    assert not (root / OWN / "daemon" / "daemon").exists()


@pytest.mark.parametrize(
    ("controllers", "missing"),
    [("cpu io memory", "pids"), ("io pids", "memory, cpu"), ("", "memory, cpu, pids")],
    ids=["no-pids", "no-memory-no-cpu", "none"],
)
def test_setup_names_missing_controllers(tmp_path: Path, controllers: str, missing: str) -> None:
    root, proc = make_tree(tmp_path, controllers=controllers)
    driver = V2Driver(node_name="node-1", root=root, proc_self_cgroup=proc)
    with pytest.raises(CgroupError) as info:
        driver.setup()
    message = str(info.value)
    assert f"missing {missing}" in message
    assert str(root / OWN / "cgroup.controllers") in message
    assert "Delegate=yes" in message
    assert not (root / OWN / "daemon").exists()


def test_setup_without_a_v2_line(tmp_path: Path) -> None:
    root, proc = make_tree(tmp_path)
    proc.write_text("4:memory:/\n")
    with pytest.raises(CgroupError, match=r"no cgroup v2 line \(0::/path\)"):
        V2Driver(node_name="n", root=root, proc_self_cgroup=proc).setup()


def test_setup_when_the_own_cgroup_is_missing(tmp_path: Path) -> None:
    root, proc = make_tree(tmp_path)
    proc.write_text("0::/elsewhere\n")
    with pytest.raises(CgroupError, match=f"{root / 'elsewhere'} does not exist"):
        V2Driver(node_name="n", root=root, proc_self_cgroup=proc).setup()


def test_calls_before_setup_fail_clearly(tree: tuple[Path, Path]) -> None:
    root, proc = tree
    driver = V2Driver(node_name="node-1", root=root, proc_self_cgroup=proc)
    with pytest.raises(CgroupError, match="call setup"):
        driver.create("s", LIMITS)
    driver.teardown()  # nothing to do, no error


def test_adopt_writes_the_workers_procs(driver: V2Driver, spawn: Spawn) -> None:
    child = spawn()
    driver.adopt(child.pid)
    assert (driver.own / "workers" / "cgroup.procs").read_text() == str(child.pid)


@pytest.mark.parametrize(
    ("limits", "cpu_max"),
    [
        (LIMITS, "25000 100000"),
        (StepLimits(memory_bytes=48 * MiB, cpu_millis=0, pids_max=32), "max 100000"),
        (StepLimits(memory_bytes=48 * MiB, cpu_millis=1500, pids_max=32), "150000 100000"),
    ],
    ids=["250m", "no-quota", "one-and-a-half-cores"],
)
def test_create_writes_limits_exactly(driver: V2Driver, limits: StepLimits, cpu_max: str) -> None:
    step = driver.create("run-1.step-a", limits)
    assert isinstance(step, FileStepCgroup)
    step_dir = driver.own / "steps" / "pool-0"
    assert step.path("memory") == step_dir
    assert step.name.startswith("run-1-step-a-")
    assert step_dir.is_dir()
    assert (step_dir / "memory.max").read_text() == "50331648"
    assert (step_dir / "cpu.max").read_text() == cpu_max
    assert (step_dir / "pids.max").read_text() == "32"
    assert not (step_dir / "memory.swap.max").exists()  # written only where the kernel offers it


def test_a_kernel_with_cfs_burst_lets_a_step_borrow_one_period(driver: V2Driver) -> None:
    (driver.own / "steps" / "probe").mkdir()  # the tree's template offers no burst file; this one does
    step_dir = driver.own / "steps" / "probe"
    (step_dir / "cpu.max.burst").write_text("0")
    from noded.cgroups.v2 import _apply

    _apply(ControlDir(step_dir), LIMITS)
    assert (step_dir / "cpu.max.burst").read_text() == "25000"


def test_create_refuses_the_name_of_a_running_step_and_leaves_it_alone(driver: V2Driver) -> None:
    running = driver.create("s1", LIMITS)
    assert isinstance(running, FileStepCgroup)
    (running.path("memory") / "marker").write_text("x")
    with pytest.raises(CgroupError, match=r"cannot create step cgroup s1: EEXIST") as info:
        driver.create("s1", LIMITS)
    assert info.value.errno == errno.EEXIST
    assert (running.path("memory") / "marker").exists()
    assert sorted(p.name for p in (driver.own / "steps").iterdir() if p.is_dir()) == ["pool-0"]
    running.release(None)
    driver.create("s1", LIMITS)  # the name is free again once its step is over


def test_create_that_fails_leaves_nothing(driver: V2Driver, monkeypatch: pytest.MonkeyPatch) -> None:
    """pids.max as a dangling symlink, planted as the directory is made, fails the last write."""
    real_mkdir = Path.mkdir

    def mkdir_with_a_trap(self: Path, *args: object, **kwargs: object) -> None:
        real_mkdir(self, *args, **kwargs)  # type: ignore[arg-type]
        if self.parent.name == "steps":
            (self / "pids.max").symlink_to(self / "nowhere" / "pids.max")

    monkeypatch.setattr(Path, "mkdir", mkdir_with_a_trap)
    with pytest.raises(CgroupError, match=r'cannot write "32" to .*pids\.max: ENOENT .*no such control file'):
        driver.create("s1", LIMITS)
    monkeypatch.undo()
    assert list((driver.own / "steps").iterdir()) == [driver.own / "steps" / "cgroup.subtree_control"]


def play_kernel(step_dir: Path) -> None:
    """Counters the kernel would keep for a step that hit its memory limit once."""
    (step_dir / "memory.events").write_text("low 0\nhigh 0\nmax 17\noom 1\noom_kill 1\noom_group_kill 0\n")
    (step_dir / "memory.peak").write_text("50327552\n")
    (step_dir / "cpu.stat").write_text("usage_usec 2500\nuser_usec 2000\nsystem_usec 500\nnr_periods 3\n")


def test_attach_and_release(driver: V2Driver, spawn: Spawn) -> None:
    child = spawn()
    driver.adopt(child.pid)
    step = driver.create("s1", LIMITS)
    step_dir = driver.own / "steps" / "pool-0"
    step.attach(child.pid)
    assert (step_dir / "cgroup.procs").read_text() == str(child.pid)
    (driver.own / "workers" / "cgroup.procs").write_text("")  # the kernel moved it out of workers
    play_kernel(step_dir)
    (step_dir / "cgroup.procs").write_text("")  # and will move it out of the step

    stats = step.release(child.pid)

    assert stats == CgroupStats(memory_peak_bytes=50327552, oom_kills=1, cpu_usage_ns=2_500_000)
    assert (driver.own / "workers" / "cgroup.procs").read_text() == str(child.pid)
    assert [s.dirs for s in driver.pool.idle] == [(step_dir,)]
    assert child.poll() is None, "release must not kill the worker"


def test_release_twice_returns_the_same_stats_and_moves_nothing(driver: V2Driver, spawn: Spawn) -> None:
    child = spawn()
    step = driver.create("s1", LIMITS)
    step.attach(child.pid)
    play_kernel(driver.own / "steps" / "pool-0")
    (driver.own / "steps" / "pool-0" / "cgroup.procs").write_text("")  # the kernel moved it out
    first = step.release(child.pid)
    (driver.own / "workers" / "cgroup.procs").write_text("")  # e.g. the worker has moved on since
    assert step.release(child.pid) == first
    assert (driver.own / "workers" / "cgroup.procs").read_text() == ""


def test_release_without_kernel_counters(driver: V2Driver) -> None:
    """No memory.peak (before Linux 5.19), no events yet: unknowns are None, OOM kills 0."""
    step = driver.create("s1", LIMITS)
    assert step.release(None) == CgroupStats(memory_peak_bytes=None, oom_kills=0, cpu_usage_ns=None)
    assert (driver.own / "steps" / "pool-0").is_dir()


def test_release_after_the_step_dir_vanished(driver: V2Driver) -> None:
    step = driver.create("s1", LIMITS)
    for f in (driver.own / "steps" / "pool-0").iterdir():
        f.unlink()
    (driver.own / "steps" / "pool-0").rmdir()
    assert step.release(None).oom_kills == 0
    assert driver.pool.idle == (), "a vanished cgroup is not pooled"


def test_attach_after_release_is_refused(driver: V2Driver) -> None:
    step = driver.create("s1", LIMITS)
    step.release(None)
    with pytest.raises(CgroupError, match="already released"):
        step.attach(os.getpid())


def test_cleanup_stale_kills_and_removes_leftovers(driver: V2Driver, spawn: Spawn) -> None:
    steps = driver.own / "steps"
    busy, idle = steps / "run-0-old", steps / "run-0-older"
    child = spawn()
    for d in (busy, idle):
        d.mkdir()
        (d / "memory.max").write_text("1048576\n")
    (busy / "cgroup.procs").write_text(f"{child.pid}\n")
    (idle / "cgroup.procs").write_text("")

    assert driver.cleanup_stale() == 2

    assert child.wait(timeout=10) == -signal.SIGKILL
    assert not busy.exists()
    assert not idle.exists()
    assert driver.cleanup_stale() == 0


def test_cleanup_stale_never_kills_noded_itself(driver: V2Driver) -> None:
    leftover = driver.own / "steps" / "odd"
    leftover.mkdir()
    (leftover / "cgroup.procs").write_text(f"{os.getpid()}\n")
    assert driver.cleanup_stale() == 1


def test_teardown_removes_workers_and_steps_keeps_the_daemon_leaf(driver: V2Driver) -> None:
    driver.create("s1", LIMITS).release(None)
    driver.teardown()
    assert sorted(p.name for p in driver.own.iterdir() if p.is_dir()) == ["daemon"]
    driver.teardown()


def test_teardown_leaves_step_cgroups_that_are_still_there(driver: V2Driver) -> None:
    step = driver.create("s1", LIMITS)
    assert isinstance(step, FileStepCgroup)
    driver.teardown()
    assert step.path("memory").is_dir()
    assert not (driver.own / "workers").exists()
