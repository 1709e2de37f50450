"""Admin operations on workflows, runs and modules."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from agentflow import jsonvalue
from agentflow.spec import (
    Budget,
    InvalidWorkflow,
    Problem,
    load_workflow,
    resolve_modules,
    workflow_digest,
)
from agentflow.telemetry.tracing import current_ref
from agentflow.tracecontext import TraceRef, new_span_id
from agentflow.vocabulary import EventType, RunStatus, StepStatus
from controlplane.dag import StepState, retry_reset
from controlplane.domain import Resources
from controlplane.engine.core import Core
from controlplane.engine.fleet import Fleet
from controlplane.engine.transitions import cancel_run, settle_run
from controlplane.errors import FailedPrecondition, InvalidArgument, NotFound
from controlplane.store import ModuleBlobs, ModuleRecord, RunRecord, RunTrace, StepRecord

MAX_INPUT_BYTES = 1024 * 1024
MAX_WORKFLOW_BYTES = 1024 * 1024
DEFAULT_LIST_LIMIT = 50
MAX_LIST_LIMIT = 1000


@dataclass(frozen=True, slots=True, kw_only=True)
class RunView:
    run: RunRecord
    steps: list[StepRecord]
    node_names: dict[str, str]
    budget: Budget | None = None  # the workflow's LLM budget for the run


class RunService:
    def __init__(self, core: Core, fleet: Fleet, blobs: ModuleBlobs) -> None:
        self._core = core
        self._fleet = fleet
        self._blobs = blobs

    async def submit(
        self, *, workflow_yaml: str, source: str, input_json: str, module_digests: Mapping[str, str]
    ) -> tuple[str, str]:
        """Validate and store a workflow and a new run of it; answer (run id, workflow id)."""
        source = source or "workflow.yaml"
        if len(workflow_yaml.encode()) > MAX_WORKFLOW_BYTES:
            raise InvalidArgument(f"{source}: workflow is larger than {MAX_WORKFLOW_BYTES} bytes")
        try:
            spec = resolve_modules(load_workflow(workflow_yaml, source=source), module_digests, source=source)
        except InvalidWorkflow as exc:
            raise InvalidArgument(str(exc)) from None
        run_input = _parse_input(input_json)
        store = self._core.store
        missing = [
            Problem(path=f"agents[{i}].module", reason=f"module {a.module.digest} is not stored (push it first)")
            for i, a in enumerate(spec.agents)
            if a.module.digest and store.read.module(a.module.digest) is None
        ]
        if missing:
            raise InvalidArgument(str(InvalidWorkflow(source=source, problems=tuple(missing))))

        digest = workflow_digest(spec)
        now = self._core.clock.now()
        run_id = f"{spec.name}-{secrets.token_hex(5)}"
        async with self._core.tx() as tx:
            workflow = tx.workflow_by_digest(digest)
            if workflow is None:
                workflow = tx.insert_workflow(
                    workflow_id="wf-" + digest.removeprefix("sha256:")[:16],
                    spec=spec,
                    digest=digest,
                    source_yaml=workflow_yaml,
                    now=now,
                )
                tx.add_event(
                    EventType.WORKFLOW_CREATED,
                    now=now,
                    data={"workflow": spec.name, "version": spec.version, "id": workflow.id},
                )
            tx.insert_run(
                run_id=run_id, workflow_id=workflow.id, input_json=json.dumps(run_input), now=now, trace=_new_trace(now)
            )
            for idx, agent in enumerate(spec.agents):
                tx.insert_step(
                    run_id=run_id,
                    name=agent.name,
                    idx=idx,
                    depends_on=agent.depends_on,
                    max_attempts=agent.retry.max_attempts,
                    request=_request(agent.resources.cpu_millis, agent.resources.memory_bytes),
                    node_selector=dict(agent.node_selector),
                )
            tx.add_event(
                EventType.WORKFLOW_STARTED,
                now=now,
                run_id=run_id,
                data={"workflow": spec.name, "version": spec.version},
            )
            run = tx.run(run_id)
            assert run is not None
            settle_run(tx, run, now=now)
        return run_id, workflow.id

    async def view(self, run_id: str) -> RunView:
        read = self._core.store.read
        run = read.run(run_id)
        if run is None:
            raise NotFound(f'run "{run_id}" not found')
        steps = read.steps(run_id)
        budget = (read.spec(run.workflow_id)).budget
        return RunView(run=run, steps=steps, node_names=await self._node_names(), budget=budget)

    async def steps_view(self, run_id: str, steps: Iterable[str]) -> RunView:
        """The run's own fields and the named steps (each once, in the order given; empty names
        are skipped): what a watcher needs after events, read without touching the run's other
        steps."""
        read = self._core.store.read
        run = read.run(run_id)
        if run is None:
            raise NotFound(f'run "{run_id}" not found')
        records = [r for name in dict.fromkeys(steps) if name and (r := read.step(run_id, name)) is not None]
        names: dict[str, str] = {}
        for node_id in {r.node_id for r in records if r.node_id}:
            node = read.node(node_id)
            if node is not None:
                names[node.id] = node.name
        budget = (read.spec(run.workflow_id)).budget
        return RunView(run=run, steps=records, node_names=names, budget=budget)

    async def list_runs(self, *, limit: int, workflow_name: str) -> list[RunView]:
        if limit < 0:
            raise InvalidArgument("limit: must not be negative")
        limit = min(limit or DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT)
        read = self._core.store.read
        names = await self._node_names()
        runs = read.runs(limit=limit, workflow_name=workflow_name)
        return [
            RunView(run=r, steps=read.steps(r.id), node_names=names, budget=(read.spec(r.workflow_id)).budget)
            for r in runs
        ]

    async def cancel(self, run_id: str) -> RunView:
        now = self._core.clock.now()
        async with self._core.tx() as tx:
            run = tx.run(run_id)
            if run is None:
                raise NotFound(f'run "{run_id}" not found')
            if run.status.terminal:
                raise FailedPrecondition(f'run "{run_id}" already {run.status.value}')
            cancels = cancel_run(tx, run, now=now)
        for node_id, message in cancels:
            self._fleet.send(node_id, message)
        return await self.view(run_id)

    async def retry(self, run_id: str) -> RunView:
        """Run again every failed, skipped or cancelled step of a finished run."""
        now = self._core.clock.now()
        async with self._core.tx() as tx:
            run = tx.run(run_id)
            if run is None:
                raise NotFound(f'run "{run_id}" not found')
            if run.status not in (RunStatus.FAILED, RunStatus.CANCELLED):
                raise FailedPrecondition(f'run "{run_id}" is {run.status.value}; only failed or cancelled runs retry')
            steps = tx.steps(run_id)
            reset = retry_reset([StepState(name=s.name, status=s.status, depends_on=s.depends_on) for s in steps])
            for name in reset:
                tx.update_step(
                    run_id,
                    name,
                    status=StepStatus.PENDING,
                    failures=0,
                    losses=0,
                    error="",
                    blocked="",
                    not_before=None,
                    finished_at=None,
                    output_json=None,
                    exit_code=0,
                    stderr="",
                    started_at=None,
                )
            tx.set_run_status(run_id, RunStatus.RUNNING)
            tx.begin_run_span(run_id, span_id=new_span_id(), now=now)  # same trace, a new execution
            tx.add_event(
                EventType.WORKFLOW_STARTED,
                now=now,
                run_id=run_id,
                data={"workflow": run.workflow_name, "retry": True},
            )
            run = tx.run(run_id)
            assert run is not None
            settle_run(tx, run, now=now)
        return await self.view(run_id)

    async def push_module(self, *, name: str, expected_digest: str, chunks: AsyncIterable[bytes]) -> ModuleRecord:
        blob = await self._blobs.write(chunks, expected_digest=expected_digest)
        record = ModuleRecord(digest=blob.digest, size=blob.size, name=name[:255], created_at=self._core.clock.now())
        async with self._core.tx() as tx:
            existing = tx.module(blob.digest)
            if existing is not None:
                return existing
            tx.insert_module(record)
            tx.add_event(EventType.MODULE_PUSHED, now=record.created_at, data={"digest": blob.digest, "name": name})
        return record

    async def modules(self) -> list[ModuleRecord]:
        return self._core.store.read.modules()

    async def module_chunks(self, digest: str) -> AsyncIterator[bytes]:
        if self._core.store.read.module(digest) is None:
            raise NotFound(f"module {digest} is not stored")
        async for chunk in self._blobs.read(digest):
            yield chunk

    async def _node_names(self) -> dict[str, str]:
        return {n.id: n.name for n in self._core.store.read.nodes()}


def _parse_input(input_json: str) -> object:
    if not input_json.strip():
        return None
    if len(input_json.encode()) > MAX_INPUT_BYTES:
        raise InvalidArgument(f"input: larger than {MAX_INPUT_BYTES} bytes")
    try:
        return jsonvalue.loads(input_json)
    except (ValueError, RecursionError) as exc:
        raise InvalidArgument(f"input: not valid JSON: {exc}") from None


def _request(cpu_millis: int, memory_bytes: int) -> Resources:
    return Resources(cpu_millis=cpu_millis, memory_bytes=memory_bytes, slots=1)


def _new_trace(now: datetime) -> RunTrace:
    """The run's trace: the trace of the request that submitted it (its span the parent), or a new one."""
    parent = current_ref()
    return RunTrace(span=TraceRef.new(trace_id=parent.trace_id if parent else None), parent=parent, started_at=now)
