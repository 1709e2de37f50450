"""Views of the nodes: what ListNodes and GetNode show (status, allocation, running steps)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from agentflow.vocabulary import NodeStatus, StepStatus
from controlplane.domain import Resources, node_status
from controlplane.engine.core import Core
from controlplane.engine.fleet import Fleet
from controlplane.errors import NotFound
from controlplane.store import NodeRecord


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeInfo:
    record: NodeRecord
    status: NodeStatus
    allocated: Resources
    running: int
    last_heartbeat: datetime | None  # the live one once the node spoke to this process, else the stored one


class NodeViews:
    def __init__(self, core: Core, fleet: Fleet) -> None:
        self._core = core
        self._fleet = fleet

    async def list_nodes(self) -> list[NodeInfo]:
        read = self._core.store.read
        nodes = read.nodes()
        on_node: dict[str | None, tuple[Resources, int]] = {}
        for _, s in read.steps_with_status(StepStatus.ASSIGNED, StepStatus.RUNNING):
            allocated, running = on_node.get(s.node_id, (Resources(), 0))
            on_node[s.node_id] = (allocated + s.request, running + 1)
        infos = []
        for node in nodes:
            allocated, running = on_node.get(node.id, (Resources(), 0))
            state = self._fleet.liveness.get(node.id)
            infos.append(
                NodeInfo(
                    record=node,
                    status=node_status(state.status if state else node.status, draining=node.draining),
                    allocated=allocated,
                    running=running,
                    last_heartbeat=state.last_seen if state and state.recorded else node.last_heartbeat,
                )
            )
        return infos

    async def get(self, name: str) -> NodeInfo:
        for info in await self.list_nodes():
            if info.record.name == name:
                return info
        raise NotFound(f'node "{name}" not found')
