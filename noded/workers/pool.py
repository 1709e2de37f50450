"""A warm pool of worker processes that run agent steps, one step per worker at a time.

Contract:

- ``start()`` spawns ``warm`` workers and returns once they are ready. The pool keeps
  ``warm`` idle workers ahead of demand, spawning replacements in the background, and
  never has more than ``max_workers`` processes; callers beyond that wait for a slot.
- ``run(job)`` returns an ``ExecResult`` for everything the step does, including two
  pool-level outcomes: ``timeout`` when the worker does not answer within
  ``job.timeout_s + guard_s`` (the worker is SIGKILLed) and ``worker_lost`` when the worker
  dies mid-job. A worker that failed either way is replaced.
- ``cancel(key)`` kills the worker running (or stops the wait for) the job started with
  that ``key``; its ``run`` raises ``StepCancelled``. Cancelling the task awaiting ``run``
  also kills the worker, and the ``CancelledError`` propagates.
- ``before_job(pid, job)`` (optional, async) is called after a worker is chosen and
  before the job is sent — the hook for moving the worker into the step's cgroup. If it
  raises, the worker is discarded and the exception propagates. ``on_end(pid)`` (per call,
  sync) runs once the job is over, whatever its outcome and whether the worker lives, before
  the worker can take another job — the hook for moving it out of the step's cgroup.
  ``on_start(pid)`` (per
  call, sync or async) reports which process runs the job.
- ``shutdown()`` is idempotent: it closes idle workers' stdin and SIGTERMs every worker,
  SIGKILLs what is left after ``grace_s``, and awaits every exit, so no child outlives it
  and none is left a zombie. Jobs in flight raise ``PoolClosed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from agentflow.vocabulary import FailureKind, SandboxLayer
from noded.sandbox import ExecResult, HostCallError, HostCallRefused, StepJob
from noded.sandbox.confine import Confinement
from noded.workers.errors import PoolClosed, ProtocolError, StepCancelled, WorkerCrashed, WorkerStartError
from noded.workers.protocol import (
    ERROR,
    HOST_CALL,
    HOST_REPLY,
    JOB,
    READY,
    RESULT,
    encode_frame,
    job_to_dict,
    read_frame,
    result_from_dict,
)

log = logging.getLogger(__name__)

DEFAULT_GUARD_S = 5.0
"""Extra time a worker gets beyond the step timeout before it is SIGKILLed."""
DEFAULT_GRACE_S = 2.0
"""Time between SIGTERM and SIGKILL at shutdown."""
DEFAULT_START_TIMEOUT_S = 30.0
"""Time a new worker has to report ready."""

BeforeJob = Callable[[int, StepJob], Awaitable[None]]
OnStart = Callable[[int], Any]
OnEnd = Callable[[int], None]
HostHandler = Callable[[str, Any, float], Awaitable[Any]]
"""Answers a host call of a running job: (op, the guest's JSON request, seconds left of the
step's timeout) -> the JSON response, or raises HostCallRefused."""


class PoolState(Enum):
    NEW = "new"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"


class _Worker:
    """One worker process and its pipes."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.pid = proc.pid
        self.reusable = True
        self.reaping = False

    @property
    def alive(self) -> bool:
        return self.proc.returncode is None

    def signal(self, sig: int) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)

    def kill(self) -> None:
        self.reusable = False
        self.signal(signal.SIGKILL)

    def close_stdin(self) -> None:
        stdin = self.proc.stdin
        if stdin is not None and not stdin.is_closing():
            stdin.close()

    async def read(self) -> dict[str, Any] | None:
        assert self.proc.stdout is not None
        return await read_frame(self.proc.stdout)

    async def send(self, frame: bytes) -> bool:
        """Writes a frame; False if the worker's stdin is gone."""
        stdin = self.proc.stdin
        assert stdin is not None
        try:
            stdin.write(frame)
            await stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            return False
        return True

    def describe_exit(self) -> str:
        rc = self.proc.returncode
        if rc is None:
            return "is still running"
        if rc < 0:
            try:
                return f"was killed by signal {signal.Signals(-rc).name}"
            except ValueError:
                return f"was killed by signal {-rc}"
        return f"exited with code {rc}"


@dataclass(slots=True, eq=False)
class _Entry:
    """A job between ``run`` being called and returning."""

    key: str | None
    task: asyncio.Task[Any] | None
    worker: _Worker | None = None
    cancelled: bool = False


class WorkerPool:
    """Warm pool of ``noded.workers.worker_main`` processes. See the module docstring."""

    def __init__(
        self,
        cache_dir: str | os.PathLike[str],
        *,
        warm: int = 1,
        max_workers: int = 4,
        python: str = sys.executable,
        before_job: BeforeJob | None = None,
        guard_s: float = DEFAULT_GUARD_S,
        grace_s: float = DEFAULT_GRACE_S,
        start_timeout_s: float = DEFAULT_START_TIMEOUT_S,
        env: Mapping[str, str] | None = None,
        confinement: Confinement = Confinement.AUTO,
    ) -> None:
        if max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, got {max_workers}")
        if not 0 <= warm <= max_workers:
            raise ValueError(f"warm must be between 0 and max_workers ({max_workers}), got {warm}")
        self._cache_dir = os.fspath(cache_dir)
        self._warm = warm
        self._max = max_workers
        self._python = python
        self._before_job = before_job
        self._guard_s = guard_s
        self._grace_s = grace_s
        self._start_timeout_s = start_timeout_s
        self._env = dict(env) if env is not None else None
        self._confinement = confinement
        self.layers: frozenset[SandboxLayer] = frozenset()
        """The sandbox layers the last worker to start reported (all start alike)."""

        self._state = PoolState.NEW
        self._slots = asyncio.Semaphore(max_workers)
        self._idle: deque[_Worker] = deque()
        self._workers: set[_Worker] = set()  # every live process, whatever its state
        self._busy = 0
        self._starting = 0  # inline and background spawns in progress
        self._bg_starting = 0  # background spawns in progress (they become idle)
        self._changed = asyncio.Event()
        self._entries: dict[str, _Entry] = {}
        self._spawners: set[asyncio.Task[Any]] = set()  # background spawns: cancelled at shutdown
        self._reapers: set[asyncio.Task[Any]] = set()  # waits for discarded workers: never cancelled
        self._stopped = asyncio.Event()
        self.spawn_failures = 0

    # ---- public face ----------------------------------------------------------------

    @property
    def state(self) -> PoolState:
        return self._state

    @property
    def idle_count(self) -> int:
        return len(self._idle)

    @property
    def busy_count(self) -> int:
        return self._busy

    @property
    def queued_count(self) -> int:
        """Keyed jobs waiting for a worker."""
        return sum(1 for entry in self._entries.values() if entry.worker is None)

    @property
    def pids(self) -> list[int]:
        """Pids of every worker process the pool currently owns."""
        return sorted(w.pid for w in self._workers)

    def pid_of(self, key: str) -> int | None:
        """Pid of the worker running the job started with ``key``, if it is running."""
        entry = self._entries.get(key)
        return entry.worker.pid if entry is not None and entry.worker is not None else None

    async def start(self) -> None:
        """Spawns the warm workers and waits until they are ready."""
        if self._state is not PoolState.NEW:
            raise RuntimeError(f"pool is {self._state.value}")
        self._state = PoolState.RUNNING
        try:
            async with asyncio.TaskGroup() as group:
                spawns = [group.create_task(self._spawn()) for _ in range(self._warm)]
        except BaseException as exc:
            await self.shutdown()
            if isinstance(exc, ExceptionGroup):
                raise WorkerStartError(f"could not start the warm workers: {exc.exceptions[0]}") from exc
            raise
        self._idle.extend(spawn.result() for spawn in spawns)

    async def __aenter__(self) -> WorkerPool:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.shutdown()

    async def run(
        self,
        job: StepJob,
        *,
        key: str | None = None,
        on_start: OnStart | None = None,
        on_end: OnEnd | None = None,
        host: HostHandler | None = None,
    ) -> ExecResult:
        """Runs ``job`` on a worker. ``key`` makes it cancellable with ``cancel(key)``; ``host``
        answers the job's relayed host calls (without it they are UNAVAILABLE)."""
        self._check_open()
        if key is not None and key in self._entries:
            raise ValueError(f"a job with key {key!r} is already in the pool")
        entry = _Entry(key=key, task=asyncio.current_task())
        if key is not None:
            self._entries[key] = entry
        try:
            async with self._slots:
                self._check_open()
                worker = await self._checkout()
                entry.worker = worker
                try:
                    return await self._run_on(worker, job, entry, on_start, host)
                finally:
                    entry.worker = None
                    try:
                        if on_end is not None:
                            on_end(worker.pid)
                    finally:
                        self._checkin(worker)
        except asyncio.CancelledError:
            task = entry.task
            if entry.cancelled and task is not None and task.uncancel() == 0:
                raise StepCancelled(str(key)) from None
            raise
        finally:
            if key is not None:
                self._entries.pop(key, None)

    async def cancel(self, key: str) -> bool:
        """Cancels the job started with ``key``; False if there is no such job."""
        entry = self._entries.get(key)
        if entry is None or entry.cancelled:
            return False
        entry.cancelled = True
        if entry.worker is not None:
            entry.worker.kill()  # run() sees the pipe close and raises StepCancelled
        elif entry.task is not None:
            entry.task.cancel()  # still waiting for a worker
        return True

    async def shutdown(self) -> None:
        """Stops every worker and waits for them to exit. Safe to call more than once."""
        if self._state in (PoolState.STOPPING, PoolState.STOPPED):
            await self._stopped.wait()
            return
        self._state = PoolState.STOPPING
        self._notify()
        try:
            for task in self._spawners:
                task.cancel()
            if self._spawners:
                await asyncio.wait(list(self._spawners))
            workers = list(self._workers)
            for worker in workers:
                worker.close_stdin()
                worker.signal(signal.SIGTERM)
            waits = [asyncio.ensure_future(w.proc.wait()) for w in workers]
            if waits:
                _, pending = await asyncio.wait(waits, timeout=self._grace_s)
                if pending:
                    for worker in workers:
                        worker.kill()
                    await asyncio.wait(pending)
            if self._reapers:
                await asyncio.wait(list(self._reapers))
        finally:
            for worker in list(self._workers):  # even if shutdown itself was cancelled
                worker.kill()
            self._idle.clear()
            self._state = PoolState.STOPPED
            self._stopped.set()

    # ---- workers ------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._state is PoolState.NEW:
            raise RuntimeError("pool is not started")
        if self._state is not PoolState.RUNNING:
            raise PoolClosed("worker pool is shut down")

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    @staticmethod
    def _track(tasks: set[asyncio.Task[Any]], coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def _total(self) -> int:
        return len(self._idle) + self._busy + self._starting

    async def _spawn(self) -> _Worker:
        argv = [
            self._python,
            "-m",
            "noded.workers.worker_main",
            "--cache-dir",
            self._cache_dir,
            "--parent-pid",
            str(os.getpid()),
            "--confinement",
            self._confinement.value,
        ]
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=self._env
            )
        except OSError as exc:
            raise WorkerStartError(f"cannot start worker {self._python}: {exc}") from exc
        worker = _Worker(proc)
        self._workers.add(worker)
        try:
            self._check_open()  # shutdown may have begun while the process was starting
            async with asyncio.timeout(self._start_timeout_s):
                message = await worker.read()
            if message is None:
                await proc.wait()
                raise WorkerStartError(f"worker {worker.pid} {worker.describe_exit()} before it was ready")
            if message.get("type") == ERROR:
                raise WorkerStartError(f"worker {worker.pid}: {message.get('error')}")
            if message.get("type") != READY:
                raise WorkerStartError(f"worker {worker.pid} sent {message.get('type')!r} instead of ready")
            self.layers = frozenset(SandboxLayer(layer) for layer in message.get("layers", ()))
            self._check_open()
        except BaseException as exc:
            self._discard(worker)
            if isinstance(exc, TimeoutError):
                raise WorkerStartError(f"worker {worker.pid} was not ready within {self._start_timeout_s:g}s") from exc
            if isinstance(exc, ProtocolError):
                raise WorkerStartError(f"worker {worker.pid}: {exc}") from exc
            raise
        return worker

    def _discard(self, worker: _Worker) -> None:
        """Kills a worker and reaps it in the background; it stays in ``_workers`` until it exits."""
        if worker.reaping:
            return
        worker.reaping = True
        worker.kill()
        self._track(self._reapers, self._reap(worker))

    async def _reap(self, worker: _Worker) -> None:
        try:
            await worker.proc.wait()
        finally:
            self._workers.discard(worker)

    async def _spawn_idle(self) -> None:
        worker: _Worker | None = None
        try:
            worker = await self._spawn()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.spawn_failures += 1
            log.warning("could not start a warm worker: %s", exc)
        finally:
            self._starting -= 1
            self._bg_starting -= 1
            if worker is not None:
                if self._state is PoolState.RUNNING:
                    self._idle.append(worker)
                else:
                    self._discard(worker)
            self._notify()

    def _replenish(self) -> None:
        """Starts background spawns until ``warm`` workers are idle or starting."""
        while (
            self._state is PoolState.RUNNING
            and len(self._idle) + self._bg_starting < self._warm
            and self._total() < self._max
        ):
            self._starting += 1
            self._bg_starting += 1
            self._track(self._spawners, self._spawn_idle())

    async def _checkout(self) -> _Worker:
        """An idle worker, a new one, or the next one to become free (busy is counted)."""
        while True:
            self._check_open()
            while self._idle:
                worker = self._idle.popleft()
                if worker.alive:
                    self._busy += 1
                    self._replenish()
                    return worker
                self._discard(worker)
            if self._total() < self._max:
                self._starting += 1
                try:
                    worker = await self._spawn()
                finally:
                    self._starting -= 1
                    self._notify()  # a waiter may now spawn in this slot if ours failed
                self._busy += 1
                self._replenish()
                return worker
            # Every process is busy or starting; a starting one will arrive.
            await self._changed.wait()

    def _checkin(self, worker: _Worker) -> None:
        self._busy -= 1
        if worker.reusable and worker.alive and self._state is PoolState.RUNNING:
            self._idle.append(worker)
        else:
            self._discard(worker)
            self._replenish()
        self._notify()

    # ---- one job --------------------------------------------------------------------

    async def _run_on(
        self, worker: _Worker, job: StepJob, entry: _Entry, on_start: OnStart | None, host: HostHandler | None
    ) -> ExecResult:
        if self._before_job is not None:
            try:
                await self._before_job(worker.pid, job)
            except BaseException:
                worker.kill()
                raise
        if on_start is not None:
            maybe = on_start(worker.pid)
            if inspect.isawaitable(maybe):
                await maybe
        frame = encode_frame({"type": JOB, "job": job_to_dict(job)})
        guard_s = job.timeout_s + self._guard_s
        started = time.perf_counter()
        try:
            async with asyncio.timeout(guard_s):
                message = await worker.read() if await worker.send(frame) else None
                while message is not None and message.get("type") == HOST_CALL:
                    left = job.timeout_s - (time.perf_counter() - started)
                    reply = await _answer(host, message, left)
                    message = await worker.read() if await worker.send(encode_frame(reply)) else None
        except TimeoutError:
            worker.kill()
            await worker.proc.wait()
            return _pool_failure(
                FailureKind.TIMEOUT, f"worker did not answer within {float(guard_s)}s and was killed", started
            )
        except ProtocolError as exc:
            # Usually a worker killed halfway through writing its answer.
            if not await _exited_within(worker, 1.0):
                worker.kill()
                raise
            log.debug("worker %s: %s", worker.pid, exc)
            message = None
        except asyncio.CancelledError:
            worker.kill()
            raise

        if entry.cancelled:
            worker.kill()
            raise StepCancelled(str(entry.key))
        if self._state is not PoolState.RUNNING:
            raise PoolClosed("worker pool shut down while the job was running")
        if message is None:
            worker.reusable = False
            await worker.proc.wait()
            return _pool_failure(
                FailureKind.WORKER_LOST, f"worker process {worker.pid} {worker.describe_exit()}", started
            )
        kind = message.get("type")
        if kind == RESULT and isinstance(message.get("result"), dict):
            return result_from_dict(message["result"])
        if kind == ERROR:
            raise WorkerCrashed(f"worker {worker.pid}: {message.get('error')}")
        worker.kill()
        raise ProtocolError(f"worker {worker.pid} sent {kind!r} instead of a result")


async def _answer(host: HostHandler | None, call: dict[str, Any], seconds_left: float) -> dict[str, Any]:
    """The host_reply frame for a relayed host call."""
    op = str(call.get("op", ""))
    if host is None:
        return {"type": HOST_REPLY, "code": int(HostCallError.UNAVAILABLE), "log": f"{op} is not served here"}
    try:
        return {"type": HOST_REPLY, "response": await host(op, call.get("request"), max(seconds_left, 0.0))}
    except HostCallRefused as refused:
        return {"type": HOST_REPLY, "code": int(refused.code), "log": refused.log or refused.code.name}


async def _exited_within(worker: _Worker, seconds: float) -> bool:
    try:
        async with asyncio.timeout(seconds):
            await worker.proc.wait()
    except TimeoutError:
        return False
    return True


def _pool_failure(kind: FailureKind, error: str, started: float) -> ExecResult:
    return ExecResult(
        exit_code=None,
        trap=None,
        failure_kind=kind,
        error=error,
        output_json=None,
        stderr="",
        duration_s=time.perf_counter() - started,
        denied_host_calls=0,
    )
