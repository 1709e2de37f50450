"""Isolation mode `none`: no cgroups; steps are confined by wasmtime alone, so every call is a no-op."""

from __future__ import annotations

from agentflow.vocabulary import Isolation
from noded.cgroups.limits import NO_STATS, CgroupStats, StepLimits
from noded.cgroups.naming import slug


class NoneStepCgroup:
    def __init__(self, name: str) -> None:
        self.name = name

    def attach(self, pid: int) -> None:
        """The worker stays where it is."""

    def release(self, pid: int | None) -> CgroupStats:
        return NO_STATS


class NoneDriver:
    mode = Isolation.NONE

    def __init__(self, *, node_name: str) -> None:
        self.node_name = node_name

    def setup(self) -> None:
        """Nothing to create."""

    def adopt(self, pid: int) -> None:
        """Workers stay in the daemon's cgroup."""

    def create(self, name: str, limits: StepLimits) -> NoneStepCgroup:
        return NoneStepCgroup(slug(name))

    def cleanup_stale(self) -> int:
        return 0

    def teardown(self) -> None:
        """Nothing to remove."""
