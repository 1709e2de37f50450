"""cgroup v2 driver: the node's subtree is this process's own cgroup.

Layout, with `<own>` the path on the `0::` line of `/proc/self/cgroup`::

    <own>/daemon/          noded itself
    <own>/workers/         idle workers
    <own>/steps/pool-<n>/  one step cgroup, running a step or idle: memory.max, memory.swap.max=0,
                           cpu.max, cpu.max.burst, pids.max

cgroup v2 allows processes only in leaves once a cgroup hands controllers to its children
("no internal processes"), so `setup` first moves noded into `<own>/daemon`, then writes
`+memory +cpu +pids` to `<own>/cgroup.subtree_control` and to `<own>/steps/`'s. Anything
else left in `<own>` makes that write fail with EBUSY, and the error lists it. A process
already in a leaf named `daemon` (a re-exec, or systemd's `DelegateSubgroup=daemon`) takes
the leaf's parent as `<own>`.

noded needs a subtree it may write to. Under systemd that is `Delegate=yes` in the unit::

    [Service]
    ExecStart=/usr/bin/noded
    Delegate=yes
    # systemd 254+: start noded in the leaf setup() would move it to
    DelegateSubgroup=daemon

`teardown` removes `workers/` and `steps/` when they are empty and leaves `daemon/`, which
noded is in; systemd removes the unit's cgroup when the service stops.

Step cgroups come from a pool (`noded.cgroups.pool`) and are lent to one step after
another; taking one rewrites every limit (`cpu.max.burst` is zeroed before `cpu.max` is
written, since the kernel refuses a quota below the burst). Stats are the step's own:

- OOM kills, the `oom_kill` line of `memory.events`, and CPU, `usage_usec` of `cpu.stat`,
  are cumulative and cannot be reset: the step reports how much they grew.
- Peak memory, `memory.peak` (Linux 5.19+; None without it): since Linux 6.12 writing to
  it resets the watermark to the current usage, for reads through the same open file only.
  The step opens it, writes, and reads it through that descriptor at release. On kernels
  where the write is refused (5.19-6.11) a reused cgroup reports None, not the cumulative
  value: that is the peak of every step the cgroup ever ran, which would charge a small
  step with a big predecessor's memory, whereas None lets the runner fall back to the
  worker's own figure. A cgroup fresh from mkdir still reports its `memory.peak`, which is
  this step's alone.

As on v1, what a worker keeps of what it allocated in a step stays charged to the step
cgroup (v2 never moves charges); the pool removes a cgroup that comes back with more than
`pool.POOL_CHARGE_MAX` of `memory.current` after asking the kernel to reclaim it with
`memory.reclaim` (Linux 5.19+).

The driver only reads, writes, makes and removes files and directories, and is tested
against a plain temporary tree shaped like cgroupfs (`tests/noded/cgroups/
test_cgroups_v2_tree.py`), where the tests play the kernel by writing the files it would.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path

from agentflow.vocabulary import Isolation
from noded.cgroups import fs, procfile
from noded.cgroups.errors import CgroupError
from noded.cgroups.fs import ControlDir
from noded.cgroups.limits import CPU_PERIOD_US, CgroupStats, StepLimits
from noded.cgroups.naming import slug
from noded.cgroups.pool import Controls, StepPool
from noded.cgroups.step import FileStepCgroup, Slot
from noded.isolation import CGROUP_ROOT, V2_CONTROLLERS

log = logging.getLogger(__name__)

DAEMON_LEAF = "daemon"
STALE_TIMEOUT_S = 5.0
"""How long `cleanup_stale` keeps killing and retrying before a leftover cgroup counts as stuck."""
ENABLE = " ".join(f"+{c}" for c in V2_CONTROLLERS)


class V2Driver:
    mode = Isolation.CGROUP2

    def __init__(
        self, *, node_name: str, root: Path = CGROUP_ROOT, proc_self_cgroup: Path = procfile.PROC_SELF_CGROUP
    ) -> None:
        self.node_name = node_name
        self.root = root
        self.proc_self_cgroup = proc_self_cgroup
        self._own: Path | None = None
        self.pool = StepPool(layout=self._layout, controls=CONTROLS)

    @property
    def own(self) -> Path:
        """The node's subtree (after `setup`)."""
        return self._require()

    def setup(self) -> None:
        own = self._locate()
        offered = fs.read_words(own / "cgroup.controllers")
        missing = [c for c in V2_CONTROLLERS if c not in offered]
        if missing:
            raise CgroupError(
                f"{own / 'cgroup.controllers'} offers {' '.join(offered) or 'no controllers'}; "
                f"missing {', '.join(missing)} (noded needs {', '.join(V2_CONTROLLERS)}; under systemd "
                "set Delegate=yes on the unit, otherwise enable them in the parent's cgroup.subtree_control)",
                path=own / "cgroup.controllers",
            )
        daemon = own / DAEMON_LEAF
        fs.make_dir(daemon, exist_ok=True)
        fs.write(daemon / "cgroup.procs", os.getpid())
        try:
            fs.write(own / "cgroup.subtree_control", ENABLE)
        except CgroupError as e:
            if e.errno != errno.EBUSY:
                raise
            others = fs.read_pids(own / "cgroup.procs")
            raise CgroupError(
                f"{e}; processes other than noded are still in {own}: {others} "
                "(a cgroup that hands controllers to children may hold no processes itself)",
                path=e.path,
                errno=e.errno,
            ) from e
        fs.make_dir(own / "workers", exist_ok=True)
        fs.make_dir(own / "steps", exist_ok=True)
        fs.write(own / "steps" / "cgroup.subtree_control", ENABLE)
        self._own = own

    def adopt(self, pid: int) -> None:
        fs.write(self._require() / "workers" / "cgroup.procs", pid)

    def create(self, name: str, limits: StepLimits) -> FileStepCgroup:
        self._require()
        return self.pool.take(slug(name), limits)

    def cleanup_stale(self) -> int:
        self.pool.forget_idle()
        leftovers = fs.child_dirs(self._require() / "steps")
        for d in leftovers:
            fs.remove(d, timeout_s=STALE_TIMEOUT_S, kill=True)
            log.info("removed leftover step cgroup %s", d)
        return len(leftovers)

    def teardown(self) -> None:
        if self._own is None:
            return
        self.pool.drain()
        for d in (self._own / "steps", self._own / "workers"):
            if busy := fs.remove_if_idle(d):
                log.warning("left %s in place: %s", d, busy)

    def _layout(self, name: str) -> Slot:
        own = self._require()
        step_dir = ControlDir(own / "steps" / name)
        return Slot(
            name, placements=((step_dir, ControlDir(own / "workers")),), paths=dict.fromkeys(V2_CONTROLLERS, step_dir)
        )

    def _require(self) -> Path:
        if self._own is None:
            raise CgroupError(f"cgroup v2 subtree of node {self.node_name} is not set up (call setup() first)")
        return self._own

    def _locate(self) -> Path:
        path = procfile.v2_path(procfile.read(self.proc_self_cgroup))
        if path is None:
            raise CgroupError(
                f"{self.proc_self_cgroup} has no cgroup v2 line (0::/path); is cgroup2 mounted at {self.root}?",
                path=self.proc_self_cgroup,
            )
        own = self.root / path.lstrip("/")
        if own.name == DAEMON_LEAF:
            own = own.parent
        if not own.is_dir():
            raise CgroupError(
                f"{self.proc_self_cgroup} puts this process in cgroup {path}, but {own} does not exist "
                f"(is cgroup2 mounted at {self.root}?)",
                path=own,
            )
        return own


BURST = "cpu.max.burst"  # a kernel may lack it


def _apply(step_dir: ControlDir, limits: StepLimits) -> None:
    fs.write(step_dir.file("memory.max"), limits.memory_bytes)
    if step_dir.has("memory.swap.max"):
        fs.write(step_dir.file("memory.swap.max"), 0)
    quota = limits.cpu_quota_us
    has_burst = step_dir.has(BURST)
    if has_burst:
        fs.write(step_dir.file(BURST), 0)  # a burst above the quota, which may be about to shrink, is refused
    fs.write(step_dir.file("cpu.max"), f"{quota if quota else 'max'} {CPU_PERIOD_US}")
    if quota and has_burst:
        fs.write(step_dir.file(BURST), quota)  # see limits.CPU_BURST
    fs.write(step_dir.file("pids.max"), limits.pids_max)


def _begin(step_dir: ControlDir, fresh: bool) -> Callable[[], CgroupStats]:
    """Record the OOM kills and CPU usage so far and reset the peak; the step's stats reader."""
    oom_kills = _oom_kills(step_dir)
    usage_usec = _usage_usec(step_dir) or 0
    peak = Peak(Path(step_dir.file("memory.peak")), fresh=fresh)
    return lambda: _read_stats(step_dir, peak, oom_kills_before=oom_kills, usage_usec_before=usage_usec)


def _oom_kills(step_dir: ControlDir) -> int:
    return fs.read_keyed(step_dir.file("memory.events")).get("oom_kill", 0)


def _usage_usec(step_dir: ControlDir) -> int | None:
    return fs.read_keyed(step_dir.file("cpu.stat")).get("usage_usec")


def _read_stats(step_dir: ControlDir, peak: Peak, *, oom_kills_before: int, usage_usec_before: int) -> CgroupStats:
    usage_usec = _usage_usec(step_dir)
    return CgroupStats(
        memory_peak_bytes=peak.read(),
        oom_kills=max(_oom_kills(step_dir) - oom_kills_before, 0),
        cpu_usage_ns=max(usage_usec - usage_usec_before, 0) * 1000 if usage_usec is not None else None,
    )


class Peak:
    """One step's `memory.peak`: read through a descriptor whose watermark was reset as it began.

    Writing to `memory.peak` resets it (to the current usage) only for reads through the
    same open file, on Linux 6.12+; earlier kernels refuse the write (or the open for
    writing). Without the reset the value is this step's only if the cgroup is fresh.
    """

    def __init__(self, path: Path, *, fresh: bool) -> None:
        self._path = path
        self._fresh = fresh
        self._fd = _open_reset(path)

    def read(self) -> int | None:
        """The step's peak (None if unknown); closes the descriptor, so a second read is None."""
        fd, self._fd = self._fd, None
        if fd is None:
            fresh, self._fresh = self._fresh, False
            return fs.read_int(self._path) if fresh else None
        try:
            text = os.pread(fd, 64, 0).decode()
        except OSError as e:
            raise CgroupError(f"cannot read {self._path}: {fs.describe(e)}", path=self._path, errno=e.errno) from e
        finally:
            os.close(fd)
        try:
            return int(text.strip())
        except ValueError:
            raise CgroupError(f"{self._path}: expected an integer, got {text.strip()!r}", path=self._path) from None


def _open_reset(path: Path) -> int | None:
    """`path` opened for reading and writing with a write done (the per-descriptor reset), or None."""
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return None  # no memory.peak (before 5.19), or one that cannot be written
    try:
        os.write(fd, b"reset")
    except OSError:
        os.close(fd)
        return None
    return fd


def _charge(step_dir: ControlDir) -> int | None:
    return fs.read_int(step_dir.file("memory.current"))


def _reclaim(step_dir: ControlDir) -> None:
    charge = fs.read_int(step_dir.file("memory.current"))
    if charge and step_dir.has("memory.reclaim"):
        fs.write(step_dir.file("memory.reclaim"), charge)


def _step_dir(paths: Mapping[str, ControlDir]) -> ControlDir:
    """The one directory of a v2 step cgroup (every controller's)."""
    return paths["memory"]


CONTROLS = Controls(
    apply=lambda paths, limits: _apply(_step_dir(paths), limits),
    begin=lambda paths, fresh: _begin(_step_dir(paths), fresh),
    charge=lambda paths: _charge(_step_dir(paths)),
    reclaim=lambda paths: _reclaim(_step_dir(paths)),
)
