"""Runs one agent step (a WASI preview1 command module) in wasmtime, synchronously.

``run_step`` never raises for anything the guest does: a failing, trapping, looping,
memory-hungry or chatty agent yields an ``ExecResult`` whose ``failure_kind`` says why.
It raises only for host-side problems (no epoch ticker, missing scratch directory,
unreadable module file).

The guest sees: stdin = ``job.stdin``; stdout captured up to ``max_stdout_bytes`` and
validated as one JSON value; stderr kept as a tail of ``max_stderr_bytes`` together with
host-call log lines; ``/scratch`` (read-write), each of ``allowed_paths`` (read-only) and of
``writable_paths`` (read-write), each at the same path as on the host; no environment, no
arguments; the ``agentflow`` host-call imports. A preopened directory is the root of what the
guest reaches through it: wasmtime resolves every path beneath it without leaving it (``..``
and symlinks pointing outside fail), and the directory itself cannot be removed or renamed.
Used in-process by unit tests and by ``noded.workers.worker_main``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Protocol

import wasmtime
from wasmtime import component

from agentflow.jsonvalue import normalize_output
from agentflow.spec.quantity import format_bytes
from agentflow.vocabulary import FailureKind
from noded.sandbox.components import (
    MAX_COMPONENT_INSTANCES,
    MAX_COMPONENT_MEMORIES,
    ComponentShapeError,
    RunAnswer,
    call_run,
    instantiate_run,
    linker_for,
)
from noded.sandbox.engine import deadline_ticks, ticking
from noded.sandbox.hostcalls import (
    DEFAULT_OPERATIONS,
    HostCallLimitReached,
    HostCalls,
    Relay,
    relayed_operations,
)
from noded.sandbox.job import ExecResult, StepJob
from noded.sandbox.module_cache import CompiledModuleCache

# Caps on what a hostile module may allocate besides linear memory.
MAX_TABLE_ELEMENTS = 1_000_000
MAX_TABLES = 16
SCRATCH_GUEST_PATH = "/scratch"

# A failed guest whose memory ends this close to its limit is taken to have died of a
# denied memory.grow (the store limiter makes the grow return -1 and malloc fail; wasmtime's
# C API gives no callback for the denial itself).
_MEMORY_HEADROOM_MIN_BYTES = 2 * 1024 * 1024
_MEMORY_HEADROOM_FRACTION = 16


class _TailBuffer:
    """Keeps the last ``limit`` bytes written; counts what it dropped."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._buf = bytearray()
        self._dropped = 0

    def write(self, data: bytes) -> None:
        self._buf += data
        if len(self._buf) > 2 * self._limit:  # trim in batches, not on every write
            self._trim()

    def line(self, text: str) -> None:
        """Appends a whole line, starting a new one if the guest left one open."""
        if self._buf and not self._buf.endswith(b"\n"):
            self._buf += b"\n"
        self.write(text.encode("utf-8", "replace") + b"\n")

    def text(self) -> str:
        self._trim()
        body = self._buf.decode("utf-8", "replace")
        if self._dropped:
            return f"[… {self._dropped} bytes truncated]\n{body}"
        return body

    def _trim(self) -> None:
        excess = len(self._buf) - self._limit
        if excess <= 0:
            return
        # Do not start the kept tail in the middle of a UTF-8 sequence.
        while excess < len(self._buf) and 0x80 <= self._buf[excess] < 0xC0:
            excess += 1
        del self._buf[:excess]
        self._dropped += excess


class _CappedOutput:
    """Collects stdout up to ``limit`` bytes; anything beyond marks it overflowed."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._chunks: list[bytes] = []
        self._size = 0
        self.overflowed = False

    def write(self, data: bytes) -> None:
        if self.overflowed:
            return
        if self._size + len(data) > self._limit:
            self.overflowed = True
            self._chunks.clear()
            return
        self._chunks.append(data)
        self._size += len(data)

    def getvalue(self) -> bytes:
        return b"".join(self._chunks)


def _trap_reason(exc: BaseException) -> str:
    """The one-line cause of a trap/error, without wasmtime's backtrace."""
    text = str(exc).strip()
    if "Caused by:" in text:
        text = text.rsplit("Caused by:", 1)[1]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    reason = lines[-1] if lines else type(exc).__name__
    # "0: wasm trap: ..." style chains: keep the innermost cause.
    if len(reason) > 3 and reason[0].isdigit() and ": " in reason:
        reason = reason.split(": ", 1)[1]
    return reason.removeprefix("wasm trap: ")


def _near_memory_limit(used: int, limit: int) -> bool:
    headroom = max(_MEMORY_HEADROOM_MIN_BYTES, limit // _MEMORY_HEADROOM_FRACTION)
    return used + headroom > limit


def run_step(
    job: StepJob,
    *,
    engine: wasmtime.Engine,
    cache: CompiledModuleCache,
    relay: Relay | None = None,
    restrict: Callable[[], None] | None = None,
) -> ExecResult:
    """Runs ``job`` to completion and classifies the outcome. See the module docstring.

    With `relay`, the host calls the node serves (``llm.complete``, ``http.fetch``) go to it;
    without, they answer UNAVAILABLE. `restrict` runs in the calling thread once the module
    is loaded and the step's directories are open, just before guest code starts (the
    worker's per-step Landlock, see `noded.sandbox.confine`); what it raises propagates.
    The engine's `EpochTicker` ticks while it runs (`ticking`), and only then.
    """
    with ticking(engine):
        return _run_step(job, engine=engine, cache=cache, relay=relay, restrict=restrict)


def _run_step(
    job: StepJob,
    *,
    engine: wasmtime.Engine,
    cache: CompiledModuleCache,
    relay: Relay | None,
    restrict: Callable[[], None] | None,
) -> ExecResult:
    if not os.path.isdir(job.scratch_dir):
        raise FileNotFoundError(f"scratch_dir {job.scratch_dir!r} is not a directory")
    for path in (*job.allowed_paths, *job.writable_paths):
        if not os.path.exists(path):
            raise FileNotFoundError(f"allowed path {path!r} does not exist")

    started = time.perf_counter()
    cpu_started = time.thread_time()
    memory_used = 0
    stdout = _CappedOutput(job.max_stdout_bytes)
    stderr = _TailBuffer(job.max_stderr_bytes)
    operations = DEFAULT_OPERATIONS if relay is None else relayed_operations(relay)
    calls = HostCalls(capabilities=job.capabilities, log=stderr.line, operations=operations)

    def result(
        failure_kind: FailureKind | None,
        error: str = "",
        *,
        exit_code: int | None = None,
        trap: str | None = None,
        output_json: str | None = None,
    ) -> ExecResult:
        return ExecResult(
            exit_code=exit_code,
            trap=trap,
            failure_kind=failure_kind,
            error=error,
            output_json=output_json,
            stderr=stderr.text(),
            duration_s=time.perf_counter() - started,
            denied_host_calls=calls.denied,
            cpu_s=time.thread_time() - cpu_started,
            memory_bytes=memory_used,
            host_calls=calls.calls,
        )

    try:
        module = cache.load(engine, job.module_path, job.digest)
    except wasmtime.WasmtimeError as exc:
        return result(FailureKind.MODULE, f"module does not compile: {_trap_reason(exc)}")
    if isinstance(module, component.Component):
        return _run_component_step(job, module, engine=engine, calls=calls, stderr=stderr, restrict=restrict,
                                   result=result)  # fmt: skip
    linker = cache.linker(engine)
    initial_memory = linker.initial_memory_bytes(module)
    if initial_memory > job.memory_limit_bytes:
        return result(
            FailureKind.MEMORY,
            f"memory limit of {format_bytes(job.memory_limit_bytes)} is below the module's initial "
            f"memory of {format_bytes(initial_memory)}",
        )

    store = wasmtime.Store(engine)
    try:
        store.set_limits(
            memory_size=job.memory_limit_bytes,
            table_elements=MAX_TABLE_ELEMENTS,
            instances=1,
            tables=MAX_TABLES,
            memories=1,
        )
        # With epoch interruption on, a store without a deadline traps at once.
        store.set_epoch_deadline(deadline_ticks(job.timeout_s))
        _configure_wasi(store, job, stdout, stderr)
        if restrict is not None:
            restrict()

        try:
            instance = linker.instantiate(store, module)
        except (wasmtime.WasmtimeError, wasmtime.Trap) as exc:
            return result(FailureKind.MODULE, f"module does not instantiate: {_trap_reason(exc)}")
        exports = instance.exports(store)
        start = exports.get("_start")
        if not isinstance(start, wasmtime.Func):
            return result(FailureKind.MODULE, "module has no _start export (not a WASI command)")

        exit_code: int | None = 0
        failure: BaseException | None = None
        try:
            with linker.bound(calls):
                start(store)
        except wasmtime.ExitTrap as exc:
            exit_code = exc.code
        except (wasmtime.Trap, wasmtime.WasmtimeError, HostCallLimitReached) as exc:
            exit_code, failure = None, exc

        memory = exports.get("memory")
        used = memory_used = memory.data_len(store) if isinstance(memory, wasmtime.Memory) else 0
    finally:
        store.close()  # frees the guest's memory now rather than at the next GC

    if isinstance(failure, HostCallLimitReached):
        return result(FailureKind.HOST_CALL_LIMIT, str(failure))
    if failure is not None:
        reason = _trap_reason(failure)
        code = failure.trap_code if isinstance(failure, wasmtime.Trap) else None
        if code is wasmtime.TrapCode.INTERRUPT or (code is None and reason == "interrupt"):
            error = f"wall time limit of {float(job.timeout_s)}s reached (timed out)"
            return result(FailureKind.TIMEOUT, error, trap=reason)
        if _near_memory_limit(used, job.memory_limit_bytes):
            return result(
                FailureKind.MEMORY, f"memory limit of {format_bytes(job.memory_limit_bytes)} reached", trap=reason
            )
        return result(FailureKind.TRAP, f"trap: {reason}", trap=reason)
    if exit_code:
        if _near_memory_limit(used, job.memory_limit_bytes):
            return result(
                FailureKind.MEMORY,
                f"memory limit of {format_bytes(job.memory_limit_bytes)} reached",
                exit_code=exit_code,
            )
        return result(FailureKind.EXIT, f"exited with code {exit_code}", exit_code=exit_code)
    if stdout.overflowed:
        error = f"output limit of {job.max_stdout_bytes} bytes reached (stdout)"
        return result(FailureKind.OUTPUT_LIMIT, error, exit_code=exit_code)
    output_json, problem = normalize_output(stdout.getvalue())
    if output_json is None:
        return result(FailureKind.INVALID_OUTPUT, problem, exit_code=exit_code)
    return result(None, exit_code=exit_code, output_json=output_json)


class _Result(Protocol):
    def __call__(
        self,
        failure_kind: FailureKind | None,
        error: str = "",
        *,
        exit_code: int | None = None,
        trap: str | None = None,
        output_json: str | None = None,
    ) -> ExecResult: ...


def _run_component_step(
    job: StepJob,
    compiled: component.Component,
    *,
    engine: wasmtime.Engine,
    calls: HostCalls,
    stderr: _TailBuffer,
    restrict: Callable[[], None] | None,
    result: _Result,
) -> ExecResult:
    """A component step: the document goes to `run` (and stdin), what it prints to the step's log."""
    store = wasmtime.Store(engine)
    linker = linker_for(engine, calls)
    answer: RunAnswer | None = None
    failure: BaseException | None = None
    try:
        store.set_limits(
            memory_size=job.memory_limit_bytes,
            table_elements=MAX_TABLE_ELEMENTS,
            instances=MAX_COMPONENT_INSTANCES,
            tables=MAX_TABLES * MAX_COMPONENT_INSTANCES,
            memories=MAX_COMPONENT_MEMORIES,
        )
        store.set_epoch_deadline(deadline_ticks(job.timeout_s))
        _configure_wasi(store, job, stderr, stderr)  # print() is a log line too, not the output
        if restrict is not None:
            restrict()
        try:
            run = instantiate_run(store, compiled, linker)
        except (wasmtime.WasmtimeError, wasmtime.Trap, ComponentShapeError) as exc:
            return result(FailureKind.MODULE, f"component does not instantiate: {_trap_reason(exc)}")
        try:
            answer = call_run(store, run, job.stdin.decode("utf-8", "replace"))
        except (wasmtime.Trap, wasmtime.WasmtimeError, HostCallLimitReached, ComponentShapeError) as exc:
            failure = exc
    finally:
        linker.close()
        store.close()
    if isinstance(failure, HostCallLimitReached):
        return result(FailureKind.HOST_CALL_LIMIT, str(failure))
    if isinstance(failure, ComponentShapeError):
        return result(FailureKind.MODULE, str(failure))
    if failure is not None:
        reason = _trap_reason(failure)
        code = failure.trap_code if isinstance(failure, wasmtime.Trap) else None
        if code is wasmtime.TrapCode.INTERRUPT or (code is None and reason == "interrupt"):
            return result(FailureKind.TIMEOUT, f"wall time limit of {float(job.timeout_s)}s reached (timed out)",
                          trap=reason)  # fmt: skip
        return result(FailureKind.TRAP, f"trap: {reason}", trap=reason)
    assert answer is not None
    if not answer.ok:
        stderr.line(f"[agent] run returned an error: {answer.text}")
        return result(FailureKind.EXIT, f"run returned an error: {answer.text}", exit_code=1)
    if len(answer.text.encode()) > job.max_stdout_bytes:
        return result(FailureKind.OUTPUT_LIMIT, f"output limit of {job.max_stdout_bytes} bytes reached (run's result)",
                      exit_code=0)  # fmt: skip
    output_json, problem = normalize_output(answer.text.encode())
    if output_json is None:
        return result(FailureKind.INVALID_OUTPUT, problem, exit_code=0)
    return result(None, exit_code=0, output_json=output_json)


def _configure_wasi(
    store: wasmtime.Store, job: StepJob, stdout: _CappedOutput | _TailBuffer, stderr: _TailBuffer
) -> None:
    wasi = wasmtime.WasiConfig()
    # WasiConfig reads stdin from a file, not bytes: a memfd, which WASI opens (anew, at
    # offset 0) when it is set, so it can be closed at once. A temporary file on disk cost
    # 0.2-0.4 ms a step more (create, write, unlink).
    fd = os.memfd_create("agentflow-stdin", os.MFD_CLOEXEC)
    try:
        view = memoryview(job.stdin)
        while view:
            view = view[os.write(fd, view) :]
        wasi.stdin_file = f"/proc/self/fd/{fd}"
    finally:
        os.close(fd)
    # The callbacks must not raise: wasmtime-py prints such errors to stdout.
    wasi.stdout_custom = stdout.write
    wasi.stderr_custom = stderr.write
    wasi.preopen_dir(job.scratch_dir, SCRATCH_GUEST_PATH, True)
    for path in job.allowed_paths:
        wasi.preopen_dir(path, path, False)
    for path in job.writable_paths:
        wasi.preopen_dir(path, path, True)
    store.set_wasi(wasi)
