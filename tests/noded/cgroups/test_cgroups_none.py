"""Isolation mode `none`: the no-op driver keeps the contract."""

from __future__ import annotations

import os

import pytest

from agentflow.vocabulary import Isolation
from noded.cgroups import NO_STATS, CgroupStats, NoneDriver, StepLimits, open_driver, slug

pytestmark = pytest.mark.unit

LIMITS = StepLimits(memory_bytes=1 << 20, cpu_millis=0, pids_max=1)


def test_open_driver_none_does_nothing() -> None:
    driver = open_driver(Isolation.NONE, node_name="n1")
    assert isinstance(driver, NoneDriver)
    assert driver.mode is Isolation.NONE
    driver.setup()
    driver.adopt(os.getpid())
    step = driver.create("Run/1", LIMITS)
    assert step.name == slug("Run/1")
    step.attach(os.getpid())
    assert step.release(os.getpid()) == NO_STATS
    assert step.release(None) == CgroupStats(memory_peak_bytes=None, oom_kills=0, cpu_usage_ns=None)
    assert driver.cleanup_stale() == 0
    driver.teardown()
    driver.teardown()
