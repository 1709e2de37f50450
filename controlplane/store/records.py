"""Rows of the state store as frozen domain records."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from agentflow.llm import NO_LLM_USAGE, Grant, LLMUsage
from agentflow.spec import WorkflowSpec
from agentflow.tracecontext import TraceRef
from agentflow.usage import NO_USAGE, ResourceUsage
from agentflow.vocabulary import AttemptStatus, EventType, Isolation, NodeStatus, RunStatus, SandboxLayer, StepStatus
from controlplane.domain import Resources


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowRecord:
    id: str
    name: str
    version: str
    digest: str
    spec: WorkflowSpec
    created_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class RunTrace:
    """A run's place in its trace: `span` is its current workflow.execute, begun at `started_at`,
    under `parent` (the span it was submitted in, if any)."""

    span: TraceRef
    parent: TraceRef | None
    started_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRecord:
    seq: int
    id: str
    workflow_id: str
    workflow_name: str
    workflow_version: str
    status: RunStatus
    input_json: str
    error: str
    created_at: datetime
    finished_at: datetime | None
    llm: LLMUsage = NO_LLM_USAGE  # all its steps' LLM calls
    reserved: Grant = field(default_factory=lambda: Grant(usd=0.0, tokens=0))  # granted to running steps
    thresholds_met: int = 0  # how many of the cost thresholds its spend has crossed
    open_steps: int = 0  # steps not yet terminal
    unsucceeded_steps: int = 0  # steps failed, cancelled or skipped
    trace: RunTrace | None = None  # None: a run stored before traces were kept


@dataclass(frozen=True, slots=True, kw_only=True)
class StepRecord:
    run_id: str
    name: str
    idx: int
    depends_on: tuple[str, ...]
    status: StepStatus
    attempt: int
    max_attempts: int
    failures: int
    losses: int
    request: Resources
    node_selector: dict[str, str]
    node_id: str | None
    output_json: str | None
    error: str
    exit_code: int
    stderr: str
    blocked: str
    not_before: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    grant: Grant | None = None  # reserved for the current attempt's LLM calls
    llm: LLMUsage = NO_LLM_USAGE  # its LLM calls, all attempts
    usage_json: str = ""  # what its last finished attempt used, as stored ("" none yet)

    @property
    def usage(self) -> ResourceUsage:
        """What its last finished attempt used (decoded when asked: only views show it)."""
        return ResourceUsage.from_json(self.usage_json) if self.usage_json else NO_USAGE


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadyRow:
    """What a scheduling pass reads of each ready step it considers (the placed ones are then
    read whole)."""

    run_id: str
    name: str
    idx: int
    attempt: int
    request: Resources
    node_selector: dict[str, str]
    not_before: datetime | None
    blocked: str
    run_seq: int


@dataclass(frozen=True, slots=True, kw_only=True)
class AttemptRecord:
    run_id: str
    step: str
    attempt: int
    node_id: str
    status: AttemptStatus
    error: str

    @property
    def open(self) -> bool:
        return self.status.open


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeRecord:
    id: str
    name: str
    status: NodeStatus
    isolation: Isolation
    labels: dict[str, str]
    capacity: Resources
    version: str
    registered_at: datetime
    sandbox_layers: frozenset[SandboxLayer] = frozenset()
    last_heartbeat: datetime | None
    draining: bool = False
    drain_deadline: datetime | None = None  # None: running steps may take as long as they take


@dataclass(frozen=True, slots=True, kw_only=True)
class ModuleRecord:
    digest: str
    size: int
    name: str
    created_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class EventRecord:
    seq: int
    type: EventType
    run_id: str = ""
    step: str = ""
    attempt: int = 0
    node: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    time: datetime


def event_id(store_id: str, seq: int) -> str:
    """An event's name outside its store: unique across control planes, stable across restarts."""
    return f"{store_id}-{seq}"


@dataclass(frozen=True, slots=True, kw_only=True)
class EventWhere:
    """Which events a query answers: of one run (or all), of some types or type families."""

    run_id: str = ""
    types: tuple[EventType, ...] = ()  # exact types
    prefixes: tuple[str, ...] = ()  # families: "agent" matches every "agent.*" type

    def matches(self, event: EventRecord) -> bool:
        if self.run_id and event.run_id != self.run_id:
            return False
        if not self.types and not self.prefixes:
            return True
        family = event.type.value.partition(".")[0]
        return event.type in self.types or family in self.prefixes


@dataclass(frozen=True, slots=True, kw_only=True)
class JournalRecord:
    """One LLM call of a step attempt as a node's router journaled it (`entry_json` is opaque)."""

    run_id: str
    step: str
    attempt: int
    call_index: int
    entry_json: str
