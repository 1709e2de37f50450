"""Fixtures for the in-process executor: one engine with its ticker, a cache, job builders."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jobs
import pytest
import wasmtime
from jobs import job_for

from noded.sandbox import ExecResult, StepJob
from noded.sandbox.engine import EpochTicker, create_engine
from noded.sandbox.executor import run_step
from noded.sandbox.module_cache import CompiledModuleCache


@pytest.fixture(scope="module")
def engine() -> Iterator[wasmtime.Engine]:
    engine = create_engine()
    with EpochTicker(engine):
        yield engine


@pytest.fixture
def cache(tmp_path: Path) -> CompiledModuleCache:
    return CompiledModuleCache(tmp_path / "compiled")


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    path = tmp_path / "scratch"
    path.mkdir()
    return path


@pytest.fixture
def step_stdin() -> Callable[..., bytes]:
    """step_stdin(input, upstream, name=..., attempt=...) -> the stdin document the control plane sends."""
    return jobs.step_stdin


@pytest.fixture
def make_job(scratch: Path) -> Callable[..., StepJob]:
    """make_job(wasm_path, stdin, **StepJob overrides) -> StepJob with the right digest."""

    def make(path: Path, stdin: bytes = b"{}", **overrides: Any) -> StepJob:
        return job_for(path, stdin, scratch=scratch, **overrides)

    return make


RunAgent = Callable[..., ExecResult]


@pytest.fixture
def run_agent(built_agents: Path, engine: wasmtime.Engine, cache: CompiledModuleCache, scratch: Path) -> RunAgent:
    """run_agent("tests/agents/echo", stdin, **StepJob overrides) -> ExecResult."""

    def run(agent: str, stdin: bytes = b"{}", **overrides: Any) -> ExecResult:
        job = job_for(built_agents / f"{agent}.wasm", stdin, scratch=scratch, **overrides)
        return run_step(job, engine=engine, cache=cache)

    return run
