"""The contract every cgroup driver keeps, and `open_driver`, which picks one by isolation mode.

Lifecycle of a node: `open_driver` → `setup()` → `cleanup_stale()` → per worker `adopt(pid)`
→ per step `create(name, limits)`, `attach(pid)`, …, `release(pid)` → `teardown()`.

- `setup()` is idempotent and raises `CgroupError` naming the path, the operation and the
  errno when the hierarchy is unusable; the other calls need it to have succeeded.
- Step cgroups are pooled (`noded.cgroups.pool`): directories `steps/pool-<n>`, each lent
  to one step at a time. `create` takes an idle one (or makes one when none is idle) and
  rewrites all of its limits, so nothing of an earlier step's survives. The name given to
  `create` (`naming.slug` of its argument) is the step's, for logs and errors; `create`
  raises `CgroupError` (errno EEXIST) if a running step has it. It leaves nothing behind
  when it fails.
- `attach` moves a process with all its threads. If it fails half-way (v1 writes one
  `cgroup.procs` per hierarchy), `release(pid)` puts the process back.
- `release` reads the step's own stats (counters are reset or taken as the difference from
  when the step began), moves the process (if alive) back to the workers cgroup and returns
  the cgroup to the pool once it is empty, waiting briefly for exiting tasks. A cgroup that
  still holds tasks after that has them killed and is removed, never lent again; one with
  tasks not yet reaped or too much memory still charged to it is removed too, as are those
  beyond the pool's bound. It is safe to call after a failed `attach` and more than once:
  after one full success later calls only return the same stats; after a `CgroupError` a
  later call retries what is left.
- `cleanup_stale` SIGKILLs whatever is in step cgroups left over from an earlier run and
  removes them, pooled ones included. `teardown` removes the pool and the node's cgroups
  that are empty, and leaves busy ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from agentflow.vocabulary import Isolation
from noded.cgroups.limits import CgroupStats, StepLimits
from noded.cgroups.none import NoneDriver
from noded.cgroups.procfile import PROC_SELF_CGROUP
from noded.cgroups.v1 import V1Driver
from noded.cgroups.v2 import V2Driver
from noded.isolation import CGROUP_ROOT


class StepCgroup(Protocol):
    """The cgroup of one running step."""

    @property
    def name(self) -> str: ...

    def attach(self, pid: int) -> None:
        """Move process `pid` (all its threads) into this cgroup."""

    def release(self, pid: int | None) -> CgroupStats:
        """Read the step's stats, move `pid` (if alive) back to the workers cgroup, return this cgroup to the pool."""


class CgroupDriver(Protocol):
    """A node's cgroup hierarchy: idle workers in one cgroup, each running step in its own."""

    @property
    def mode(self) -> Isolation: ...

    def setup(self) -> None:
        """Create the node's hierarchy; `CgroupError` if it is unusable."""

    def adopt(self, pid: int) -> None:
        """Put a new, idle worker into the node's workers cgroup."""

    def create(self, name: str, limits: StepLimits) -> StepCgroup:
        """The cgroup of one step, from the pool (or new), with `limits` written."""

    def cleanup_stale(self) -> int:
        """Kill what is in leftover step cgroups of an earlier run and remove them; how many there were."""

    def teardown(self) -> None:
        """Remove the pool, and the node's hierarchy where it is empty."""


def open_driver(
    mode: Isolation,
    *,
    node_name: str,
    root: Path = CGROUP_ROOT,
    proc_self_cgroup: Path = PROC_SELF_CGROUP,
) -> CgroupDriver:
    """The driver for `mode` (see `noded.isolation.resolve`); call `setup()` next."""
    match mode:
        case Isolation.CGROUP2:
            return V2Driver(node_name=node_name, root=root, proc_self_cgroup=proc_self_cgroup)
        case Isolation.CGROUP1:
            return V1Driver(node_name=node_name, root=root, proc_self_cgroup=proc_self_cgroup)
        case Isolation.NONE:
            return NoneDriver(node_name=node_name)
    raise ValueError(f"unknown isolation mode {mode!r}")
