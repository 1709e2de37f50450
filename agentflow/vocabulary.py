"""The words both ends of the wire use, typed once: statuses, outcomes, failure kinds, event types
and capabilities.

Every enum that has a protobuf counterpart (`agentflow/v1/types.proto`) has the same member
names, so `agentflow.wire.to_pb` / `from_pb` convert by name and a test checks that the two
never drift apart. The values are what is stored, logged and shown (`"succeeded"`, `"agent.failed"`).
"""

from __future__ import annotations

import enum


class RunStatus(enum.StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self is not RunStatus.RUNNING


class StepStatus(enum.StrEnum):
    PENDING = "pending"  # waiting for dependencies
    READY = "ready"  # queued for placement, maybe backing off
    ASSIGNED = "assigned"  # placement committed and sent to a node
    RUNNING = "running"  # the node reported the attempt started
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"  # a dependency did not succeed

    @property
    def terminal(self) -> bool:
        return self in _TERMINAL_STEP

    @property
    def on_node(self) -> bool:
        """True while an attempt is placed on a node and holds its resources."""
        return self in (StepStatus.ASSIGNED, StepStatus.RUNNING)


_TERMINAL_STEP = frozenset({StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.CANCELLED, StepStatus.SKIPPED})


class AttemptStatus(enum.StrEnum):
    """One placement of a step on a node (stored only; attempts are not on the wire)."""

    ASSIGNED = "assigned"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"  # cancelled by a user, or moved off a draining node
    LOST = "lost"  # its node went down, restarted or never got it

    @property
    def open(self) -> bool:
        return self in (AttemptStatus.ASSIGNED, AttemptStatus.RUNNING)

    @property
    def counts_against_node(self) -> bool:
        """Attempts that make the scheduler avoid the node for the step's next placement."""
        return self in (AttemptStatus.FAILED, AttemptStatus.LOST)


class NodeStatus(enum.StrEnum):
    READY = "ready"
    DISCONNECTED = "disconnected"
    DOWN = "down"
    DRAINING = "draining"
    STOPPING = "stopping"  # said goodbye: shutting down, finishing its steps


class Isolation(enum.StrEnum):
    """How a node confines the worker processes that run steps."""

    NONE = "none"
    CGROUP1 = "cgroup1"
    CGROUP2 = "cgroup2"


class SandboxLayer(enum.StrEnum):
    """The walls around a worker process besides its cgroup (see `noded.sandbox.confine`)."""

    NETNS = "netns"  # a network namespace of its own: no interfaces but loopback
    SECCOMP = "seccomp"  # a system-call filter
    LANDLOCK = "landlock"  # each step's thread reaches only the step's own paths


class StepOutcome(enum.StrEnum):
    """How a node says an attempt ended."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"  # see FailureKind
    CANCELLED = "cancelled"  # stopped on request, or the node shut down


class FailureKind(enum.StrEnum):
    """Why an attempt failed."""

    EXIT = "exit"  # exited with a non-zero code
    TRAP = "trap"  # wasm trap (unreachable, out-of-bounds access, stack overflow, ...)
    TIMEOUT = "timeout"  # wall-clock deadline passed
    MEMORY = "memory"  # memory limit reached (wasmtime's, or the kernel's at the cgroup limit)
    OUTPUT_LIMIT = "output_limit"  # stdout over its cap
    INVALID_OUTPUT = "invalid_output"  # stdout is not exactly one JSON value
    MODULE = "module"  # module cannot be fetched, compiled, linked or instantiated, or has no _start
    WORKER_LOST = "worker_lost"  # the worker process died mid-job, or the node failed around it
    HOST_CALL_LIMIT = "host_call_limit"  # the guest made more host calls than a step may

    @property
    def limit(self) -> ResourceLimit | None:
        """The limit of the step that stopped it (reported as a `resource.limit_hit` event)."""
        return _LIMIT_OF.get(self)

    @property
    def is_limit(self) -> bool:
        return self in _LIMIT_OF


class ResourceLimit(enum.StrEnum):
    """The limits a step can run into, as step errors and `resource.limit_hit` events name them."""

    MEMORY = "memory"
    WALL_TIME = "wall time"
    OUTPUT = "output"
    FETCH_SIZE = "fetch size"  # an http.fetch response cut at its cap (the step goes on)
    HOST_CALLS = "host calls"


_LIMIT_OF = {
    FailureKind.MEMORY: ResourceLimit.MEMORY,
    FailureKind.TIMEOUT: ResourceLimit.WALL_TIME,
    FailureKind.OUTPUT_LIMIT: ResourceLimit.OUTPUT,
    FailureKind.HOST_CALL_LIMIT: ResourceLimit.HOST_CALLS,
}


class EventType(enum.StrEnum):
    """Every event the control plane commits (names after the reference design)."""

    WORKFLOW_CREATED = "workflow.created"
    WORKFLOW_STARTED = "workflow.started"
    WORKFLOW_COMPLETED = "workflow.completed"
    WORKFLOW_FAILED = "workflow.failed"
    WORKFLOW_CANCELLED = "workflow.cancelled"
    AGENT_SCHEDULED = "agent.scheduled"
    AGENT_STARTED = "agent.started"
    AGENT_COMPLETED = "agent.completed"
    AGENT_FAILED = "agent.failed"
    AGENT_REQUEUED = "agent.requeued"
    AGENT_SKIPPED = "agent.skipped"
    RESOURCE_LIMIT_HIT = "resource.limit_hit"
    COST_THRESHOLD_MET = "cost.threshold_met"
    NODE_REGISTERED = "node.registered"
    NODE_READY = "node.ready"
    NODE_DISCONNECTED = "node.disconnected"
    NODE_DOWN = "node.down"
    NODE_DRAINING = "node.draining"
    NODE_DRAINED = "node.drained"
    NODE_UNDRAINED = "node.undrained"
    NODE_STOPPING = "node.stopping"
    MODULE_PUSHED = "module.pushed"

    @property
    def about_a_node(self) -> bool:
        return self.value.startswith("node.")


class Role(enum.StrEnum):
    """What a bearer token may do (`controlplane.api.roles` says which RPC needs which)."""

    NODE = "node"  # a join token: lets a new node register, nothing else
    VIEWER = "viewer"  # reads runs, nodes and modules
    OPERATOR = "operator"  # also submits, cancels and retries runs, pushes modules, drains nodes
    ADMIN = "admin"  # also manages tokens

    def covers(self, required: Role) -> bool:
        if self is Role.NODE or required is Role.NODE:
            return self is required
        return _RANK[self] >= _RANK[required]


_RANK = {Role.VIEWER: 1, Role.OPERATOR: 2, Role.ADMIN: 3}


class Capability(enum.StrEnum):
    """Host operations a step must be granted (`log` needs none)."""

    LLM_COMPLETE = "llm.complete"
    HTTP_FETCH = "http.fetch"
