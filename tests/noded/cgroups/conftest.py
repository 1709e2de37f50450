"""Fixtures for the cgroup driver tests: real child processes, always reaped."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest
from v1_hierarchies import node, real_v1_driver  # noqa: F401  (fixtures of the real-v1 tests)

BLOCK_ON_STDIN = "import sys; sys.stdin.readline()"


class Children:
    """Spawns `python -c CODE` children; `close()` kills and reaps whatever is still running."""

    def __init__(self) -> None:
        self._procs: list[subprocess.Popen[str]] = []

    def spawn(self, code: str = BLOCK_ON_STDIN) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-c", code],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._procs.append(proc)
        return proc

    def close(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()


@pytest.fixture
def spawn() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """spawn(code=BLOCK_ON_STDIN) -> a running `python -c code` child, killed and reaped at teardown."""
    kids = Children()
    try:
        yield kids.spawn
    finally:
        kids.close()
