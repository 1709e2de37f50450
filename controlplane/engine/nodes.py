"""The node-facing side: registration, streams, heartbeats, reconciliation and liveness."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from agentflow.vocabulary import EventType, NodeStatus, StepStatus
from controlplane.domain import Resources, node_status
from controlplane.engine.core import Core, Liveness, NodeSession
from controlplane.engine.messages import (
    AckResult,
    AttemptKey,
    CancelAttempt,
    DrainNotice,
    NodeHello,
    NodeRegistration,
    StepResultReport,
)
from controlplane.engine.transitions import apply_result, move_off_node, requeue_lost
from controlplane.errors import AlreadyExists, InvalidArgument, NotFound, StorageError
from controlplane.store import NodeRecord, Tx

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeInfo:
    record: NodeRecord
    status: NodeStatus
    allocated: Resources
    running: int


class NodeService:
    def __init__(self, core: Core) -> None:
        self._core = core

    async def load(self) -> None:
        """After a restart every known node is disconnected until it reconnects or its TTL ends."""
        now = self._core.clock.now()
        async with self._core.tx() as tx:
            for node in await tx.nodes():
                status = NodeStatus.DOWN if node.status is NodeStatus.DOWN else NodeStatus.DISCONNECTED
                if status is not node.status:
                    await tx.set_node_status(node.id, status)
                self._core.liveness[node.id] = Liveness(status=status, last_seen=now)

    async def register(self, reg: NodeRegistration) -> str:
        if reg.capacity.slots < 1 or reg.capacity.cpu_millis < 1 or reg.capacity.memory_bytes < 1:
            raise InvalidArgument("capacity: cpu, memory and slots must all be positive")
        now = self._core.clock.now()
        async with self._core.tx() as tx:
            existing = await tx.node_by_name(reg.name)
            if existing is not None:
                session = self._core.sessions.get(existing.id)
                if existing.id != reg.node_id and session is not None and not session.closed.is_set():
                    raise AlreadyExists(f'node name "{reg.name}" is held by a connected node')
                node_id = existing.id
                registered_at = existing.registered_at
            else:
                # A node may keep its id across a rename, but never take over another's.
                holder = await tx.node(reg.node_id) if reg.node_id else None
                node_id = reg.node_id if reg.node_id and holder is None else str(uuid.uuid4())
                registered_at = now
            await tx.upsert_node(
                NodeRecord(
                    id=node_id,
                    name=reg.name,
                    status=NodeStatus.DISCONNECTED,
                    isolation=reg.isolation,
                    labels=dict(reg.labels),
                    capacity=reg.capacity,
                    version=reg.version,
                    registered_at=registered_at,
                    last_heartbeat=now,
                )
            )
            await tx.add_event(EventType.NODE_REGISTERED, now=now, node=reg.name, data={"id": node_id})
        previous = self._core.liveness.get(node_id)
        if previous is None or previous.status is not NodeStatus.READY:
            self._core.liveness[node_id] = Liveness(status=NodeStatus.DISCONNECTED, last_seen=now)
        return node_id

    async def open_session(self, node_id: str) -> NodeSession:
        record = await self._core.store.read.node(node_id)
        if record is None:
            raise NotFound(f'node id "{node_id}" is not registered; call Register first')
        old = self._core.sessions.get(node_id)
        if old is not None:
            old.closed.set()
        session = NodeSession(node_id, record.name)
        self._core.sessions[node_id] = session
        # Nothing is placed on the node until its hello has been reconciled.
        state = self._core.liveness.get(node_id)
        if state is not None and state.status is NodeStatus.READY:
            state.status = NodeStatus.DISCONNECTED
        return session

    async def hello(self, session: NodeSession, hello: NodeHello) -> None:
        """Reconcile: requeue what the node lost, cancel what it runs but should not."""
        if self._core.sessions.get(session.node_id) is not session or session.closed.is_set():
            return  # replaced or reaped meanwhile
        now = self._core.clock.now()
        known = set(hello.in_flight) | set(hello.unacked)
        cancels: list[CancelAttempt] = []
        async with self._core.tx() as tx:
            for step in await tx.steps_on_node(session.node_id):
                key = AttemptKey(run_id=step.run_id, step=step.name, attempt=step.attempt)
                if key not in known:
                    await requeue_lost(
                        tx,
                        step,
                        reason=f"node {session.node_name} no longer has the attempt",
                        node_name=session.node_name,
                        now=now,
                    )
            for key in hello.in_flight:
                held = await tx.step(key.run_id, key.step)
                current = (
                    held is not None
                    and held.attempt == key.attempt
                    and held.status.on_node
                    and held.node_id == session.node_id
                )
                if not current:
                    cancels.append(CancelAttempt(key=key))
            await tx.set_node_status(session.node_id, NodeStatus.READY)
            await tx.touch_node(session.node_id, now=now)
            await tx.add_event(EventType.NODE_READY, now=now, node=session.node_name)
            record = await tx.node(session.node_id)
        self._core.liveness[session.node_id] = Liveness(status=NodeStatus.READY, last_seen=now)
        session.hello_done = True
        if record is not None and record.draining:
            self._core.send(session.node_id, DrainNotice(draining=True, deadline=record.drain_deadline))
        for cancel in cancels:
            self._core.send(session.node_id, cancel)
        self._core.wake()

    async def heartbeat(self, session: NodeSession) -> None:
        now = self._core.clock.now()
        state = self._core.liveness.get(session.node_id)
        if state is None or self._core.sessions.get(session.node_id) is not session:
            return
        state.last_seen = now
        try:
            async with self._core.store.transaction() as tx:
                await tx.touch_node(session.node_id, now=now)
        except StorageError as exc:
            # Liveness lives in memory; the stored time is for display. Keep the stream.
            log.warning("cannot record a heartbeat", extra={"node": session.node_name, "error": str(exc)})

    async def goodbye(self, session: NodeSession) -> None:
        """The node is shutting down: nothing more goes there; its results still count."""
        state = self._core.liveness.get(session.node_id)
        if (
            state is None
            or self._core.sessions.get(session.node_id) is not session
            or state.status is not NodeStatus.READY
        ):
            return
        now = self._core.clock.now()
        async with self._core.tx() as tx:
            await tx.set_node_status(session.node_id, NodeStatus.STOPPING)
            await tx.add_event(EventType.NODE_STOPPING, now=now, node=session.node_name)
        state.status = NodeStatus.STOPPING

    async def started(self, session: NodeSession, key: AttemptKey) -> None:
        now = self._core.clock.now()
        async with self._core.tx() as tx:
            step = await tx.step(key.run_id, key.step)
            if (
                step is None
                or step.attempt != key.attempt
                or step.status is not StepStatus.ASSIGNED
                or step.node_id != session.node_id
            ):
                return
            await tx.start_attempt(key.run_id, key.step, key.attempt, now=now)
            await tx.update_step(key.run_id, key.step, status=StepStatus.RUNNING, started_at=step.started_at or now)
            await tx.add_event(
                EventType.AGENT_STARTED,
                now=now,
                run_id=key.run_id,
                step=key.step,
                attempt=key.attempt,
                node=session.node_name,
            )

    async def result(self, session: NodeSession, report: StepResultReport) -> None:
        now = self._core.clock.now()
        async with self._core.tx() as tx:
            applied = await apply_result(
                tx, report, node_id=session.node_id, node_name=session.node_name, now=now, rng=self._core.rng
            )
        # Ack only after the commit: the node keeps the result in its outbox until then.
        self._core.send(session.node_id, AckResult(key=report.key, stale=not applied))

    async def close_session(self, session: NodeSession) -> None:
        session.closed.set()
        if self._core.sessions.get(session.node_id) is not session:
            return
        del self._core.sessions[session.node_id]
        state = self._core.liveness.get(session.node_id)
        if state is None or state.status is NodeStatus.DOWN:
            return
        state.status = NodeStatus.DISCONNECTED
        now = self._core.clock.now()
        async with self._core.tx() as tx:
            await tx.set_node_status(session.node_id, NodeStatus.DISCONNECTED)
            await tx.add_event(EventType.NODE_DISCONNECTED, now=now, node=session.node_name)

    async def reap(self) -> None:
        """Mark nodes silent past the TTL down and requeue their steps."""
        now = self._core.clock.now()
        for node_id, state in list(self._core.liveness.items()):
            if state.status is NodeStatus.DOWN or now - state.last_seen <= self._core.node_ttl:
                continue
            # Memory changes only after the commit: if the write fails (e.g. a full disk), the
            # next pass tries again instead of leaving the node's steps on a node marked down.
            session = self._core.sessions.get(node_id)
            async with self._core.tx() as tx:
                record = await tx.node(node_id)
                name = record.name if record else node_id
                await tx.set_node_status(node_id, NodeStatus.DOWN)
                silent = (now - state.last_seen).total_seconds()
                await tx.add_event(EventType.NODE_DOWN, now=now, node=name, data={"silent_s": round(silent, 1)})
                for step in await tx.steps_on_node(node_id):
                    await requeue_lost(
                        tx,
                        step,
                        reason=f"node {name} went down (no heartbeat for {silent:.0f}s)",
                        node_name=name,
                        now=now,
                    )
            # A node that came back meanwhile has a new Liveness and session: leave those alone.
            state.status = NodeStatus.DOWN
            if session is not None and self._core.sessions.get(node_id) is session:
                del self._core.sessions[node_id]
                session.closed.set()

    # draining ----------------------------------------------------------------------------------

    async def drain(self, name: str, *, deadline: timedelta | None) -> NodeInfo:
        """Place nothing more on the node; past `deadline`, move what still runs there."""
        if deadline is not None and deadline < timedelta(0):
            raise InvalidArgument("deadline: must not be negative")
        now = self._core.clock.now()
        at = None if deadline is None else now + deadline
        async with self._core.tx() as tx:
            record = await self._node_named(tx, name)
            await tx.set_node_drain(record.id, draining=True, deadline=at)
            data = {} if at is None else {"deadline": at.isoformat()}
            await tx.add_event(EventType.NODE_DRAINING, now=now, node=name, data=data)
        self._core.drained.discard(record.id)
        self._core.send(record.id, DrainNotice(draining=True, deadline=at))
        if at is not None and at <= now:
            await self.enforce_drains()
        return await self.get(name)

    async def undrain(self, name: str) -> NodeInfo:
        now = self._core.clock.now()
        async with self._core.tx() as tx:
            record = await self._node_named(tx, name)
            if record.draining:
                await tx.set_node_drain(record.id, draining=False, deadline=None)
                await tx.add_event(EventType.NODE_UNDRAINED, now=now, node=name)
        self._core.drained.discard(record.id)
        self._core.send(record.id, DrainNotice(draining=False, deadline=None))  # an answer even if a no-op
        return await self.get(name)

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

    async def enforce_drains(self) -> None:
        """Announce draining nodes that run nothing more; move steps off those past their deadline."""
        now = self._core.clock.now()
        read = self._core.store.read
        due = [n for n in await read.nodes() if n.draining and await self._drain_due(n, now)]
        if not due:
            return  # the common case: no write transaction
        cancels: list[tuple[str, CancelAttempt]] = []
        drained: list[str] = []
        async with self._core.tx() as tx:
            for node in due:
                steps = await tx.steps_on_node(node.id)
                if not steps:
                    await tx.add_event(EventType.NODE_DRAINED, now=now, node=node.name)
                    drained.append(node.id)
                    continue
                for step in steps:
                    reason = f"node {node.name} is draining and its deadline passed"
                    cancel = await move_off_node(tx, step, reason=reason, node_name=node.name, now=now)
                    if cancel is not None:
                        cancels.append((node.id, cancel))
        self._core.drained.update(drained)
        for node_id, cancel in cancels:
            self._core.send(node_id, cancel)

    async def _drain_due(self, node: NodeRecord, now: datetime) -> bool:
        """Whether a draining node is owed its drained event or has steps past the deadline."""
        busy = bool(await self._core.store.read.steps_on_node(node.id))
        if busy:
            return node.drain_deadline is not None and node.drain_deadline <= now
        return node.id not in self._core.drained

    @staticmethod
    async def _node_named(tx: Tx, name: str) -> NodeRecord:
        record = await tx.node_by_name(name)
        if record is None:
            raise NotFound(f'node "{name}" not found')
        return record

    # views --------------------------------------------------------------------------------------

    async def list_nodes(self) -> list[NodeInfo]:
        read = self._core.store.read
        nodes = await read.nodes()
        on_node = [s for _, s in await read.steps_with_status(StepStatus.ASSIGNED, StepStatus.RUNNING)]
        infos = []
        for node in nodes:
            mine = [s for s in on_node if s.node_id == node.id]
            allocated = Resources()
            for s in mine:
                allocated = allocated + s.request
            state = self._core.liveness.get(node.id)
            infos.append(
                NodeInfo(
                    record=node,
                    status=node_status(state.status if state else node.status, draining=node.draining),
                    allocated=allocated,
                    running=len(mine),
                )
            )
        return infos

    async def get(self, name: str) -> NodeInfo:
        for info in await self.list_nodes():
            if info.record.name == name:
                return info
        raise NotFound(f'node "{name}" not found')
