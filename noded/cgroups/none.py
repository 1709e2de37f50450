"""Isolation mode `none`: no cgroups (the worker's rlimits are all there is); every call is a no-op."""

from __future__ import annotations

from noded.cgroups.limits import NO_STATS, CgroupStats, StepLimits
from noded.cgroups.naming import slug
from noded.isolation import IsolationMode


class NoneStepCgroup:
    def __init__(self, name: str) -> None:
        self.name = name

    def attach(self, pid: int) -> None:
        pass

    def release(self, pid: int | None) -> CgroupStats:
        return NO_STATS


class NoneDriver:
    mode = IsolationMode.NONE

    def __init__(self, *, node_name: str) -> None:
        self.node_name = node_name

    def setup(self) -> None:
        pass

    def adopt(self, pid: int) -> None:
        pass

    def create(self, name: str, limits: StepLimits) -> NoneStepCgroup:
        return NoneStepCgroup(slug(name))

    def cleanup_stale(self) -> int:
        return 0

    def teardown(self) -> None:
        pass
