"""Nodes joining: registration, opening a stream, the hello that reconciles what the node holds
with what the store says it should hold, and a stream's end."""

from __future__ import annotations

import logging
import uuid

from agentflow.vocabulary import EventType, NodeStatus
from controlplane.engine.access import Tokens
from controlplane.engine.core import Core
from controlplane.engine.fleet import Fleet, Liveness, NodeSession
from controlplane.engine.messages import AttemptKey, CancelAttempt, DrainNotice, NodeHello, NodeRegistration
from controlplane.engine.transitions import requeue_lost
from controlplane.errors import AlreadyExists, InvalidArgument, NotFound
from controlplane.store import NodeRecord

log = logging.getLogger(__name__)


class Registration:
    def __init__(self, core: Core, fleet: Fleet, tokens: Tokens) -> None:
        self._tokens = tokens
        self._core = core
        self._fleet = fleet

    async def load(self) -> None:
        """After a restart every known node is disconnected until it reconnects or its TTL ends."""
        now = self._core.clock.now()
        async with self._core.tx() as tx:
            for node in tx.nodes():
                status = NodeStatus.DOWN if node.status is NodeStatus.DOWN else NodeStatus.DISCONNECTED
                if status is not node.status:
                    tx.set_node_status(node.id, status)
                self._fleet.liveness[node.id] = Liveness(status=status, last_seen=now)

    async def register(self, reg: NodeRegistration, *, require_join: bool = False) -> str:
        """Register (or re-register) a node; its id. With `require_join`, a name not seen before
        needs a valid join token (consumed if it is single-use)."""
        if reg.capacity.slots < 1 or reg.capacity.cpu_millis < 1 or reg.capacity.memory_bytes < 1:
            raise InvalidArgument("capacity: cpu, memory and slots must all be positive")
        now = self._core.clock.now()
        async with self._core.tx() as tx:
            existing = tx.node_by_name(reg.name)
            if existing is not None:
                session = self._fleet.sessions.get(existing.id)
                if existing.id != reg.node_id and session is not None and not session.closed.is_set():
                    raise AlreadyExists(f'node name "{reg.name}" is held by a connected node')
                node_id = existing.id
                registered_at = existing.registered_at
            else:
                if require_join:
                    self._tokens.consume_join(tx, reg.join_token, node=reg.name, now=now)
                # A node may keep its id across a rename, but never take over another's.
                holder = tx.node(reg.node_id) if reg.node_id else None
                node_id = reg.node_id if reg.node_id and holder is None else str(uuid.uuid4())
                registered_at = now
            tx.upsert_node(
                NodeRecord(
                    id=node_id,
                    name=reg.name,
                    status=NodeStatus.DISCONNECTED,
                    isolation=reg.isolation,
                    sandbox_layers=reg.sandbox_layers,
                    labels=dict(reg.labels),
                    capacity=reg.capacity,
                    version=reg.version,
                    registered_at=registered_at,
                    last_heartbeat=now,
                )
            )
            tx.add_event(EventType.NODE_REGISTERED, now=now, node=reg.name, data={"id": node_id})
        previous = self._fleet.liveness.get(node_id)
        if previous is None or previous.status is not NodeStatus.READY:
            self._fleet.liveness[node_id] = Liveness(status=NodeStatus.DISCONNECTED, last_seen=now)
        return node_id

    async def open_session(self, node_id: str) -> NodeSession:
        record = self._core.store.read.node(node_id)
        if record is None:
            raise NotFound(f'node id "{node_id}" is not registered; call Register first')
        old = self._fleet.sessions.get(node_id)
        if old is not None:
            old.close()
        session = NodeSession(node_id, record.name)
        self._fleet.sessions[node_id] = session
        # Nothing is placed on the node until its hello has been reconciled.
        state = self._fleet.liveness.get(node_id)
        if state is not None and state.status is NodeStatus.READY:
            state.status = NodeStatus.DISCONNECTED
        return session

    async def hello(self, session: NodeSession, hello: NodeHello) -> None:
        """Reconcile: requeue what the node lost, cancel what it runs but should not."""
        if self._fleet.sessions.get(session.node_id) is not session or session.closed.is_set():
            return  # replaced or reaped meanwhile
        now = self._core.clock.now()
        known = set(hello.in_flight) | set(hello.unacked)
        cancels: list[CancelAttempt] = []
        async with self._core.tx() as tx:
            for step in tx.steps_on_node(session.node_id):
                key = AttemptKey(run_id=step.run_id, step=step.name, attempt=step.attempt)
                if key not in known:
                    requeue_lost(
                        tx,
                        step,
                        reason=f"node {session.node_name} no longer has the attempt",
                        node_name=session.node_name,
                        now=now,
                    )
            for key in hello.in_flight:
                held = tx.step(key.run_id, key.step)
                current = (
                    held is not None
                    and held.attempt == key.attempt
                    and held.status.on_node
                    and held.node_id == session.node_id
                )
                if not current:
                    cancels.append(CancelAttempt(key=key))
            tx.set_node_status(session.node_id, NodeStatus.READY)
            tx.touch_node(session.node_id, now=now)
            tx.add_event(EventType.NODE_READY, now=now, node=session.node_name)
            record = tx.node(session.node_id)
        self._fleet.liveness[session.node_id] = Liveness(status=NodeStatus.READY, last_seen=now, recorded=now)
        session.hello_done = True
        if record is not None and record.draining:
            self._fleet.send(session.node_id, DrainNotice(draining=True, deadline=record.drain_deadline))
        for cancel in cancels:
            self._fleet.send(session.node_id, cancel)
        self._core.wake()

    async def close_session(self, session: NodeSession) -> None:
        session.close()
        if self._fleet.sessions.get(session.node_id) is not session:
            return
        del self._fleet.sessions[session.node_id]
        state = self._fleet.liveness.get(session.node_id)
        if state is None or state.status is NodeStatus.DOWN:
            return
        state.status = NodeStatus.DISCONNECTED
        now = self._core.clock.now()
        async with self._core.tx() as tx:
            tx.set_node_status(session.node_id, NodeStatus.DISCONNECTED)
            tx.add_event(EventType.NODE_DISCONNECTED, now=now, node=session.node_name)
