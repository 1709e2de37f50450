"""One linker per engine: each step's host calls reach that step, on whichever thread runs it."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import wasmtime
from test_sandbox_executor import _HOST_MODULE

from noded.sandbox import ExecResult, HostCallError, HostCalls, StepJob
from noded.sandbox.executor import run_step
from noded.sandbox.linking import ModuleLinker
from noded.sandbox.module_cache import CompiledModuleCache

pytestmark = pytest.mark.component

LOG_CALL = "(call $exit (call $abs (call $call (i32.const 0) (i32.const 3) (i32.const 16) (i32.const 16))))"


def answers(result_stdout: str | None) -> dict[str, int]:
    assert result_stdout is not None
    return dict(json.loads(result_stdout))


def test_steps_sharing_a_linker_each_get_their_own_capabilities(
    built_agents: Path, engine: wasmtime.Engine, cache: CompiledModuleCache, make_job: Callable[..., StepJob]
) -> None:
    wasm = built_agents / "tests/agents/hostcalls.wasm"
    plain, llm = make_job(wasm), make_job(wasm, capabilities=frozenset({"llm.complete"}))
    results = [run_step(job, engine=engine, cache=cache) for job in (plain, llm, plain, llm)]
    assert [answers(r.output_json)["llm"] for r in results] == [HostCallError.DENIED, HostCallError.UNAVAILABLE] * 2
    assert [r.denied_host_calls for r in results] == [2, 1, 2, 1]
    assert cache.linker(engine) is cache.linker(engine)  # one linker served them all


def test_steps_on_several_threads_at_once_get_their_own_host_calls(
    built_agents: Path, engine: wasmtime.Engine, cache: CompiledModuleCache, make_job: Callable[..., StepJob]
) -> None:
    wasm = built_agents / "tests/agents/hostcalls.wasm"
    jobs = {"plain": make_job(wasm), "llm": make_job(wasm, capabilities=frozenset({"llm.complete"}))}
    expected = {"plain": HostCallError.DENIED, "llm": HostCallError.UNAVAILABLE}
    wrong: list[str] = []

    def steps(kind: str) -> None:
        for _ in range(30):
            result = run_step(jobs[kind], engine=engine, cache=cache)
            if answers(result.output_json)["llm"] != expected[kind]:
                wrong.append(kind)

    threads = [threading.Thread(target=steps, args=(kind,)) for kind in ("plain", "llm", "plain", "llm")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []


def test_a_host_call_outside_a_bound_step_fails_as_internal(engine: wasmtime.Engine) -> None:
    linker = ModuleLinker(engine)
    module = wasmtime.Module(engine, _HOST_MODULE % LOG_CALL)
    calls = HostCalls(capabilities=frozenset(), log=lambda line: None)

    def exit_code(bound: bool) -> int:
        store = wasmtime.Store(engine)
        store.set_epoch_deadline(1_000_000)
        store.set_wasi(wasmtime.WasiConfig())
        start = linker.instantiate(store, module).exports(store)["_start"]
        assert isinstance(start, wasmtime.Func)
        try:
            if bound:
                with linker.bound(calls):
                    start(store)
            else:
                start(store)
        except wasmtime.ExitTrap as exc:
            return exc.code
        raise AssertionError("the module did not exit")

    assert exit_code(bound=True) == 11  # log: answered by the step's host calls (as in test_host_call_edges)
    assert exit_code(bound=False) == abs(HostCallError.INTERNAL)
    assert linker.initial_memory_bytes(module) == 65536


def test_a_large_stdin_reaches_the_agent_whole(run_agent: Callable[..., ExecResult]) -> None:
    document = {"input": {"text": "x" * (900 * 1024)}, "n": list(range(1000))}
    result = run_agent("tests/agents/echo", json.dumps(document).encode(), memory_limit_bytes=256 * 1024 * 1024)
    assert result.ok, result.error
    assert json.loads(result.output_json or "null") == document
