"""Modules that try to take more than a step may have fail that step, and only that step."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import wasmtime

from noded.sandbox import StepJob
from noded.sandbox.executor import run_step
from noded.sandbox.module_cache import CompiledModuleCache

pytestmark = pytest.mark.component

START = '(func (export "_start"))'


def module(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "hostile.wasm"
    path.write_bytes(wasmtime.wat2wasm(f"(module {body})"))
    return path


def run(engine: wasmtime.Engine, cache: CompiledModuleCache, job: StepJob):  # type: ignore[no-untyped-def]
    return run_step(job, engine=engine, cache=cache)


@pytest.mark.parametrize(
    ("body", "kind", "reason"),
    [
        (f"(table 2000000 funcref) {START}", "module", "table"),
        (f'(memory 20000) (export "memory" (memory 0)) {START}', "memory", "initial memory"),
        ('(func $f (call $f)) (func (export "_start") (call $f))', "trap", "stack"),
        ('(func (export "_start") (loop (br 0)))', "timeout", "timed out"),
    ],
    ids=["huge-table", "huge-initial-memory", "unbounded-recursion", "infinite-loop"],
)
def test_hostile_module_fails_its_step(
    tmp_path: Path,
    engine: wasmtime.Engine,
    cache: CompiledModuleCache,
    make_job: Callable[..., StepJob],
    built_agents: Path,
    body: str,
    kind: str,
    reason: str,
) -> None:
    job = make_job(module(tmp_path, body), timeout_s=0.5, memory_limit_bytes=64 * 1024 * 1024)
    result = run(engine, cache, job)
    assert result.failure_kind == kind, result
    assert reason in result.error
    # The same engine and cache go on serving healthy modules.
    echo = run(engine, cache, make_job(built_agents / "tests" / "agents" / "echo.wasm", stdin=b'{"a": 1}'))
    assert echo.ok and echo.output_json == '{"a":1}'
