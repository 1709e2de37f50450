"""run_step with real wasmtime and the agents built from C source."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import wasmtime

from agentflow.vocabulary import FailureKind
from noded.sandbox import ExecResult, HostCallError, StepJob
from noded.sandbox.engine import create_engine
from noded.sandbox.executor import run_step
from noded.sandbox.module_cache import CompiledModuleCache

pytestmark = pytest.mark.component

MiB = 1024 * 1024
RunAgent = Callable[..., ExecResult]
StepStdin = Callable[..., bytes]


def output(result: ExecResult) -> Any:
    assert result.failure_kind is None, (result.error, result.stderr)
    assert result.output_json is not None
    return json.loads(result.output_json)


# ---- example agents ------------------------------------------------------------------


def test_diamond_chain(run_agent: RunAgent, step_stdin: StepStdin) -> None:
    text = 'Say "hi"\tto  the world\n again'
    fetched = output(run_agent("examples/agents/fetch", step_stdin({"text": text}, name="fetch")))
    assert fetched == {"text": text, "words": ["Say", '"hi"', "to", "the", "world", "again"]}

    upstream = {"fetch": fetched}
    counted = output(run_agent("examples/agents/count", step_stdin({}, upstream, name="count")))
    assert counted == {"words": 6, "chars": 22}
    shouted = output(run_agent("examples/agents/shout", step_stdin({}, upstream, name="shout")))
    assert shouted == {"text": 'SAY "HI"\tTO  THE WORLD\n AGAIN'}

    joined = {"count": counted, "shout": shouted}
    summary = output(run_agent("examples/agents/summarize", step_stdin({}, joined, name="summarize")))
    assert summary == {"summary": '6 words, 22 chars: SAY "HI"\tTO  THE WORLD\n AGAIN'}


def test_fetch_default_text_and_log_line(run_agent: RunAgent, step_stdin: StepStdin) -> None:
    result = run_agent("examples/agents/fetch", step_stdin({}))
    assert output(result) == {
        "text": "the quick brown fox jumps over the lazy dog",
        "words": ["the", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog"],
    }
    assert result.stderr == "[info] fetched 9 words\n"


def test_count_handles_unicode_and_escapes(run_agent: RunAgent, step_stdin: StepStdin) -> None:
    upstream = {"fetch": {"text": "x", "words": ["héllo", "naïve\u2603", "a\\b", "\U0001f600"]}}
    assert output(run_agent("examples/agents/count", step_stdin({}, upstream))) == {"words": 4, "chars": 15}


def test_count_without_upstream_fails(run_agent: RunAgent, step_stdin: StepStdin) -> None:
    result = run_agent("examples/agents/count", step_stdin({}))
    assert (result.failure_kind, result.exit_code) == ("exit", 2)
    assert "upstream.fetch.words" in result.stderr


@pytest.mark.parametrize(("n", "square"), [(3, 9), (0, 0), (-12, 144), (100000, 10000000000)], ids=str)
def test_square(run_agent: RunAgent, step_stdin: StepStdin, n: int, square: int) -> None:
    assert output(run_agent("examples/agents/square", step_stdin({"n": n}))) == {"n": n, "square": square}


def test_gather_fan_in(run_agent: RunAgent, step_stdin: StepStdin) -> None:
    squares = {}
    for n in (1, 2, 3, 4):
        squares[f"square-{n}"] = output(run_agent("examples/agents/square", step_stdin({"n": n})))
    assert output(run_agent("examples/agents/gather", step_stdin({}, squares))) == {"count": 4, "sum": 30}
    assert output(run_agent("examples/agents/gather", step_stdin({}, {}))) == {"count": 0, "sum": 0}


# ---- outcomes ------------------------------------------------------------------------


def test_echo_returns_stdin_compacted(run_agent: RunAgent) -> None:
    result = run_agent("tests/agents/echo", b'{ "a" : [1, 2, {"b": null}],\n "c": "\\u00e9" }\n')
    assert result.output_json == '{"a":[1,2,{"b":null}],"c":"é"}'
    assert (result.exit_code, result.trap, result.error, result.stderr) == (0, None, "", "")
    assert result.ok


def test_fail_exit_code_and_stderr(run_agent: RunAgent) -> None:
    result = run_agent("tests/agents/fail")
    assert (result.failure_kind, result.exit_code, result.error) == ("exit", 3, "exited with code 3")
    assert "boom" in result.stderr
    assert result.output_json is None
    assert not result.ok


def test_trap(run_agent: RunAgent) -> None:
    result = run_agent("tests/agents/trap")
    assert result.failure_kind == FailureKind.TRAP
    assert result.error == "trap: wasm `unreachable` instruction executed"
    assert result.trap == "wasm `unreachable` instruction executed"
    assert result.exit_code is None
    assert result.stderr == "about to trap\n"


def test_badjson_is_invalid_output(run_agent: RunAgent) -> None:
    result = run_agent("tests/agents/badjson")
    assert result.failure_kind == "invalid_output"
    assert result.error == "output is not valid JSON: Expecting value: line 1 column 1 (char 0)"
    assert result.exit_code == 0


@pytest.mark.parametrize(
    ("stdout", "error"),
    [
        (b"", "output is not valid JSON: Expecting value: line 1 column 1 (char 0)"),
        (b"1 2", "output is not valid JSON: Extra data: line 1 column 3 (char 2)"),
        (b"NaN", "output is not valid JSON: NaN is not a JSON value"),
        (b'"\xff"', "output is not valid UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "output is not valid JSON: nested too deeply"),
    ],
    ids=["empty", "two-values", "nan", "not-utf8", "deep"],
)
def test_output_must_be_one_json_value(run_agent: RunAgent, stdout: bytes, error: str) -> None:
    result = run_agent("tests/agents/echo", stdout)
    assert result.failure_kind == "invalid_output"
    assert result.error.startswith(error)


def test_lone_surrogate_output_stays_escaped(run_agent: RunAgent) -> None:
    result = run_agent("tests/agents/echo", b'["\\ud800", "\xc3\xa9"]')
    assert result.output_json == '["\\ud800","\\u00e9"]'


def test_spin_times_out(run_agent: RunAgent) -> None:
    result = run_agent("tests/agents/spin", timeout_s=0.5)
    assert (result.failure_kind, result.error) == ("timeout", "wall time limit of 0.5s reached (timed out)")
    assert 0.45 <= result.duration_s < 2.0


def test_sleep_finishes_within_timeout(run_agent: RunAgent, step_stdin: StepStdin) -> None:
    result = run_agent("tests/agents/sleep", step_stdin({"ms": 150}), timeout_s=2.0)
    assert output(result) == {"slept": 150}
    assert result.duration_s >= 0.15


def test_hog_hits_memory_limit(run_agent: RunAgent) -> None:
    result = run_agent("tests/agents/hog", memory_limit_bytes=32 * MiB)
    assert result.failure_kind == "memory"
    assert result.error == "memory limit of 32Mi reached"
    assert result.exit_code == 4
    assert "malloc failed" in result.stderr


def test_limit_below_initial_memory(run_agent: RunAgent) -> None:
    # The agents link with a 256 KiB stack, so they start with a few hundred KiB of memory.
    result = run_agent("tests/agents/echo", memory_limit_bytes=128 * 1024)
    assert result.failure_kind == "memory"
    assert result.error.startswith("memory limit of 128Ki is below the module's initial memory of ")


def test_noisy_hits_output_limit(run_agent: RunAgent) -> None:
    result = run_agent("tests/agents/noisy")
    assert (result.failure_kind, result.error) == ("output_limit", "output limit of 1048576 bytes reached (stdout)")
    assert result.output_json is None


def test_custom_stdout_cap(run_agent: RunAgent) -> None:
    assert run_agent("tests/agents/echo", b"[1,2,3,4]", max_stdout_bytes=9).ok
    result = run_agent("tests/agents/echo", b"[1,2,3,4]", max_stdout_bytes=8)
    assert (result.failure_kind, result.error) == ("output_limit", "output limit of 8 bytes reached (stdout)")


def test_stderr_keeps_the_tail(run_agent: RunAgent) -> None:
    result = run_agent("tests/agents/fail", max_stderr_bytes=16)
    # "boom: failing on purpose\n" is 25 bytes
    assert result.stderr == "[… 9 bytes truncated]\nling on purpose\n"


def test_flaky_depends_on_attempt(run_agent: RunAgent, step_stdin: StepStdin) -> None:
    first = run_agent("tests/agents/flaky", step_stdin({"succeedOn": 3}, attempt=2))
    assert (first.failure_kind, first.exit_code) == ("exit", 1)
    third = run_agent("tests/agents/flaky", step_stdin({"succeedOn": 3}, attempt=3))
    assert output(third) == {"attempt": 3}


# ---- host calls ----------------------------------------------------------------------


def test_hostcalls_without_capabilities(run_agent: RunAgent) -> None:
    result = run_agent("tests/agents/hostcalls")
    assert output(result) == {
        "log": 0,
        "llm": HostCallError.DENIED,
        "http": HostCallError.DENIED,
        "unknown": HostCallError.UNKNOWN_OP,
    }
    assert result.denied_host_calls == 2
    assert result.stderr.splitlines() == [
        '[info] hello from "hostcalls"',
        "[host] denied host call llm.complete: capability not granted",
        "[host] denied host call http.fetch: capability not granted",
    ]


def test_hostcalls_with_llm_capability(run_agent: RunAgent) -> None:
    result = run_agent("tests/agents/hostcalls", capabilities=frozenset({"llm.complete"}))
    assert output(result) == {
        "log": 0,
        "llm": HostCallError.UNAVAILABLE,
        "http": HostCallError.DENIED,
        "unknown": HostCallError.UNKNOWN_OP,
    }
    assert result.denied_host_calls == 1
    assert "[host] llm.complete is not available on this node yet" in result.stderr


# Hand-written modules exercise the ABI edges C code does not reach. Each exits with
# -(return code) of the call under test, or with the code itself when it is positive.
_HOST_MODULE = """
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (import "agentflow" "host_call" (func $call (param i32 i32 i32 i32) (result i64)))
  (import "agentflow" "host_result" (func $result (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "log")
  (data (i32.const 8) "\\ff\\fe")
  (data (i32.const 16) "{\\"message\\":\\"hi\\"}")
  (data (i32.const 64) "{oops")
  (func $abs (param i64) (result i32)
    (if (result i32) (i64.lt_s (local.get 0) (i64.const 0))
      (then (i32.wrap_i64 (i64.sub (i64.const 0) (local.get 0))))
      (else (i32.wrap_i64 (local.get 0)))))
  (func (export "_start")
    %s))
"""


@pytest.mark.parametrize(
    ("body", "exit_code"),
    [
        ("(call $exit (call $abs (call $call (i32.const 0) (i32.const 3) (i32.const 16) (i32.const 16))))", 11),
        ("(call $exit (call $abs (call $call (i32.const 0) (i32.const 3) (i32.const -16) (i32.const 16))))", 3),
        ("(call $exit (call $abs (call $call (i32.const 0) (i32.const 3) (i32.const 65530) (i32.const 16))))", 3),
        ("(call $exit (call $abs (call $call (i32.const 8) (i32.const 2) (i32.const 16) (i32.const 16))))", 3),
        ("(call $exit (call $abs (call $call (i32.const 0) (i32.const 3) (i32.const 64) (i32.const 5))))", 3),
        ("(call $exit (call $abs (call $call (i32.const 0) (i32.const 3) (i32.const 0) (i32.const 2000000))))", 6),
        ("(call $exit (call $abs (call $call (i32.const 0) (i32.const 3) (i32.const 0) (i32.const -1))))", 6),
        ("(call $exit (call $abs (i64.extend_i32_s (call $result (i32.const 128) (i32.const 64)))))", 5),
        (
            "(drop (call $call (i32.const 0) (i32.const 3) (i32.const 16) (i32.const 16)))"
            "(call $exit (call $abs (i64.extend_i32_s (call $result (i32.const 128) (i32.const 64)))))",
            11,
        ),
        (
            "(drop (call $call (i32.const 0) (i32.const 3) (i32.const 16) (i32.const 16)))"
            "(call $exit (call $abs (i64.extend_i32_s (call $result (i32.const 65530) (i32.const 64)))))",
            3,
        ),
        (
            "(drop (call $call (i32.const 0) (i32.const 3) (i32.const 16) (i32.const 16)))"
            "(drop (call $result (i32.const 128) (i32.const 4)))"
            "(call $exit (call $abs (i64.extend_i32_s (call $result (i32.const 128) (i32.const 64)))))",
            5,
        ),
    ],
    ids=[
        "log-ok",
        "signed-pointer-out-of-bounds",
        "request-past-end",
        "op-not-utf8",
        "request-not-json",
        "request-too-large",
        "negative-length",
        "result-none-pending",
        "result-collects",
        "result-buffer-out-of-bounds",
        "result-clears",
    ],
)
def test_host_call_edges(
    tmp_path: Path,
    engine: wasmtime.Engine,
    cache: CompiledModuleCache,
    make_job: Callable[..., StepJob],
    body: str,
    exit_code: int,
) -> None:
    wasm = tmp_path / "edge.wasm"
    wasm.write_bytes(wasmtime.wat2wasm(_HOST_MODULE % body))
    result = run_step(make_job(wasm), engine=engine, cache=cache)
    assert result.exit_code == exit_code, result


# ---- modules that do not load ----------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "error"),
    [
        (b"not wasm at all", "module does not compile: "),
        (wasmtime.wat2wasm('(module (memory (export "memory") 1))'), "module has no _start export"),
        (
            wasmtime.wat2wasm('(module (import "env" "nope" (func)) (func (export "_start")))'),
            "module does not instantiate: ",
        ),
    ],
    ids=["not-wasm", "no-start", "unknown-import"],
)
def test_module_failures(
    tmp_path: Path,
    engine: wasmtime.Engine,
    cache: CompiledModuleCache,
    make_job: Callable[..., StepJob],
    source: bytes,
    error: str,
) -> None:
    wasm = tmp_path / "broken.wasm"
    wasm.write_bytes(source)
    result = run_step(make_job(wasm), engine=engine, cache=cache)
    assert result.failure_kind == "module"
    assert result.error.startswith(error), result.error


def test_unknown_import_names_it(
    tmp_path: Path, engine: wasmtime.Engine, cache: CompiledModuleCache, make_job: Callable[..., StepJob]
) -> None:
    wasm = tmp_path / "imports.wasm"
    wasm.write_bytes(wasmtime.wat2wasm('(module (import "env" "nope" (func)) (func (export "_start")))'))
    result = run_step(make_job(wasm), engine=engine, cache=cache)
    assert "env::nope" in result.error


# ---- filesystem and host-side errors -----------------------------------------------------


def test_missing_scratch_dir_raises(
    built_agents: Path, engine: wasmtime.Engine, cache: CompiledModuleCache, make_job: Callable[..., StepJob]
) -> None:
    job = make_job(built_agents / "tests/agents/echo.wasm", scratch_dir="/nonexistent/scratch")
    with pytest.raises(FileNotFoundError, match="scratch_dir"):
        run_step(job, engine=engine, cache=cache)


def test_engine_without_ticker_is_refused(
    built_agents: Path, cache: CompiledModuleCache, make_job: Callable[..., StepJob]
) -> None:
    job = make_job(built_agents / "tests/agents/echo.wasm")
    with pytest.raises(RuntimeError, match="EpochTicker"):
        run_step(job, engine=create_engine(), cache=cache)
