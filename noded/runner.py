"""Runs assigned step attempts: fetch module → scratch dir → worker → outbox → report.

Each phase is safe after a failure of the one before: a module that cannot be fetched becomes
a failed result, a worker that dies becomes a `worker_lost` result, and the scratch directory
is removed whatever happened. A result goes into the outbox before it is sent and leaves it
only when the control plane acknowledges it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from google.protobuf.duration_pb2 import Duration

from agentflow import wire
from agentflow.clock import Clock, SystemClock
from agentflow.spec import format_memory
from agentflow.v1 import node_pb2, types_pb2
from agentflow.vocabulary import Capability, FailureKind
from noded.cgroups import (
    MIN_CPU_MILLIS,
    NO_STATS,
    CgroupDriver,
    CgroupError,
    CgroupStats,
    StepCgroup,
    StepLimits,
    slug,
)
from noded.drain import DrainState
from noded.errors import ModuleFetchError, StateError
from noded.metrics import NodeMetrics
from noded.modules import ModuleStore
from noded.sandbox import ExecResult, StepJob
from noded.state import NodeState, ResultKey
from noded.workers import PoolClosed, StepCancelled, WorkerError, WorkerPool

log = logging.getLogger(__name__)


# A step's cgroup holds its worker process while it runs. The guest's linear memory is bounded
# exactly by wasmtime (resources.memory); the cgroup adds this much for the worker's own
# allocations during the step (instance, buffers, compiling a module not yet cached).
CGROUP_MEMORY_HEADROOM = 128 * 1024 * 1024
CGROUP_PIDS_MAX = 64
# How often results the outbox refused (a full disk) are written again until they are acked.
OUTBOX_RETRY_INTERVAL = timedelta(seconds=2)


@dataclass(frozen=True, slots=True)
class RunningStep:
    key: ResultKey
    workflow: str
    since: datetime


class StepRunner:
    def __init__(
        self,
        *,
        pool: WorkerPool,
        modules: ModuleStore,
        state: NodeState,
        scratch_root: Path,
        send: Callable[[node_pb2.NodeMessage], bool],
        metrics: NodeMetrics,
        cgroups: CgroupDriver,
        drain: DrainState,
        clock: Clock | None = None,
    ) -> None:
        self._clock = clock or SystemClock()
        self._pool = pool
        self._modules = modules
        self._state = state
        self._scratch_root = scratch_root
        self._send = send
        self._metrics = metrics
        self._cgroups = cgroups
        self._drain = drain
        self._running: dict[ResultKey, asyncio.Task[None]] = {}
        self._running_since: dict[ResultKey, RunningStep] = {}
        # Set while nothing runs / no result awaits an ack (what a graceful stop waits for).
        self.no_steps = asyncio.Event()
        self.no_unacked = asyncio.Event()
        self.no_steps.set()
        self.no_unacked.set()
        self._cancel_requested: set[ResultKey] = set()
        self._unacked: dict[ResultKey, bytes] = {}  # mirror of the outbox, kept even if the disk fails
        self._unsaved: set[ResultKey] = set()  # unacked results the outbox refused
        self._retry_saving = asyncio.Event()

    async def load_outbox(self) -> None:
        """Take over results a previous run of the daemon finished but never got acked."""
        for key, blob in await self._state.pending_results():
            self._unacked[key] = blob
        self._note_changes()

    # LinkHandlers -------------------------------------------------------------------------

    def in_flight(self) -> list[ResultKey]:
        return sorted(self._running)

    def unacked(self) -> list[tuple[ResultKey, bytes]]:
        return sorted(self._unacked.items())

    def running_count(self) -> int:
        return len(self._running)

    def on_assign(self, assignment: types_pb2.Assignment) -> None:
        key = ResultKey(assignment.run_id, assignment.step, assignment.attempt)
        if key in self._running:
            return  # delivered twice; already running
        if key in self._unacked:
            self._send(node_pb2.NodeMessage(result=types_pb2.StepResult.FromString(self._unacked[key])))
            return
        task = asyncio.create_task(self._execute(key, assignment), name=f"step-{key.run_id}-{key.step}-{key.attempt}")
        self._running[key] = task
        self._note_changes()
        self._running_since[key] = RunningStep(key=key, workflow=assignment.workflow_name, since=datetime.now(UTC))
        self._metrics.running.set(len(self._running))

    def on_cancel(self, key: ResultKey) -> None:
        if key not in self._running:
            return
        self._cancel_requested.add(key)
        asyncio.get_running_loop().create_task(self._pool.cancel(_pool_key(key)))

    async def on_ack(self, key: ResultKey, stale: bool) -> None:
        if self._unacked.pop(key, None) is None:
            return
        self._note_changes()
        if stale:
            log.info("control plane dropped a stale result", extra={"run": key.run_id, "step": key.step})
        if key in self._unsaved:
            self._unsaved.discard(key)
            return
        try:
            await self._state.delete_result(key)
        except StateError as exc:
            log.error("cannot delete an acked result from the outbox", extra={"error": str(exc)})

    def on_drain(self, draining: bool, deadline: datetime | None) -> None:
        self._drain.update(draining, deadline)

    def _note_changes(self) -> None:
        for event, empty in ((self.no_steps, not self._running), (self.no_unacked, not self._unacked)):
            if empty:
                event.set()
            else:
                event.clear()

    # status (for the local admin API) ------------------------------------------------------

    def running_steps(self) -> list[RunningStep]:
        return sorted(self._running_since.values(), key=lambda s: (s.since, s.key))

    @property
    def unacked_count(self) -> int:
        return len(self._unacked)

    @property
    def unsaved_count(self) -> int:
        """Unacked results the outbox refused (a full disk); they are written again until saved."""
        return len(self._unsaved)

    # execution ----------------------------------------------------------------------------

    async def _execute(self, key: ResultKey, a: types_pb2.Assignment) -> None:
        scratch = self._scratch_root / key.run_id / key.step / str(key.attempt)
        started = time.monotonic()
        try:
            result = await self._attempt(key, a, scratch)
        except asyncio.CancelledError:
            raise  # the daemon is stopping; the control plane requeues the attempt
        except Exception as exc:  # a bug or host trouble must still end the attempt visibly
            log.exception("step attempt failed on the node", extra={"run": key.run_id, "step": key.step})
            result = _failed(
                types_pb2.StepResult(run_id=key.run_id, step=key.step, attempt=key.attempt),
                FailureKind.WORKER_LOST,
                f"node error: {type(exc).__name__}: {exc}",
            )
        finally:
            self._running.pop(key, None)
            self._running_since.pop(key, None)
            self._note_changes()
            self._metrics.running.set(len(self._running))
            shutil.rmtree(scratch, ignore_errors=True)
        result.duration.CopyFrom(_duration(time.monotonic() - started))
        await self._report(key, result)

    async def _attempt(self, key: ResultKey, a: types_pb2.Assignment, scratch: Path) -> types_pb2.StepResult:
        base = types_pb2.StepResult(run_id=key.run_id, step=key.step, attempt=key.attempt)
        try:
            module_path = await self._modules.ensure(a.module_digest)
        except (ModuleFetchError, OSError) as exc:
            return _failed(base, FailureKind.MODULE, f"module {a.module_digest}: {exc}")
        except Exception as exc:  # an RPC error while downloading
            return _failed(base, FailureKind.MODULE, f"module {a.module_digest}: download failed: {exc}")
        scratch.mkdir(parents=True, exist_ok=True)
        capabilities = set()
        if a.capabilities.llm:
            capabilities.add(Capability.LLM_COMPLETE)
        if a.capabilities.http_allowed_hosts:
            capabilities.add(Capability.HTTP_FETCH)
        job = StepJob(
            digest=a.module_digest,
            module_path=str(module_path),
            stdin=a.stdin_json.encode(),
            timeout_s=max(a.timeout.ToTimedelta().total_seconds(), 0.001),
            memory_limit_bytes=a.resources.memory_bytes,
            scratch_dir=str(scratch),
            allowed_paths=tuple(a.capabilities.allowed_paths),
            capabilities=frozenset(capabilities),
        )

        try:
            cgroup = self._cgroups.create(
                slug(_pool_key(key)),
                StepLimits(
                    memory_bytes=a.resources.memory_bytes + CGROUP_MEMORY_HEADROOM,
                    cpu_millis=max(a.resources.cpu_millis, MIN_CPU_MILLIS),
                    pids_max=CGROUP_PIDS_MAX,
                ),
            )
        except CgroupError as exc:
            log.error("cannot create the step's cgroup", extra={"step": key.step, "error": str(exc)})
            return _failed(base, FailureKind.WORKER_LOST, f"node error: cgroup: {exc}")
        stats: list[CgroupStats] = []

        def started(pid: int) -> None:
            cgroup.attach(pid)  # before the job is sent: the step never runs outside its cgroup
            ref = node_pb2.AttemptRef(run_id=key.run_id, step=key.step, attempt=key.attempt)
            self._send(node_pb2.NodeMessage(started=node_pb2.StepStarted(attempt=ref)))

        def ended(pid: int) -> None:
            stats.append(_release(cgroup, pid))

        try:
            if key in self._cancel_requested:
                raise StepCancelled(_pool_key(key))
            outcome = await self._pool.run(job, key=_pool_key(key), on_start=started, on_end=ended)
        except CgroupError as exc:
            log.error("cannot place the worker in the step's cgroup", extra={"step": key.step, "error": str(exc)})
            return _failed(base, FailureKind.WORKER_LOST, f"node error: cgroup: {exc}")
        except StepCancelled:
            base.outcome = types_pb2.STEP_OUTCOME_CANCELLED
            base.error = "cancelled by the control plane"
            return base
        except PoolClosed:
            raise asyncio.CancelledError() from None
        except WorkerError as exc:  # host-side trouble (e.g. the scratch dir vanished): not the agent's fault
            log.error("worker failed to run the step", extra={"step": key.step, "error": str(exc)})
            return _failed(base, FailureKind.WORKER_LOST, f"node error: {exc}")
        finally:
            self._cancel_requested.discard(key)
            if not stats:  # the job never reached a worker
                _release(cgroup, None)
        if outcome.failure_kind == FailureKind.WORKER_LOST and stats and stats[0].oom_kills:
            outcome = _oom_killed(outcome, a.resources.memory_bytes)
        self._metrics.observe(outcome, workflow=a.workflow_name)
        return _from_exec(base, outcome)

    async def _report(self, key: ResultKey, result: types_pb2.StepResult) -> None:
        blob = result.SerializeToString()
        self._unacked[key] = blob
        self._note_changes()
        try:
            await self._state.put_result(key, blob)
        except StateError as exc:
            # Keep it in memory, send it anyway and write it again later: only a crash before
            # the ack or the next successful write would lose it.
            self._metrics.outbox_errors.inc()
            log.error("cannot write the result to the outbox", extra={"error": str(exc), "step": key.step})
            self._unsaved.add(key)
            self._retry_saving.set()
        self._send(node_pb2.NodeMessage(result=result))

    async def save_refused_results(self) -> None:
        """Runs until cancelled: writes results the outbox refused again, every
        `OUTBOX_RETRY_INTERVAL`, until each is saved or acknowledged."""
        while True:
            await self._retry_saving.wait()
            await self._clock.sleep(OUTBOX_RETRY_INTERVAL)
            for key in sorted(self._unsaved):
                blob = self._unacked.get(key)
                try:
                    if blob is not None:
                        await self._state.put_result(key, blob)
                except StateError as exc:
                    log.warning("the outbox still refuses results", extra={"error": str(exc)})
                    break
                self._unsaved.discard(key)
                if blob is not None:
                    log.info("result written to the outbox", extra={"run": key.run_id, "step": key.step})
            if not self._unsaved:
                self._retry_saving.clear()

    async def shutdown(self) -> None:
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _release(cgroup: StepCgroup, pid: int | None) -> CgroupStats:
    try:
        return cgroup.release(pid)
    except CgroupError as exc:
        log.error("cannot remove a step cgroup; cleanup_stale retries at the next start", extra={"error": str(exc)})
        return NO_STATS


def _oom_killed(outcome: ExecResult, memory_bytes: int) -> ExecResult:
    """A worker the kernel killed for its cgroup's memory limit: the step hit its memory limit."""
    limit = format_memory(memory_bytes + CGROUP_MEMORY_HEADROOM)
    return dataclasses.replace(
        outcome,
        failure_kind=FailureKind.MEMORY,
        error=f"memory limit reached: the worker was killed by the kernel at its cgroup limit of {limit}",
    )


def _pool_key(key: ResultKey) -> str:
    return f"{key.run_id}/{key.step}/{key.attempt}"


def _duration(seconds: float) -> Duration:
    d = Duration()
    d.FromTimedelta(timedelta(seconds=seconds))
    return d


def _failed(base: types_pb2.StepResult, kind: FailureKind, error: str) -> types_pb2.StepResult:
    base.outcome = types_pb2.STEP_OUTCOME_FAILED
    base.failure_kind = wire.to_pb(kind, types_pb2.FailureKind)
    base.error = error
    return base


def _from_exec(base: types_pb2.StepResult, outcome: ExecResult) -> types_pb2.StepResult:
    base.exit_code = outcome.exit_code or 0
    base.stderr = outcome.stderr
    base.denied_host_calls = outcome.denied_host_calls
    if outcome.failure_kind is None and outcome.output_json is not None:
        base.outcome = types_pb2.STEP_OUTCOME_SUCCEEDED
        base.output_json = outcome.output_json
        return base
    return _failed(base, outcome.failure_kind or FailureKind.EXIT, outcome.error)
