"""cgroup v1 driver: one directory tree per controller hierarchy.

For each of the memory, cpu and pids hierarchies (and cpuacct, for CPU usage, where it is
mounted on its own; `cpu,cpuacct` co-mounted is one hierarchy) the node's cgroups sit
under this process's own cgroup in that hierarchy, as `/proc/self/cgroup` names it::

    <mount>/<own path>/agentflow/<node>/workers/        idle workers
    <mount>/<own path>/agentflow/<node>/steps/<step>/   one running step

e.g. `/sys/fs/cgroup/memory/system.slice/noded.service/agentflow/node-1/steps/<step>`.
Each hierarchy's mount is looked up as `<root>/<controllers joined by ",">` and then as
`<root>/<controller>` (the usual symlinks). Under systemd, `Delegate=yes` on the unit keeps
systemd from rearranging the cgroups below the service's own.

A step cgroup gets `memory.limit_in_bytes`, `memory.memsw.limit_in_bytes` set to the same
value where swap accounting offers it (so the step cannot swap; refusals are ignored),
`cpu.cfs_period_us`/`cpu.cfs_quota_us` and `pids.max`. v1 does not move memory charges
with a task by default, so the step's limit covers what the worker allocates once
attached, not its warm-up.

OOM kills are counted from the `oom_kill` line of `memory.oom_control` (Linux 4.13+); on
older kernels `oom_kills` is 0. `memory.failcnt` is not used: on some newer kernels (seen
on 6.18) it stays 0 even when the limit is hit and the step is OOM-killed.

Tested against the real v1 hierarchies of a host that mounts them
(`tests/noded/cgroups/test_cgroups_v1.py`) and against plain directory trees for layouts
that host lacks, such as `cpu,cpuacct` co-mounted (`test_cgroups_v1_tree.py`).
"""

from __future__ import annotations

import errno
import logging
from dataclasses import dataclass
from pathlib import Path

from agentflow.vocabulary import Isolation
from noded.cgroups import fs, procfile
from noded.cgroups.errors import CgroupError
from noded.cgroups.limits import CPU_PERIOD_US, CgroupStats, StepLimits
from noded.cgroups.naming import slug
from noded.cgroups.step import FileStepCgroup
from noded.isolation import CGROUP_ROOT, V1_CONTROLLERS

log = logging.getLogger(__name__)

USAGE_CONTROLLER = "cpuacct"
STALE_TIMEOUT_S = 5.0
"""How long `cleanup_stale` keeps killing and retrying before a leftover cgroup counts as stuck."""


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
        hierarchies = self._require()
        name = slug(name)
        paths = {c: h.steps / name for h in hierarchies for c in h.controllers}
        step = FileStepCgroup(
            name,
            placements=[(h.steps / name, h.workers) for h in hierarchies],
            paths=paths,
            read_stats=lambda: _read_stats(paths),
        )
        made: list[Path] = []
        try:
            for d in step.dirs:
                fs.make_dir(d, exist_ok=False)
                made.append(d)
            _apply(paths, limits)
        except CgroupError:
            for d in reversed(made):
                try:
                    fs.remove(d)
                except CgroupError as e:
                    log.warning("could not remove %s after a failed create: %s", d, e)
            raise
        return step

    def cleanup_stale(self) -> int:
        hierarchies = self._require()
        names = sorted({d.name for h in hierarchies for d in fs.child_dirs(h.steps)})
        for name in names:
            for h in hierarchies:
                if fs.remove(h.steps / name, timeout_s=STALE_TIMEOUT_S, kill=True):
                    log.info("removed leftover step cgroup %s", h.steps / name)
        return len(names)

    def teardown(self) -> None:
        for h in self._hierarchies or ():
            busy = [e for d in (h.steps, h.workers) if (e := fs.remove_if_idle(d))]
            for e in busy:
                log.warning("left %s in place: %s", e.path, e)
            if not busy and fs.remove_if_idle(h.node_dir) is None:
                fs.remove_if_idle(h.node_dir.parent)  # agentflow/, which other nodes may share

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


def _apply(paths: dict[str, Path], limits: StepLimits) -> None:
    memory = paths["memory"]
    fs.write(memory / "memory.limit_in_bytes", limits.memory_bytes)
    memsw = memory / "memory.memsw.limit_in_bytes"
    if memsw.exists():
        try:
            fs.write(memsw, limits.memory_bytes)
        except CgroupError as e:
            if e.errno not in (errno.EINVAL, errno.EACCES):
                raise
    cpu = paths["cpu"]
    fs.write(cpu / "cpu.cfs_period_us", CPU_PERIOD_US)
    fs.write(cpu / "cpu.cfs_quota_us", limits.cpu_quota_us or -1)
    burst = cpu / "cpu.cfs_burst_us"
    if limits.cpu_quota_us and burst.exists():
        fs.write(burst, limits.cpu_quota_us)  # see limits.CPU_BURST
    fs.write(paths["pids"] / "pids.max", limits.pids_max)


def _read_stats(paths: dict[str, Path]) -> CgroupStats:
    memory = paths["memory"]
    usage = paths.get(USAGE_CONTROLLER)
    return CgroupStats(
        memory_peak_bytes=fs.read_int(memory / "memory.max_usage_in_bytes"),
        oom_kills=fs.read_keyed(memory / "memory.oom_control").get("oom_kill", 0),
        cpu_usage_ns=fs.read_int(usage / "cpuacct.usage") if usage else None,
    )
