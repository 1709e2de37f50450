"""Per-step cgroups for noded's worker processes: cgroup v2, v1, or none.

Typical use in a node daemon::

    driver = open_driver(resolve(config.isolation), node_name=node_subtree(config.name, config.data_dir))
    driver.setup()
    driver.cleanup_stale()
    driver.adopt(worker_pid)                       # each new worker
    step = driver.create(step_key, StepLimits(memory_bytes=..., cpu_millis=250, pids_max=64))
    step.attach(worker_pid)
    ...                                            # the worker runs the step
    stats = step.release(worker_pid)               # worker back in workers/, step cgroup back in the pool
    driver.teardown()

Step cgroups are pooled (`noded.cgroups.pool`): `create` lends an idle `steps/pool-<n>`
and rewrites its limits, making a directory only when none is idle, and `release` returns
it once it is empty, so a step costs a few file writes and pid moves, not mkdir/rmdir.

Everything here is synchronous: each call is a handful of small file writes. Two calls
can wait: `release` up to `RELEASE_TIMEOUT_S` while tasks of the step are still exiting
(and as long again killing what is left), and `cleanup_stale` up to a few seconds per
leftover cgroup; an asyncio caller may want `asyncio.to_thread` for those (the pool is
thread-safe).
"""

from noded.cgroups.driver import CgroupDriver, StepCgroup, open_driver
from noded.cgroups.errors import CgroupError
from noded.cgroups.limits import CPU_PERIOD_US, MIN_CPU_MILLIS, NO_STATS, CgroupStats, StepLimits
from noded.cgroups.naming import MAX_NAME_LEN, node_subtree, slug
from noded.cgroups.none import NoneDriver
from noded.cgroups.policy import MEMORY_HEADROOM, PIDS_MAX, oom_kill_error, step_limits
from noded.cgroups.pool import POOL_CHARGE_MAX, POOL_MAX, StepPool
from noded.cgroups.procfile import PROC_SELF_CGROUP
from noded.cgroups.step import RELEASE_TIMEOUT_S, FileStepCgroup
from noded.cgroups.v1 import V1Driver
from noded.cgroups.v2 import V2Driver

__all__ = [
    "CPU_PERIOD_US",
    "MAX_NAME_LEN",
    "MEMORY_HEADROOM",
    "MIN_CPU_MILLIS",
    "NO_STATS",
    "PIDS_MAX",
    "POOL_CHARGE_MAX",
    "POOL_MAX",
    "PROC_SELF_CGROUP",
    "RELEASE_TIMEOUT_S",
    "CgroupDriver",
    "CgroupError",
    "CgroupStats",
    "FileStepCgroup",
    "NoneDriver",
    "StepCgroup",
    "StepLimits",
    "StepPool",
    "V1Driver",
    "V2Driver",
    "node_subtree",
    "oom_kill_error",
    "open_driver",
    "slug",
    "step_limits",
]
