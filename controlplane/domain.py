"""Domain types of the control plane: resource amounts, and how a node's status is shown. No protobuf here.

The statuses themselves are shared with the nodes and live in `agentflow.vocabulary`.
"""

from __future__ import annotations

from dataclasses import dataclass

from agentflow.vocabulary import NodeStatus


def node_status(live: NodeStatus, *, draining: bool) -> NodeStatus:
    """What users and the scheduler see: a connected node that is draining shows as draining."""
    return NodeStatus.DRAINING if draining and live is NodeStatus.READY else live


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
