"""Domain messages between the engine and a node session (converted to protobuf at the edge)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from agentflow.attempt import AttemptKey
from agentflow.llm import NO_LLM_USAGE, Grant, LLMUsage
from agentflow.spec import Capabilities, LLMConfig
from agentflow.usage import NO_USAGE, ResourceUsage
from agentflow.vocabulary import FailureKind, Isolation, SandboxLayer, StepOutcome
from controlplane.domain import Resources
from controlplane.store.records import JournalRecord

# down: control plane -> node


@dataclass(frozen=True, slots=True, kw_only=True)
class AssignStep:
    key: AttemptKey
    workflow_name: str
    module_digest: str
    stdin_json: str
    resources: Resources
    timeout: timedelta
    capabilities: Capabilities
    llm: LLMConfig | None = None
    journal: tuple[JournalRecord, ...] = ()  # the step's earlier attempts' LLM calls
    grant: Grant | None = None  # what its LLM calls may spend; None: no limit
    traceparent: str = ""  # the run's workflow.execute span, parent of the attempt's spans
    after: AttemptKey | None = None  # armed: the node starts it when this attempt succeeds there


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelAttempt:
    key: AttemptKey


@dataclass(frozen=True, slots=True, kw_only=True)
class AckResult:
    key: AttemptKey
    stale: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class DrainNotice:
    draining: bool
    deadline: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class AckJournal:
    entries: tuple[JournalRecord, ...]  # the keys count; entry_json may be empty


ToNode = AssignStep | CancelAttempt | AckResult | DrainNotice | AckJournal


# up: node -> control plane


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeHello:
    in_flight: tuple[AttemptKey, ...]
    unacked: tuple[AttemptKey, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class StepResultReport:
    key: AttemptKey
    outcome: StepOutcome
    output_json: str
    error: str
    exit_code: int
    stderr: str
    duration: timedelta
    failure_kind: FailureKind | None  # set exactly when the outcome is FAILED
    llm: LLMUsage = NO_LLM_USAGE  # the attempt's LLM calls, as the node's router counted them
    denied_host_calls: int
    usage: ResourceUsage = NO_USAGE  # what the attempt used, and the limits it ran into


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeRegistration:
    name: str
    node_id: str
    labels: dict[str, str]
    capacity: Resources
    isolation: Isolation
    version: str
    sandbox_layers: frozenset[SandboxLayer] = frozenset()
    join_token: str = ""  # a new node's, when the control plane asks for one
