"""Which cgroup hierarchy this host offers: cgroup v2, v1, or none (rlimits only)."""

from __future__ import annotations

import os
from pathlib import Path

from agentflow.vocabulary import Isolation

CGROUP_ROOT = Path("/sys/fs/cgroup")
V1_CONTROLLERS = ("memory", "cpu", "pids")
V2_CONTROLLERS = ("memory", "cpu", "pids")


def detect(root: Path = CGROUP_ROOT) -> Isolation:
    """The strongest mode this process can use under `root`.

    cgroup v2 needs a unified hierarchy at `root` that offers the memory, cpu and pids
    controllers and is writable by us; v1 needs writable memory, cpu and pids hierarchies.
    """
    controllers = root / "cgroup.controllers"
    if controllers.is_file():
        try:
            offered = set(controllers.read_text().split())
        except OSError:
            offered = set()
        if set(V2_CONTROLLERS) <= offered and os.access(root, os.W_OK):
            return Isolation.CGROUP2
    if all((root / c).is_dir() and os.access(root / c, os.W_OK) for c in V1_CONTROLLERS):
        return Isolation.CGROUP1
    return Isolation.NONE


def resolve(requested: str, root: Path = CGROUP_ROOT) -> Isolation:
    """`auto` picks what `detect` finds; an explicit mode must be available."""
    found = detect(root)
    if requested == "auto":
        return found
    wanted = Isolation(requested)
    if wanted is Isolation.NONE or wanted is found:
        return wanted
    raise ValueError(f'isolation "{wanted}" is not available on this host (found "{found}" under {root})')
