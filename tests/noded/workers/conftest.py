"""Fixtures for worker-process tests: job builders for the built agents."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from jobs import job_for, step_stdin

from noded.sandbox import StepJob

MakeJob = Callable[..., StepJob]


@pytest.fixture
def agent_job(built_agents: Path, tmp_path: Path) -> MakeJob:
    """agent_job("tests/agents/echo", input={...} or stdin=b"...", **StepJob overrides) -> StepJob."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()

    def make(agent: str, *, input: Any = None, stdin: bytes | None = None, **overrides: Any) -> StepJob:
        stdin = step_stdin(input, run="r", name="s") if stdin is None else stdin
        return job_for(built_agents / f"{agent}.wasm", stdin, scratch=scratch, **overrides)

    return make
