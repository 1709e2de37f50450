"""cgroup v1 driver: one directory tree per controller hierarchy.

For each of the memory, cpu and pids hierarchies (and cpuacct, for CPU usage, where it is
mounted on its own; `cpu,cpuacct` co-mounted is one hierarchy) the node's cgroups sit
under this process's own cgroup in that hierarchy, as `/proc/self/cgroup` names it::

    <mount>/<own path>/agentflow/<node>/workers/          idle workers
    <mount>/<own path>/agentflow/<node>/steps/pool-<n>/   one step cgroup, running a step or idle

e.g. `/sys/fs/cgroup/memory/system.slice/noded.service/agentflow/node-1/steps/pool-0`.
Each hierarchy's mount is looked up as `<root>/<controllers joined by ",">` and then as
`<root>/<controller>` (the usual symlinks). Under systemd, `Delegate=yes` on the unit keeps
systemd from rearranging the cgroups below the service's own.

Step cgroups come from a pool (`noded.cgroups.pool`): the directories are
`steps/pool-<n>`, lent to one step after another. Taking one rewrites all of its limits:
`memory.limit_in_bytes`, `memory.memsw.limit_in_bytes` set to the same value where swap
accounting offers it (so the step cannot swap; refusals are ignored), `cpu.cfs_period_us`/
`cpu.cfs_quota_us`, `cpu.cfs_burst_us` where the kernel has it, and `pids.max`. The order
matters to the kernel when limits shrink or grow: memsw must never be below the memory limit
(so it is lifted to -1 first) and a burst never above the quota (so it is zeroed first);
either would fail the write with EINVAL.

Stats are the step's own:

- peak memory: `memory.max_usage_in_bytes` is reset (writing 0 sets it to the current
  usage) as the step begins, so it includes the little (at most `pool.POOL_CHARGE_MAX`) an
  earlier step may have left charged;
- CPU: `cpuacct.usage` is reset to 0 as the step begins;
- OOM kills: the `oom_kill` line of `memory.oom_control` (Linux 4.13+; on older kernels
  `oom_kills` is 0) cannot be reset, so the step reports how much it grew.
  `memory.failcnt` is not used: on some newer kernels (seen on 6.18) it stays 0 even when
  the limit is hit and the step is OOM-killed.

v1 does not move memory charges with a task by default, so the step's limit covers what
the worker allocates once attached, not its warm-up; and what it allocated during the step
and kept stays charged to the step cgroup after it moves out. Measured on Linux 6.18
without swap:

- the charge left behind counts against the next step: with 40 MiB left in a cgroup, a
  step allocating 30 MiB under a 64 MiB limit was OOM-killed; a limit below what is still
  charged is refused (EBUSY);
- a real warm worker left 2 MiB after its first step and 6-7 MiB in all after a step that
  allocated 38 MiB (its heap grows and stays), barely more over further steps;
- `memory.force_empty` reclaims page cache left behind (a step that wrote a 32 MiB file)
  but not anonymous memory, which without swap has nowhere to go, and takes 0.5-7 ms.

So as a cgroup comes back the pool reads `memory.usage_in_bytes`: at most
`pool.POOL_CHARGE_MAX` and it is pooled as is; above that `memory.force_empty` is written
(only then, for its cost), and if the charge is still above the threshold the cgroup is
removed and the charge goes with it. `memory.move_charge_at_immigrate`, which moved the
pages with the task, is no way out: deprecated with a warning since 6.3, and here (6.18)
writing 1 to it fails with EINVAL.

Tested against the real v1 hierarchies of a host that mounts them
(`tests/noded/cgroups/test_cgroups_v1.py`) and against plain directory trees for layouts
that host lacks, such as `cpu,cpuacct` co-mounted (`test_cgroups_v1_tree.py`).
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from agentflow.vocabulary import Isolation
from noded.cgroups import fs, procfile
from noded.cgroups.errors import CgroupError
from noded.cgroups.fs import ControlDir
from noded.cgroups.limits import CPU_PERIOD_US, CgroupStats, StepLimits
from noded.cgroups.naming import slug
from noded.cgroups.pool import Controls, StepPool
from noded.cgroups.step import FileStepCgroup, Slot
from noded.isolation import CGROUP_ROOT, V1_CONTROLLERS

log = logging.getLogger(__name__)

USAGE_CONTROLLER = "cpuacct"
STALE_TIMEOUT_S = 5.0
"""How long `cleanup_stale` keeps killing and retrying before a leftover cgroup counts as stuck."""

# Control files a kernel or a hierarchy may lack.
MEMSW = "memory.memsw.limit_in_bytes"
BURST = "cpu.cfs_burst_us"
PEAK = "memory.max_usage_in_bytes"
CPU_USAGE = "cpuacct.usage"


@dataclass(frozen=True, slots=True)
class _Hierarchy:
    controllers: frozenset[str]
    node_dir: Path

    @property
    def workers(self) -> Path:
        return self.node_dir / "workers"

    @property
    def steps(self) -> Path:
        return self.node_dir / "steps"


class V1Driver:
    mode = Isolation.CGROUP1

    def __init__(
        self, *, node_name: str, root: Path = CGROUP_ROOT, proc_self_cgroup: Path = procfile.PROC_SELF_CGROUP
    ) -> None:
        self.node_name = node_name
        self.root = root
        self.proc_self_cgroup = proc_self_cgroup
        self._hierarchies: tuple[_Hierarchy, ...] | None = None
        self.pool = StepPool(layout=self._layout, controls=CONTROLS)

    def node_dir(self, controller: str) -> Path:
        """`…/agentflow/<node>` in `controller`'s hierarchy (after `setup`)."""
        return self._hierarchy(controller).node_dir

    def setup(self) -> None:
        hierarchies = self._locate()
        for h in hierarchies:
            fs.make_dir(h.workers, exist_ok=True)
            fs.make_dir(h.steps, exist_ok=True)
        self._hierarchies = hierarchies

    def adopt(self, pid: int) -> None:
        for h in self._require():
            fs.write(h.workers / "cgroup.procs", pid)

    def create(self, name: str, limits: StepLimits) -> FileStepCgroup:
        self._require()
        return self.pool.take(slug(name), limits)

    def cleanup_stale(self) -> int:
        hierarchies = self._require()
        self.pool.forget_idle()
        names = sorted({d.name for h in hierarchies for d in fs.child_dirs(h.steps)})
        for name in names:
            for h in hierarchies:
                if fs.remove(h.steps / name, timeout_s=STALE_TIMEOUT_S, kill=True):
                    log.info("removed leftover step cgroup %s", h.steps / name)
        return len(names)

    def teardown(self) -> None:
        self.pool.drain()
        for h in self._hierarchies or ():
            busy = [e for d in (h.steps, h.workers) if (e := fs.remove_if_idle(d))]
            for e in busy:
                log.warning("left %s in place: %s", e.path, e)
            if not busy and fs.remove_if_idle(h.node_dir) is None:
                fs.remove_if_idle(h.node_dir.parent)  # agentflow/, which other nodes may share

    def _layout(self, name: str) -> Slot:
        hierarchies = self._require()
        placements = tuple((ControlDir(h.steps / name), ControlDir(h.workers)) for h in hierarchies)
        return Slot(
            name,
            placements=placements,
            paths={c: step for h, (step, _) in zip(hierarchies, placements, strict=True) for c in h.controllers},
        )

    def _require(self) -> tuple[_Hierarchy, ...]:
        if self._hierarchies is None:
            raise CgroupError(f"cgroup v1 hierarchy of node {self.node_name} is not set up (call setup() first)")
        return self._hierarchies

    def _hierarchy(self, controller: str) -> _Hierarchy:
        for h in self._require():
            if controller in h.controllers:
                return h
        raise CgroupError(f"node {self.node_name} uses no {controller} hierarchy")

    def _locate(self) -> tuple[_Hierarchy, ...]:
        """Find each controller's hierarchy and this process's cgroup in it."""
        wanted = {*V1_CONTROLLERS, USAGE_CONTROLLER}
        node = slug(self.node_name)
        hierarchies = []
        for m in procfile.read(self.proc_self_cgroup):
            ours = frozenset(m.controllers) & wanted
            if m.hierarchy_id == 0 or not ours:
                continue
            mount = self._mount(m)
            own = mount / m.path.lstrip("/")
            if not own.is_dir():
                raise CgroupError(
                    f"{self.proc_self_cgroup} puts this process in {','.join(m.controllers)} cgroup {m.path}, "
                    f"but {own} does not exist (is the hierarchy mounted from its root at {mount}?)",
                    path=own,
                )
            hierarchies.append(_Hierarchy(ours, own / "agentflow" / node))
        missing = [c for c in V1_CONTROLLERS if not any(c in h.controllers for h in hierarchies)]
        if missing:
            raise CgroupError(
                f"{self.proc_self_cgroup} lists no cgroup v1 hierarchy with the {', '.join(missing)} "
                f"controller{'s' if len(missing) > 1 else ''}; noded needs {', '.join(V1_CONTROLLERS)}",
                path=self.proc_self_cgroup,
            )
        return tuple(hierarchies)

    def _mount(self, m: procfile.Membership) -> Path:
        candidates = [self.root / ",".join(m.controllers), *(self.root / c for c in m.controllers)]
        for candidate in candidates:
            if candidate.is_dir():
                return candidate
        raise CgroupError(
            f"the cgroup v1 hierarchy {','.join(m.controllers)} is not mounted under {self.root} "
            f"(looked for {', '.join(str(c) for c in dict.fromkeys(candidates))})",
            path=candidates[0],
        )


def _apply(paths: Mapping[str, ControlDir], limits: StepLimits) -> None:
    memory = paths["memory"]
    has_memsw = memory.has(MEMSW)
    if has_memsw:
        _write_memsw(memory.file(MEMSW), -1)  # memsw may not be below the memory limit, which may be about to grow
    fs.write(memory.file("memory.limit_in_bytes"), limits.memory_bytes)
    if has_memsw:
        _write_memsw(memory.file(MEMSW), limits.memory_bytes)
    cpu = paths["cpu"]
    has_burst = cpu.has(BURST)
    if has_burst:
        fs.write(cpu.file(BURST), 0)  # a burst above the quota, which may be about to shrink, is refused
    fs.write(cpu.file("cpu.cfs_period_us"), CPU_PERIOD_US)
    fs.write(cpu.file("cpu.cfs_quota_us"), limits.cpu_quota_us or -1)
    if limits.cpu_quota_us and has_burst:
        fs.write(cpu.file(BURST), limits.cpu_quota_us)  # see limits.CPU_BURST
    fs.write(paths["pids"].file("pids.max"), limits.pids_max)


def _write_memsw(memsw: str, value: int) -> None:
    """Write the memory+swap limit; a kernel that refuses it (no swap accounting) is ignored."""
    try:
        fs.write(memsw, value)
    except CgroupError as e:
        if e.errno not in (errno.EINVAL, errno.EACCES):
            raise


def _begin(paths: Mapping[str, ControlDir], fresh: bool) -> Callable[[], CgroupStats]:
    """Reset the peak and the CPU usage, record the OOM kills so far; the step's stats reader."""
    memory = paths["memory"]
    usage = paths.get(USAGE_CONTROLLER)
    if not fresh:
        _reset(memory, PEAK)
        if usage is not None:
            _reset(usage, CPU_USAGE)
    oom_kills = _oom_kills(memory)
    return lambda: _read_stats(paths, oom_kills_before=oom_kills)


def _reset(cgroup: ControlDir, counter: str) -> None:
    """Write 0 to a counter that has it (a plain tree may lack it: it stays absent)."""
    if cgroup.has(counter):
        fs.write(cgroup.file(counter), 0)


def _oom_kills(memory: ControlDir) -> int:
    return fs.read_keyed(memory.file("memory.oom_control")).get("oom_kill", 0)


def _read_stats(paths: Mapping[str, ControlDir], *, oom_kills_before: int) -> CgroupStats:
    memory = paths["memory"]
    usage = paths.get(USAGE_CONTROLLER)
    return CgroupStats(
        memory_peak_bytes=fs.read_int(memory.file(PEAK)),
        oom_kills=max(_oom_kills(memory) - oom_kills_before, 0),
        cpu_usage_ns=fs.read_int(usage.file(CPU_USAGE)) if usage else None,
    )


def _charge(paths: Mapping[str, ControlDir]) -> int | None:
    return fs.read_int(paths["memory"].file("memory.usage_in_bytes"))


def _reclaim(paths: Mapping[str, ControlDir]) -> None:
    memory = paths["memory"]
    if memory.has("memory.force_empty"):
        fs.write(memory.file("memory.force_empty"), 0)


CONTROLS = Controls(apply=_apply, begin=_begin, charge=_charge, reclaim=_reclaim)
