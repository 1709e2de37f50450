"""What this host offers to steps."""

from __future__ import annotations

import os

import psutil

# Memory kept back for the daemon, its workers' interpreters and the host.
RESERVED_MEMORY_FRACTION = 0.1
MIB = 1024 * 1024


def host_cpu_millis() -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return max(cores, 1) * 1000


def host_memory_bytes() -> int:
    total = int(psutil.virtual_memory().total)
    offered = int(total * (1 - RESERVED_MEMORY_FRACTION))
    return offered - offered % MIB


def default_slots() -> int:
    """Concurrent steps: two per core, at least four."""
    return max(4, 2 * host_cpu_millis() // 1000)
