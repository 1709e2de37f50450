"""Fixtures for worker-process tests: job builders for the built agents."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from noded.sandbox import StepJob

MiB = 1024 * 1024

MakeJob = Callable[..., StepJob]


@pytest.fixture
def agent_job(built_agents: Path, tmp_path: Path) -> MakeJob:
    """agent_job("tests/agents/echo", input={...} or stdin=b"...", **StepJob overrides) -> StepJob."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()

    def make(agent: str, *, input: Any = None, stdin: bytes | None = None, **overrides: Any) -> StepJob:
        path = built_agents / f"{agent}.wasm"
        if stdin is None:
            doc = {"input": input or {}, "upstream": {}, "step": {"run": "r", "name": "s", "attempt": 1}}
            stdin = json.dumps(doc).encode()
        fields: dict[str, Any] = {
            "digest": hashlib.sha256(path.read_bytes()).hexdigest(),
            "module_path": str(path),
            "stdin": stdin,
            "timeout_s": 10.0,
            "memory_limit_bytes": 64 * MiB,
            "scratch_dir": str(scratch),
        }
        fields.update(overrides)
        return StepJob(**fields)

    return make
