"""Runs assigned step attempts: fetch module → scratch dir → step cgroup → worker → outbox → report.

Each phase is safe after a failure of the one before: a module that cannot be fetched becomes
a failed result, a worker that dies becomes a `worker_lost` result, the cgroup and the scratch
directory are removed whatever happened. A result is sent as it goes into the outbox and leaves
the outbox only when the control plane acknowledges it; a result the outbox refuses (a full
disk) is sent all the same and written again until it is saved or acknowledged.

The runner deals in `noded.messages` only; the link turns them into protobuf.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span

from agentflow.attempt import AttemptKey
from agentflow.clock import Clock, SystemClock
from agentflow.jsonvalue import output_problem
from agentflow.lifecycle import Component
from agentflow.spec.quantity import format_memory
from agentflow.telemetry.logs import log_context
from agentflow.telemetry.tracing import Tracing, inject, parent_context, set_error, span_attributes
from agentflow.usage import ResourceUsage
from agentflow.vocabulary import Capability, FailureKind, ResourceLimit, StepOutcome
from noded.cgroups import (
    NO_STATS,
    CgroupDriver,
    CgroupError,
    CgroupStats,
    StepCgroup,
    oom_kill_error,
    slug,
    step_limits,
)
from noded.drain import DrainState
from noded.errors import ModuleFetchError, StateError
from noded.host import StepHost
from noded.llm import LLMCalls, RouterClient
from noded.messages import (
    Ack,
    Assignment,
    DrainNotice,
    Journal,
    JournalAck,
    JournalEntry,
    Started,
    StepResult,
    ToControlPlane,
)
from noded.metrics import NodeMetrics
from noded.modules import ModuleStore
from noded.precompile import Precompiler
from noded.sandbox import ExecResult, StepJob
from noded.state import NodeState
from noded.workers import PoolClosed, StepCancelled, WorkerError, WorkerPool

if TYPE_CHECKING:
    from noded.egress import Egress

log = logging.getLogger(__name__)

OUTBOX_RETRY_INTERVAL = timedelta(seconds=2)
"""How often results the outbox refused (a full disk) are written again until they are acked."""
MIN_TIMEOUT = timedelta(milliseconds=1)
STARTED_NOTICE_DELAY = timedelta(milliseconds=50)
"""A step's `Started` goes up once it has run this long: the result of a shorter one says it
started (the control plane records both from it), so a quick step costs one message up, not two."""

Send = Callable[[ToControlPlane], bool]
"""Queues a message for the control plane; False when there is no stream to queue it on."""


@dataclass(frozen=True, slots=True)
class RunningStep:
    key: AttemptKey
    workflow: str
    since: datetime


class StepRunner(Component):
    """`run()` owns every step task; `shutdown()` stops the steps still running (the control
    plane places them again)."""

    def __init__(
        self,
        *,
        pool: WorkerPool,
        modules: ModuleStore,
        state: NodeState,
        scratch_root: Path,
        send: Send,
        metrics: NodeMetrics,
        cgroups: CgroupDriver,
        drain: DrainState,
        clock: Clock | None = None,
        router: RouterClient | None = None,
        tracing: Tracing | None = None,
        node_name: str = "",
        precompiler: Precompiler | None = None,
    ) -> None:
        super().__init__()
        self._precompiler = precompiler
        self._router = router
        self._tracing = tracing or Tracing.disabled()
        self._node_name = node_name
        self._pool = pool
        self._modules = modules
        self._state = state
        self._scratch_root = scratch_root
        self._send = send
        self._metrics = metrics
        self._cgroups = cgroups
        self._drain = drain
        self._clock = clock or SystemClock()
        self._group: asyncio.TaskGroup | None = None
        self._running: dict[AttemptKey, RunningStep] = {}
        self._armed: dict[AttemptKey, list[Assignment]] = {}  # behind a running attempt (pipelining)
        self._tasks: dict[AttemptKey, asyncio.Task[None]] = {}
        self._cancel_requested: set[AttemptKey] = set()
        self._started_notices: dict[AttemptKey, asyncio.Task[None]] = {}
        self._unacked: dict[AttemptKey, StepResult] = {}  # mirror of the outbox, kept even if the disk fails
        self._unsaved: set[AttemptKey] = set()  # unacked results the outbox refused
        self._journal: dict[JournalEntry, JournalEntry] = {}  # LLM journal entries not yet acked
        self._retry_saving = asyncio.Event()
        # Set while nothing runs / no result awaits an ack (what a graceful stop waits for).
        self.no_steps = asyncio.Event()
        self.no_unacked = asyncio.Event()
        self.no_steps.set()
        self.no_unacked.set()

    async def load_outbox(self) -> None:
        """Take over results a previous run of the daemon finished but never got acked."""
        for result in await self._state.pending_results():
            self._unacked[result.key] = result
        for entry in await self._state.pending_journal():
            self._journal[entry] = entry
        self._note_changes()

    async def _serve(self) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                saver = group.create_task(self._save_refused_results(), name="outbox-retry")
                await self.stopping.wait()
                saver.cancel()
                for task in self._tasks.values():
                    task.cancel()  # the daemon is stopping; the control plane places them again
        finally:
            self._group = None

    # what the link asks ---------------------------------------------------------------------

    def in_flight(self) -> list[AttemptKey]:
        """What the node holds: attempts running and attempts armed behind them."""
        return sorted([*self._running, *(a.key for held in self._armed.values() for a in held)])

    def unacked(self) -> list[StepResult]:
        return [self._unacked[k] for k in sorted(self._unacked)]

    def running_count(self) -> int:
        return len(self._running)

    def unacked_journal(self) -> list[JournalEntry]:
        return sorted(self._journal.values())

    async def on_journal_ack(self, ack: JournalAck) -> None:
        acked = [self._journal.pop(e) for e in ack.entries if e in self._journal]
        if not acked:
            return
        try:
            await self._state.delete_journal(acked)
        except StateError as exc:  # resent after a restart, and stored once more as a no-op
            log.error("cannot delete acked journal entries from the outbox", extra={"error": str(exc)})

    async def ship_journal(self, entries: list[JournalEntry]) -> None:
        """LLM calls the router journaled for a running attempt: into the outbox, then up."""
        new = [e for e in entries if e not in self._journal]
        if not new:
            return
        for e in new:
            self._journal[e] = e
        try:
            await self._state.put_journal(new)
        except StateError as exc:  # kept in memory and sent anyway, as results are
            self._metrics.outbox_errors.inc()
            log.error("cannot write LLM journal entries to the outbox", extra={"error": str(exc)})
        self._send(Journal(entries=tuple(new)))

    def idle_workers(self) -> int:
        return self._pool.idle_count

    def on_assign(self, assignment: Assignment) -> None:
        key = assignment.key
        if key in self._running or self._armed_entry(key) is not None:
            return  # delivered twice; already running or armed
        if key in self._unacked:
            self._send(self._unacked[key])  # finished already: the result again, not the step
            return
        if assignment.after is not None:
            self._arm(assignment)
            return
        self._start(assignment)

    def _arm(self, a: Assignment) -> None:
        """Hold `a` until the attempt it is armed behind succeeds here (pipelined chains)."""
        assert a.after is not None
        if a.after in self._running or self._armed_entry(a.after) is not None:  # running, or armed itself
            self._armed.setdefault(a.after, []).append(a)
            return
        done = self._unacked.get(a.after)
        if done is not None:  # it finished before the assignment came
            if (ready := _behind(a, done)) is not None:
                self._start(ready)
            return  # it did not succeed: the control plane takes `a` back when it applies that
        # Not held here (lost with a restart, say): the control plane places it again.
        error = f"armed behind {a.after.step} attempt {a.after.attempt}, which this node does not hold"
        self._send(StepResult(key=a.key, outcome=StepOutcome.CANCELLED, error=error))

    def _armed_entry(self, key: AttemptKey) -> tuple[AttemptKey, Assignment] | None:
        for after, held in self._armed.items():
            for a in held:
                if a.key == key:
                    return after, a
        return None

    def _start(self, assignment: Assignment) -> None:
        key = assignment.key
        if self._group is None:
            raise RuntimeError("the step runner is not running")
        self._running[key] = RunningStep(key=key, workflow=assignment.workflow, since=self._clock.now())
        self._note_changes()
        self._tasks[key] = self._group.create_task(self._execute(assignment), name=f"step {key}")

    def on_cancel(self, key: AttemptKey) -> None:
        if (armed := self._armed_entry(key)) is not None:
            self._armed[armed[0]].remove(armed[1])
            self._drop_armed_behind(key)
            return
        if key not in self._running or key in self._cancel_requested or self._group is None:
            return
        self._cancel_requested.add(key)
        self._group.create_task(self._pool.cancel(str(key)), name=f"cancel {key}")

    async def on_ack(self, ack: Ack) -> None:
        if self._unacked.pop(ack.key, None) is None:
            return
        self._note_changes()
        if ack.stale:
            log.info("control plane dropped a stale result", extra={"run": ack.key.run_id, "step": ack.key.step})
        if ack.key in self._unsaved:
            self._unsaved.discard(ack.key)
            return
        try:
            await self._state.delete_result(ack.key)
        except StateError as exc:  # it is resent after a restart, and acked as a repeat
            log.error("cannot delete an acked result from the outbox", extra={"error": str(exc)})

    def on_drain(self, notice: DrainNotice) -> None:
        self._drain.update(notice.draining, notice.deadline)

    def _note_changes(self) -> None:
        for event, empty in ((self.no_steps, not self._running), (self.no_unacked, not self._unacked)):
            if empty:
                event.set()
            else:
                event.clear()
        self._metrics.running.set(len(self._running))

    # status (for the local admin API) --------------------------------------------------------

    def running_steps(self) -> list[RunningStep]:
        return sorted(self._running.values(), key=lambda s: (s.since, s.key))

    @property
    def unacked_count(self) -> int:
        return len(self._unacked)

    @property
    def unsaved_count(self) -> int:
        """Unacked results the outbox refused (a full disk); they are written again until saved."""
        return len(self._unsaved)

    # execution -------------------------------------------------------------------------------

    async def _execute(self, a: Assignment) -> None:
        key = a.key
        scratch = self._scratch_root / key.run_id / key.step / str(key.attempt)
        started = time.monotonic()
        try:
            with (
                log_context(run=key.run_id, step=key.step, attempt=key.attempt, node=self._node_name),
                self._tracing.span(
                    AGENT_SPAN, parent=parent_context(a.traceparent), attributes=self._span_attributes(a)
                ) as span,
            ):
                result = await self._attempt(a, scratch, span)
                _describe(span, result)
        except asyncio.CancelledError:
            raise  # the daemon is stopping; the control plane requeues the attempt
        except Exception as exc:  # a bug or host trouble must still end the attempt visibly
            log.exception("step attempt failed on the node", extra={"run": key.run_id, "step": key.step})
            result = _failed(key, FailureKind.WORKER_LOST, f"node error: {type(exc).__name__}: {exc}")
        finally:
            self._running.pop(key, None)
            self._tasks.pop(key, None)
            if (notice := self._started_notices.pop(key, None)) is not None:
                notice.cancel()  # the result says it started
            self._cancel_requested.discard(key)
            self._note_changes()
            shutil.rmtree(scratch, ignore_errors=True)
        wall = time.monotonic() - started
        usage = dataclasses.replace(result.usage, wall_seconds=wall)
        result = dataclasses.replace(result, duration=timedelta(seconds=wall), usage=usage)
        for armed in self._armed.pop(key, ()):  # start what waited for this one, before reporting it
            if (ready := _behind(armed, result)) is not None:
                self._start(ready)
            else:
                self._drop_armed_behind(armed.key)
        await self._report(result)

    def _drop_armed_behind(self, key: AttemptKey) -> None:
        """`key` will not run here: neither will what was armed behind it."""
        for armed in self._armed.pop(key, ()):
            self._drop_armed_behind(armed.key)

    def _span_attributes(self, a: Assignment) -> dict[str, str | int | float | bool]:
        return span_attributes({
            "workflow.name": a.workflow,
            "workflow.run_id": a.key.run_id,
            "agent.name": a.key.step,
            "agent.attempt": a.key.attempt,
            "agent.module": a.module_digest,
            "resource.cpu": f"{a.cpu_millis}m",
            "resource.memory": format_memory(a.memory_bytes),
            "node.name": self._node_name,
        })  # fmt: skip

    async def _attempt(self, a: Assignment, scratch: Path, span: Span) -> StepResult:
        key = a.key
        try:
            module_path = await self._modules.ensure(a.module_digest)
            if self._precompiler is not None:
                await self._precompiler.ensure(Path(module_path), a.module_digest)
        except (ModuleFetchError, OSError) as exc:
            return _failed(key, FailureKind.MODULE, f"module {a.module_digest}: {exc}")
        except Exception as exc:  # an RPC error while downloading
            return _failed(key, FailureKind.MODULE, f"module {a.module_digest}: download failed: {exc}")
        scratch.mkdir(parents=True, exist_ok=True)
        job = StepJob(
            digest=a.module_digest,
            module_path=str(module_path),
            stdin=a.stdin_json.encode(),
            timeout_s=max(a.timeout, MIN_TIMEOUT).total_seconds(),
            memory_limit_bytes=a.memory_bytes,
            scratch_dir=str(scratch),
            allowed_paths=a.capabilities.allowed_paths,
            writable_paths=a.capabilities.writable_paths,
            capabilities=_capabilities(a),
        )
        try:
            cgroup = self._cgroups.create(
                slug(str(key)), step_limits(cpu_millis=a.cpu_millis, memory_bytes=a.memory_bytes)
            )
        except CgroupError as exc:
            log.error("cannot create the step's cgroup", extra={"step": key.step, "error": str(exc)})
            return _failed(key, FailureKind.WORKER_LOST, f"node error: cgroup: {exc}")
        stats: list[CgroupStats] = []
        egress = (
            _egress(a, tracing=self._tracing, parent=trace.set_span_in_context(span))
            if a.capabilities.http_allowed_hosts
            else None
        )

        def started(pid: int) -> None:
            cgroup.attach(pid)  # before the job is sent: the step never runs outside its cgroup
            if self._group is not None:
                self._started_notices[key] = self._group.create_task(self._started_notice(key), name=f"started {key}")

        def ended(pid: int) -> None:
            stats.append(_release(cgroup, pid))

        try:
            if key in self._cancel_requested:
                raise StepCancelled(str(key))
            llm_calls: LLMCalls | None = None
            if self._router is not None and a.capabilities.llm:
                llm_calls = LLMCalls(self._router, a, journal=self.ship_journal, trace_headers=inject(span))
                if a.journal:
                    await self._router.seed(a.journal)
            host = StepHost(llm=llm_calls, egress=egress)
            outcome = await self._pool.run(job, key=str(key), on_start=started, on_end=ended, host=host)
        except CgroupError as exc:
            log.error("cannot place the worker in the step's cgroup", extra={"step": key.step, "error": str(exc)})
            return _failed(key, FailureKind.WORKER_LOST, f"node error: cgroup: {exc}")
        except StepCancelled:
            return StepResult(key=key, outcome=StepOutcome.CANCELLED, error="cancelled by the control plane")
        except PoolClosed:
            raise asyncio.CancelledError() from None
        except WorkerError as exc:  # host-side trouble (e.g. the scratch dir vanished): not the agent's fault
            log.error("worker failed to run the step", extra={"step": key.step, "error": str(exc)})
            return _failed(key, FailureKind.WORKER_LOST, f"node error: {exc}")
        finally:
            if not stats:  # the job never reached a worker
                _release(cgroup, None)
        if outcome.failure_kind is FailureKind.WORKER_LOST and stats and stats[0].oom_kills:
            outcome = dataclasses.replace(
                outcome, failure_kind=FailureKind.MEMORY, error=oom_kill_error(a.memory_bytes)
            )
        self._metrics.observe(outcome, workflow=a.workflow)
        usage = _usage(outcome, stats[0] if stats else NO_STATS, egress)
        result = dataclasses.replace(_from_exec(key, outcome), usage=usage)
        if llm_calls is not None and llm_calls.calls and self._router is not None:
            llm = await self._router.usage(key)
            if llm is not None:
                result = dataclasses.replace(result, llm=llm)
        return result

    async def _started_notice(self, key: AttemptKey) -> None:
        """Say the attempt runs, once it has run `STARTED_NOTICE_DELAY` (cancelled when it ends)."""
        await self._clock.sleep(STARTED_NOTICE_DELAY)
        self._started_notices.pop(key, None)
        self._send(Started(key=key))

    async def _report(self, result: StepResult) -> None:
        """Send the result while the outbox writes it: the write's fsync overlaps the round trip.
        A crash before the write is durable loses nothing the control plane has: either it got
        the result (and commits it before acking), or the attempt is unknown to the node when it
        comes back and is placed again, as one that was running."""
        key = result.key
        self._unacked[key] = result
        self._note_changes()
        self._send(result)
        try:
            await self._state.put_result(result)
        except StateError as exc:
            # Keep it in memory and write it again later: only a crash before the ack or the
            # next successful write would lose it.
            self._metrics.outbox_errors.inc()
            log.error("cannot write the result to the outbox", extra={"error": str(exc), "step": key.step})
            if key in self._unacked:
                self._unsaved.add(key)
                self._retry_saving.set()

    async def _save_refused_results(self) -> None:
        """Write results the outbox refused again, every `OUTBOX_RETRY_INTERVAL`, until each is
        saved or acknowledged."""
        while True:
            await self._retry_saving.wait()
            await self._clock.sleep(OUTBOX_RETRY_INTERVAL)
            for key in sorted(self._unsaved):
                result = self._unacked.get(key)
                try:
                    if result is not None:
                        await self._state.put_result(result)
                except StateError as exc:
                    log.warning("the outbox still refuses results", extra={"error": str(exc)})
                    break
                self._unsaved.discard(key)
                if result is not None:
                    log.info("result written to the outbox", extra={"run": key.run_id, "step": key.step})
            if not self._unsaved:
                self._retry_saving.clear()


def _behind(armed: Assignment, done: StepResult) -> Assignment | None:
    """`armed`, ready to start with the output of the attempt it waited for added to its input;
    None when that attempt did not succeed (the control plane takes `armed` back)."""
    if done.outcome is not StepOutcome.SUCCEEDED or output_problem(done.output_json) is not None:
        return None
    assert armed.after is not None
    document = json.loads(armed.stdin_json)
    document["upstream"][armed.after.step] = json.loads(done.output_json)
    return dataclasses.replace(armed, stdin_json=json.dumps(document, separators=(",", ":")), after=None)


def _capabilities(a: Assignment) -> frozenset[Capability]:
    granted = set()
    if a.capabilities.llm:
        granted.add(Capability.LLM_COMPLETE)
    if a.capabilities.http_allowed_hosts:
        granted.add(Capability.HTTP_FETCH)
    return frozenset(granted)


def _egress(a: Assignment, *, tracing: Tracing, parent: Context) -> Egress:
    """The step's `http.fetch`, its client (aiohttp) loaded on first use: an idle node does not hold it."""
    from noded.egress import Egress

    return Egress(a.capabilities.http_allowed_hosts, tracing=tracing, parent=parent)


def _usage(outcome: ExecResult, stats: CgroupStats, egress: Egress | None) -> ResourceUsage:
    """What the attempt used: CPU and peak memory from its cgroup where it had one (the worker's
    figures otherwise, and memory never below the guest's own), fetches and host calls as counted."""
    limits = [ResourceLimit.FETCH_SIZE] if egress is not None and egress.truncated else []
    if outcome.failure_kind is not None and outcome.failure_kind.limit is not None:
        limits.append(outcome.failure_kind.limit)
    return ResourceUsage(
        cpu_seconds=outcome.cpu_s if stats.cpu_usage_ns is None else stats.cpu_usage_ns / 1e9,
        peak_memory_bytes=max(stats.memory_peak_bytes or 0, outcome.memory_bytes),
        fetched_bytes=0 if egress is None else egress.fetched_bytes,
        host_calls=outcome.host_calls,
        limits_hit=tuple(limits),
    )


def _release(cgroup: StepCgroup, pid: int | None) -> CgroupStats:
    try:
        return cgroup.release(pid)
    except CgroupError as exc:
        log.error("cannot remove a step cgroup; cleanup_stale retries at the next start", extra={"error": str(exc)})
        return NO_STATS


AGENT_SPAN = "agent.execute"


def _describe(span: Span, result: StepResult) -> None:
    """What the attempt came to, on its span."""
    u = result.usage
    span.set_attributes(span_attributes({
        "agent.outcome": result.outcome.value,
        "agent.failure_kind": result.failure_kind.value if result.failure_kind is not None else "",
        "agent.exit_code": result.exit_code,
        "resource.cpu_seconds": u.cpu_seconds,
        "resource.peak_memory_bytes": u.peak_memory_bytes,
        "resource.host_calls": u.host_calls,
        "llm.calls": result.llm.calls,
        "llm.cost_usd": result.llm.cost_usd,
    }))  # fmt: skip
    if result.outcome is not StepOutcome.SUCCEEDED:
        set_error(span, result.error or result.outcome.value)


def _failed(key: AttemptKey, kind: FailureKind, error: str) -> StepResult:
    return StepResult(key=key, outcome=StepOutcome.FAILED, failure_kind=kind, error=error)


def _from_exec(key: AttemptKey, outcome: ExecResult) -> StepResult:
    succeeded = outcome.failure_kind is None and outcome.output_json is not None
    return StepResult(
        key=key,
        outcome=StepOutcome.SUCCEEDED if succeeded else StepOutcome.FAILED,
        failure_kind=None if succeeded else (outcome.failure_kind or FailureKind.EXIT),
        output_json=outcome.output_json or "" if succeeded else "",
        error="" if succeeded else outcome.error,
        exit_code=outcome.exit_code or 0,
        stderr=outcome.stderr,
        denied_host_calls=outcome.denied_host_calls,
    )
