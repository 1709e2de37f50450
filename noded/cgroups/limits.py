"""What a step cgroup enforces, and what it reports when the step is over."""

from __future__ import annotations

from dataclasses import dataclass

CPU_PERIOD_US = 100_000
"""CFS period of every step cgroup: 100 ms."""
CPU_BURST = "one period's quota"
"""Where the kernel offers CFS burst (5.14+: v1 cpu.cfs_burst_us, v2 cpu.max.burst), a step may
use, in one period, up to one more period's quota that it left unused: its worker's own work
around the guest (taking the job, loading the module, reporting) no longer throttles a small
step into the next period, while its average stays at its quota. (Measured: a chain of no-op
steps of 100m took 25.7 ms per step without burst, 20.6 with it, 19.7 with a whole core.)"""
MIN_CPU_MILLIS = 10
"""The smallest non-zero CPU limit: the kernel refuses quotas under 1 ms per period."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StepLimits:
    memory_bytes: int
    """Hard memory limit of the cgroup (the caller has already added headroom)."""
    cpu_millis: int
    """CPU quota in thousandths of a core (250 = a quarter core); 0 = no quota."""
    pids_max: int
    """Most tasks (threads count) the cgroup may hold."""

    def __post_init__(self) -> None:
        if self.memory_bytes <= 0:
            raise ValueError(f"memory_bytes: {self.memory_bytes} is not positive")
        if self.cpu_millis < 0 or 0 < self.cpu_millis < MIN_CPU_MILLIS:
            raise ValueError(f"cpu_millis: {self.cpu_millis} must be 0 (no quota) or at least {MIN_CPU_MILLIS}")
        if self.pids_max <= 0:
            raise ValueError(f"pids_max: {self.pids_max} is not positive")

    @property
    def cpu_quota_us(self) -> int | None:
        """CFS quota per `CPU_PERIOD_US`, or None for no quota."""
        return self.cpu_millis * CPU_PERIOD_US // 1000 if self.cpu_millis else None


@dataclass(frozen=True, slots=True, kw_only=True)
class CgroupStats:
    memory_peak_bytes: int | None
    """Highest memory use of the step (v1 memory.max_usage_in_bytes, v2 memory.peak); None if unknown."""
    oom_kills: int
    """Tasks the kernel OOM-killed in the step cgroup; 0 if the kernel does not count them."""
    cpu_usage_ns: int | None
    """CPU time the step used (v1 cpuacct.usage, v2 cpu.stat usage_usec); None if unknown."""


NO_STATS = CgroupStats(memory_peak_bytes=None, oom_kills=0, cpu_usage_ns=None)
