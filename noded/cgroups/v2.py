"""cgroup v2 driver: the node's subtree is this process's own cgroup.

Layout, with `<own>` the path on the `0::` line of `/proc/self/cgroup`::

    <own>/daemon/        noded itself
    <own>/workers/       idle workers
    <own>/steps/<step>/  one running step: memory.max, memory.swap.max=0, cpu.max, pids.max

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

Stats come from `memory.peak` (Linux 5.19+; None without it), the `oom_kill` line of
`memory.events` and `usage_usec` of `cpu.stat`.

The driver only reads, writes, makes and removes files and directories, and is tested
against a plain temporary tree shaped like cgroupfs (`tests/noded/cgroups/
test_cgroups_v2_tree.py`), where the tests play the kernel by writing the files it would.
"""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

from agentflow.vocabulary import Isolation
from noded.cgroups import fs, procfile
from noded.cgroups.errors import CgroupError
from noded.cgroups.limits import CPU_PERIOD_US, CgroupStats, StepLimits
from noded.cgroups.naming import slug
from noded.cgroups.step import FileStepCgroup
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
        own = self._require()
        name = slug(name)
        step_dir = own / "steps" / name
        step = FileStepCgroup(
            name,
            placements=[(step_dir, own / "workers")],
            paths=dict.fromkeys(V2_CONTROLLERS, step_dir),
            read_stats=lambda: _read_stats(step_dir),
        )
        fs.make_dir(step_dir, exist_ok=False)
        try:
            _apply(step_dir, limits)
        except CgroupError:
            try:
                fs.remove(step_dir)
            except CgroupError as e:
                log.warning("could not remove %s after a failed create: %s", step_dir, e)
            raise
        return step

    def cleanup_stale(self) -> int:
        leftovers = fs.child_dirs(self._require() / "steps")
        for d in leftovers:
            fs.remove(d, timeout_s=STALE_TIMEOUT_S, kill=True)
            log.info("removed leftover step cgroup %s", d)
        return len(leftovers)

    def teardown(self) -> None:
        if self._own is None:
            return
        for d in (self._own / "steps", self._own / "workers"):
            if busy := fs.remove_if_idle(d):
                log.warning("left %s in place: %s", d, busy)

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


def _apply(step_dir: Path, limits: StepLimits) -> None:
    fs.write(step_dir / "memory.max", limits.memory_bytes)
    if (step_dir / "memory.swap.max").exists():
        fs.write(step_dir / "memory.swap.max", 0)
    quota = limits.cpu_quota_us
    fs.write(step_dir / "cpu.max", f"{quota if quota else 'max'} {CPU_PERIOD_US}")
    if quota and (step_dir / "cpu.max.burst").exists():
        fs.write(step_dir / "cpu.max.burst", quota)  # see limits.CPU_BURST
    fs.write(step_dir / "pids.max", limits.pids_max)


def _read_stats(step_dir: Path) -> CgroupStats:
    usage_usec = fs.read_keyed(step_dir / "cpu.stat").get("usage_usec")
    return CgroupStats(
        memory_peak_bytes=fs.read_int(step_dir / "memory.peak"),
        oom_kills=fs.read_keyed(step_dir / "memory.events").get("oom_kill", 0),
        cpu_usage_ns=usage_usec * 1000 if usage_usec is not None else None,
    )
