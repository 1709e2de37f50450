"""Python agents as WASI preview 2 components in the executor: the same document in, the same
host calls with the same gating, the same failure kinds, and a compiled-component cache."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import wasmtime
from jobs import job_for, step_stdin

from agentflow.vocabulary import FailureKind
from agentflow.wasm_check import component_problem, module_problem
from noded.sandbox import ExecResult
from noded.sandbox.executor import run_step
from noded.sandbox.hostcalls import HostCallError, HostCallRefused, Relay
from noded.sandbox.module_cache import CompiledModuleCache

pytestmark = [pytest.mark.component, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> CompiledModuleCache:
    """One cache for the module's tests: the component compiles once (seconds), then loads (ms)."""
    return CompiledModuleCache(tmp_path_factory.mktemp("compiled"))


@pytest.fixture
def run_python(
    python_agent: Path, engine: wasmtime.Engine, compiled: CompiledModuleCache, scratch: Path
) -> Callable[..., ExecResult]:
    def run(
        input: object, upstream: dict[str, object] | None = None, *, relay: Relay | None = None, **overrides: object
    ) -> ExecResult:
        job = job_for(python_agent, step_stdin(input, upstream or {}), scratch=scratch, **overrides)
        return run_step(job, engine=engine, cache=compiled, relay=relay)

    return run


def test_the_document_goes_in_and_the_result_comes_out(run_python: Callable[..., ExecResult]) -> None:
    r = run_python({"text": "hi"}, {"fetch": {"words": 1}})
    assert r.ok, r.error + r.stderr
    assert json.loads(r.output_json or "") == {
        "input": {"text": "hi"},
        "upstream": {"fetch": {"words": 1}},
        "step": {"run": "run-1", "name": "step", "attempt": 1},
    }
    assert r.exit_code == 0 and r.failure_kind is None


def test_log_lines_and_prints_go_to_the_step_log(run_python: Callable[..., ExecResult]) -> None:
    r = run_python({"do": "log"})
    assert r.ok, r.error
    assert "[warn] a log line" in r.stderr and "a printed line" in r.stderr
    assert r.host_calls == 1


def test_an_ungranted_capability_is_denied_with_its_code_and_counted(run_python: Callable[..., ExecResult]) -> None:
    r = run_python({"do": "fetch", "url": "https://example.com/"})
    assert r.ok, r.error
    assert json.loads(r.output_json or "") == {"denied": [-2, "DENIED", "http.fetch: capability not granted"]}
    assert r.denied_host_calls == 1
    assert "[host] denied host call http.fetch: capability not granted" in r.stderr


def test_a_granted_call_is_relayed_and_its_refusal_keeps_the_reason(run_python: Callable[..., ExecResult]) -> None:
    def relay(op: str, request: object) -> object:
        raise HostCallRefused(HostCallError.BUDGET_EXCEEDED, "llm.complete: the run's budget of $0.01 is spent")

    r = run_python({"do": "llm", "prompt": "hi"}, capabilities=frozenset({"llm.complete"}), relay=relay)
    assert r.ok, r.error + r.stderr
    assert json.loads(r.output_json or "") == {
        "refused": [-8, "BUDGET_EXCEEDED", "llm.complete: the run's budget of $0.01 is spent"]
    }


def test_fail_and_exceptions_fail_the_attempt_with_their_message(run_python: Callable[..., ExecResult]) -> None:
    failed = run_python({"do": "fail"})
    assert failed.failure_kind is FailureKind.EXIT and failed.error == "run returned an error: asked to fail"
    boom = run_python({"do": "boom"})
    assert boom.failure_kind is FailureKind.EXIT
    assert boom.error == "run returned an error: ZeroDivisionError: division by zero"
    assert "Traceback (most recent call last)" in boom.stderr


def test_a_component_that_never_returns_times_out(run_python: Callable[..., ExecResult]) -> None:
    r = run_python({"do": "spin"}, timeout_s=0.5)
    assert r.failure_kind is FailureKind.TIMEOUT
    assert r.error == "wall time limit of 0.5s reached (timed out)"


def test_a_compiled_component_is_cached_on_disk(
    python_agent: Path, engine: wasmtime.Engine, tmp_path: Path, scratch: Path
) -> None:
    cache = CompiledModuleCache(tmp_path / "compiled")
    job = job_for(python_agent, step_stdin({}), scratch=scratch)
    assert run_step(job, engine=engine, cache=cache).ok
    assert cache.stats.compiled == 1
    assert cache.path_for(job.digest, is_component=True).exists()
    fresh = CompiledModuleCache(tmp_path / "compiled")  # another worker: from the file, not a compile
    assert run_step(job, engine=engine, cache=fresh).ok
    assert (fresh.stats.compiled, fresh.stats.disk_hits) == (0, 1)


def _component(*sections: tuple[int, bytes]) -> bytes:
    out = b"\0asm\x0d\x00\x01\x00"
    for section_id, body in sections:
        out += bytes([section_id, len(body)]) + body
    return out


def _import(name: str) -> bytes:
    return bytes([0x00, len(name)]) + name.encode() + bytes([0x05, 0x00])  # an instance of type 0


def test_only_components_of_the_agent_world_are_accepted(python_agent: Path) -> None:
    assert module_problem(python_agent.read_bytes()) is None
    foreign = _component((10, bytes([1]) + _import("acme:db/query@1.0.0")))
    assert component_problem(foreign) == (
        "imports acme:db/query@1.0.0, but the host provides only agentflow:agent/host@1.0.0 and wasi:* (WASI preview 2)"
    )
    no_run = _component((10, bytes([1]) + _import("wasi:cli/stdout@0.2.0")))
    assert component_problem(no_run) == (
        "exports no `run` function (it exports nothing): build it for the agentflow:agent world"
    )
    assert "not a readable WebAssembly component" in (component_problem(_component((10, b"\x01\x07"))) or "")
