"""Domain types of the control plane: statuses and resource amounts. No protobuf here."""

from __future__ import annotations

import enum
from dataclasses import dataclass


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


class NodeStatus(enum.StrEnum):
    READY = "ready"
    DISCONNECTED = "disconnected"
    DOWN = "down"
    DRAINING = "draining"
    STOPPING = "stopping"  # said goodbye: shutting down, finishing its steps


def node_status(live: NodeStatus, *, draining: bool) -> NodeStatus:
    """What users and the scheduler see: a connected node that is draining shows as draining."""
    return NodeStatus.DRAINING if draining and live is NodeStatus.READY else live


class Isolation(enum.StrEnum):
    NONE = "none"
    CGROUP1 = "cgroup1"
    CGROUP2 = "cgroup2"


@dataclass(frozen=True, slots=True, kw_only=True)
class Resources:
    """An amount of node resources: a step's request, a node's capacity or allocation."""

    cpu_millis: int = 0
    memory_bytes: int = 0
    slots: int = 0

    def __add__(self, other: Resources) -> Resources:
        return Resources(
            cpu_millis=self.cpu_millis + other.cpu_millis,
            memory_bytes=self.memory_bytes + other.memory_bytes,
            slots=self.slots + other.slots,
        )

    def __sub__(self, other: Resources) -> Resources:
        return Resources(
            cpu_millis=self.cpu_millis - other.cpu_millis,
            memory_bytes=self.memory_bytes - other.memory_bytes,
            slots=self.slots - other.slots,
        )

    def fits_in(self, other: Resources) -> bool:
        return (
            self.cpu_millis <= other.cpu_millis
            and self.memory_bytes <= other.memory_bytes
            and self.slots <= other.slots
        )
