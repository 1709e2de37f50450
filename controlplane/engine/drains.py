"""Draining nodes: no new steps go there; past a deadline, what still runs there is moved."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from agentflow.vocabulary import EventType
from controlplane.engine.core import Core
from controlplane.engine.fleet import Fleet, NodeSession
from controlplane.engine.messages import CancelAttempt, DrainNotice
from controlplane.engine.nodes import NodeInfo, NodeViews
from controlplane.engine.transitions import move_off_node
from controlplane.errors import InvalidArgument, NotFound
from controlplane.store import NodeRecord, Tx

log = logging.getLogger(__name__)


class Drains:
    def __init__(self, core: Core, fleet: Fleet, views: NodeViews) -> None:
        self._core = core
        self._fleet = fleet
        self._views = views
        # Draining nodes whose `node.drained` event was emitted (in memory: after a restart it is
        # emitted once more).
        self._drained: set[str] = set()

    async def drain(self, name: str, *, deadline: timedelta | None) -> NodeInfo:
        """Place nothing more on the node; past `deadline`, move what still runs there."""
        if deadline is not None and deadline < timedelta(0):
            raise InvalidArgument("deadline: must not be negative")
        now = self._core.clock.now()
        at = None if deadline is None else now + deadline
        async with self._core.tx() as tx:
            record = self._node_named(tx, name)
            tx.set_node_drain(record.id, draining=True, deadline=at)
            data = {} if at is None else {"deadline": at.isoformat()}
            tx.add_event(EventType.NODE_DRAINING, now=now, node=name, data=data)
        self._drained.discard(record.id)
        self._fleet.send(record.id, DrainNotice(draining=True, deadline=at))
        if at is not None and at <= now:
            await self.enforce()
        return await self._views.get(name)

    async def undrain(self, name: str) -> NodeInfo:
        now = self._core.clock.now()
        async with self._core.tx() as tx:
            record = self._node_named(tx, name)
            if record.draining:
                tx.set_node_drain(record.id, draining=False, deadline=None)
                tx.add_event(EventType.NODE_UNDRAINED, now=now, node=name)
        self._drained.discard(record.id)
        self._fleet.send(record.id, DrainNotice(draining=False, deadline=None))  # an answer even if a no-op
        return await self._views.get(name)

    async def drain_request(self, session: NodeSession, *, draining: bool, deadline: timedelta | None) -> None:
        """The node asks for its own drain (its local admin API). A bad request is logged, not
        fatal to the stream; the node checks its requests before sending them."""
        try:
            if draining:
                await self.drain(session.node_name, deadline=deadline)
            else:
                await self.undrain(session.node_name)
        except InvalidArgument as exc:
            log.warning("node sent a bad drain request", extra={"node": session.node_name, "error": str(exc)})

    async def enforce(self) -> None:
        """Announce draining nodes that run nothing more; move steps off those past their deadline."""
        now = self._core.clock.now()
        read = self._core.store.read
        due = [n for n in read.draining_nodes() if self._drain_due(n, now)]  # not every node, every pass
        if not due:
            return  # the common case: no write transaction
        cancels: list[tuple[str, CancelAttempt]] = []
        drained: list[str] = []
        async with self._core.tx() as tx:
            for node in due:
                steps = tx.steps_on_node(node.id)
                if not steps:
                    tx.add_event(EventType.NODE_DRAINED, now=now, node=node.name)
                    drained.append(node.id)
                    continue
                for step in steps:
                    reason = f"node {node.name} is draining and its deadline passed"
                    cancel = move_off_node(tx, step, reason=reason, node_name=node.name, now=now)
                    if cancel is not None:
                        cancels.append((node.id, cancel))
        self._drained.update(drained)
        for node_id, cancel in cancels:
            self._fleet.send(node_id, cancel)

    def _drain_due(self, node: NodeRecord, now: datetime) -> bool:
        """Whether a draining node is owed its drained event or has steps past the deadline."""
        busy = bool(self._core.store.read.steps_on_node(node.id))
        if busy:
            return node.drain_deadline is not None and node.drain_deadline <= now
        return node.id not in self._drained

    @staticmethod
    def _node_named(tx: Tx, name: str) -> NodeRecord:
        record = tx.node_by_name(name)
        if record is None:
            raise NotFound(f'node "{name}" not found')
        return record
