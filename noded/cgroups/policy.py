"""How a step's resource request becomes the limits of its cgroup.

The guest's linear memory is capped exactly at the step's memory by wasmtime; the cgroup adds
`MEMORY_HEADROOM` for the worker's own allocations during the step (the instance, buffers,
compiling a module not yet cached). CPU is the step's request as a CFS quota (at least the
kernel's minimum), and the task count is capped so that a worker cannot fork-bomb the host.
"""

from __future__ import annotations

from agentflow.spec import format_memory
from noded.cgroups.limits import MIN_CPU_MILLIS, StepLimits

MEMORY_HEADROOM = 128 * 1024 * 1024
PIDS_MAX = 64


def step_limits(*, cpu_millis: int, memory_bytes: int) -> StepLimits:
    return StepLimits(
        memory_bytes=memory_bytes + MEMORY_HEADROOM,
        cpu_millis=max(cpu_millis, MIN_CPU_MILLIS),
        pids_max=PIDS_MAX,
    )


def oom_kill_error(memory_bytes: int) -> str:
    """The step's error when the kernel killed its worker at the cgroup's memory limit."""
    limit = format_memory(memory_bytes + MEMORY_HEADROOM)
    return f"memory limit reached: the worker was killed by the kernel at its cgroup limit of {limit}"
