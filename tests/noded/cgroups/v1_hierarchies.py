"""Helpers for the tests on this host's real cgroup v1 hierarchies (`test_cgroups_v1.py`, `test_cgroups_pool.py`)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from agentflow.vocabulary import Isolation
from noded.cgroups import CgroupError, V1Driver, fs, open_driver
from noded.cgroups.procfile import parse
from noded.isolation import CGROUP_ROOT, detect

MiB = 1024 * 1024
CONTROLLERS = ("memory", "cpu", "pids")
T = TypeVar("T")
Spawn = Callable[..., subprocess.Popen[str]]


def require_cgroup_v1() -> None:
    """These tests use the real kernel: without it they fail and say what is missing."""
    if os.geteuid() != 0 or detect() is not Isolation.CGROUP1:
        pytest.fail(
            "needs root and writable cgroup v1 memory, cpu and pids hierarchies under /sys/fs/cgroup "
            f"(euid {os.geteuid()}, detected {detect().value})",
            pytrace=False,
        )


def cgroup_of(pid: int) -> dict[str, str]:
    """Controller → cgroup path of `pid`, from /proc/<pid>/cgroup."""
    return {c: m.path for m in parse(Path(f"/proc/{pid}/cgroup").read_text()) for c in m.controllers}


def expected(node: str, leaf: str) -> dict[str, str]:
    """Controller → the path `leaf` (e.g. "workers") of node `node` should have, from our own cgroups."""
    own = cgroup_of(os.getpid())
    return {c: f"{own[c].rstrip('/')}/agentflow/{node}/{leaf}" for c in CONTROLLERS}


def node_dirs(node: str) -> list[Path]:
    own = cgroup_of(os.getpid())
    return [CGROUP_ROOT / c / own[c].lstrip("/") / "agentflow" / node for c in (*CONTROLLERS, "cpuacct") if c in own]


def scrub(driver: V1Driver) -> None:
    """Whatever a failed test left: kill it, remove the node's cgroups."""
    driver.cleanup_stale()
    for controller in (*CONTROLLERS, "cpuacct"):
        with contextlib.suppress(CgroupError):  # no such hierarchy, e.g. cpuacct co-mounted with cpu
            fs.remove(driver.node_dir(controller) / "workers", timeout_s=5.0, kill=True)
    driver.teardown()


def state(pid: int) -> str | None:
    """The state letter of `pid` in /proc ("Z" for a zombie), or None once it is reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return None


def wait_for(check: Callable[[], T], *, within: float = 10.0, what: str = "") -> T:
    """Call `check` until it returns something truthy; fail after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {within}s: {what or check!r} (last: {last!r})")
        time.sleep(0.01)


@pytest.fixture
def node() -> str:
    return f"pytest-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def real_v1_driver(node: str) -> Iterator[V1Driver]:
    """The node's driver on this host's real v1 hierarchies (root needed), scrubbed after the
    test, which fails if anything is left behind."""
    require_cgroup_v1()
    d = open_driver(Isolation.CGROUP1, node_name=node)
    assert isinstance(d, V1Driver)
    d.setup()
    try:
        yield d
    finally:
        scrub(d)
        leftovers = [p for p in node_dirs(node) if p.exists()]
        assert not leftovers, f"cgroups left behind: {leftovers}"
