"""What noded and the control plane tell each other, as domain types (protobuf stops in
`noded.convert`): assignments, cancels, acks and drain notices down; hello, heartbeats, starts,
results, drain requests and goodbye up."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from agentflow.attempt import AttemptKey
from agentflow.llm import NO_LLM_USAGE, Grant, LLMUsage
from agentflow.spec import Capabilities, LLMConfig
from agentflow.usage import NO_USAGE, ResourceUsage
from agentflow.vocabulary import FailureKind, Isolation, SandboxLayer, StepOutcome

# joining


@dataclass(frozen=True, slots=True, kw_only=True)
class Capacity:
    """What the node offers to steps."""

    cpu_millis: int
    memory_bytes: int
    slots: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Registration:
    name: str
    node_id: str  # the id this node held before, or ""
    labels: dict[str, str]
    capacity: Capacity
    isolation: Isolation
    version: str
    sandbox_layers: frozenset[SandboxLayer] = frozenset()
    join_token: str = field(default="", repr=False)  # for a first registration where tokens are required


@dataclass(frozen=True, slots=True, kw_only=True)
class Registered:
    node_id: str
    heartbeat_interval: timedelta | None  # None: the control plane left it to the node


@dataclass(frozen=True, slots=True, kw_only=True, order=True)
class JournalEntry:
    """One LLM call of an attempt as the host's router journaled it (`entry_json` is the
    router's own entry: opaque here and on the control plane)."""

    key: AttemptKey
    call_index: int
    entry_json: str = field(default="", compare=False)


# down: control plane -> node


@dataclass(frozen=True, slots=True, kw_only=True)
class Assignment:
    key: AttemptKey
    workflow: str
    module_digest: str
    stdin_json: str
    cpu_millis: int
    memory_bytes: int
    timeout: timedelta
    capabilities: Capabilities = field(default_factory=Capabilities)
    llm: LLMConfig | None = None  # the step's defaults for llm.complete
    journal: tuple[JournalEntry, ...] = ()  # the step's earlier attempts' LLM calls, from any node
    grant: Grant | None = None  # what the attempt's LLM calls may spend; None: no limit
    traceparent: str = ""  # W3C trace context of the run's workflow.execute span
    after: AttemptKey | None = None  # armed: start when this attempt (same run) succeeds here


@dataclass(frozen=True, slots=True, kw_only=True)
class Cancel:
    key: AttemptKey


@dataclass(frozen=True, slots=True, kw_only=True)
class Ack:
    key: AttemptKey
    stale: bool  # the control plane dropped the result: its attempt was no longer current


@dataclass(frozen=True, slots=True, kw_only=True)
class DrainNotice:
    draining: bool
    deadline: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class JournalAck:
    entries: tuple[JournalEntry, ...]  # the control plane stored these (keys only)


FromControlPlane = Assignment | Cancel | Ack | DrainNotice | JournalAck


# up: node -> control plane


@dataclass(frozen=True, slots=True, kw_only=True)
class Hello:
    in_flight: tuple[AttemptKey, ...]  # attempts still executing
    unacked: tuple[AttemptKey, ...]  # finished attempts whose results follow


@dataclass(frozen=True, slots=True, kw_only=True)
class Heartbeat:
    running: int
    idle_workers: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Started:
    key: AttemptKey


@dataclass(frozen=True, slots=True, kw_only=True)
class StepResult:
    key: AttemptKey
    outcome: StepOutcome
    failure_kind: FailureKind | None = None  # set exactly when the outcome is FAILED
    output_json: str = ""
    error: str = ""
    exit_code: int = 0
    stderr: str = ""
    duration: timedelta = timedelta(0)
    denied_host_calls: int = 0
    llm: LLMUsage = NO_LLM_USAGE  # the attempt's LLM calls, as the host's router counted them
    usage: ResourceUsage = NO_USAGE  # what the attempt used, and the limits it ran into

    def __post_init__(self) -> None:
        if (self.outcome is StepOutcome.FAILED) != (self.failure_kind is not None):
            raise ValueError("a failure kind goes with, and only with, a failed outcome")


@dataclass(frozen=True, slots=True, kw_only=True)
class DrainRequest:
    """The node asks to be drained (or undrained) on its operator's behalf."""

    draining: bool
    deadline: timedelta | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Journal:
    """LLM calls journaled on this host, for the control plane to keep."""

    entries: tuple[JournalEntry, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Goodbye:
    """The node is shutting down: place nothing more on it."""


ToControlPlane = Hello | Heartbeat | Started | StepResult | DrainRequest | Goodbye | Journal
