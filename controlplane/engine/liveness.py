"""Whether nodes are alive: heartbeats, a node's goodbye, and the reaper that marks nodes silent
past their TTL down and places their steps again."""

from __future__ import annotations

import logging
from datetime import timedelta

from agentflow.vocabulary import EventType, NodeStatus
from controlplane.engine.core import Core
from controlplane.engine.fleet import Fleet, NodeSession
from controlplane.engine.transitions import requeue_lost
from controlplane.errors import StorageError

log = logging.getLogger(__name__)


class LivenessService:
    def __init__(self, core: Core, fleet: Fleet, *, node_ttl: timedelta) -> None:
        self._core = core
        self._fleet = fleet
        self._node_ttl = node_ttl

    async def heartbeat(self, session: NodeSession) -> None:
        """A heartbeat renews the node's lease in memory (what the reaper and ListNodes read).
        The store's copy, shown after a restart, is written at most once per TTL: like Nomad's
        heartbeat timers, liveness is not a write per beat (5,000 nodes at 5 s would be 1,000/s)."""
        now = self._core.clock.now()
        state = self._fleet.liveness.get(session.node_id)
        if state is None or self._fleet.sessions.get(session.node_id) is not session:
            return
        state.last_seen = now
        if state.recorded is not None and now - state.recorded < self._node_ttl:
            return
        state.recorded = now
        try:
            async with self._core.store.transaction(wait=False, urgent=False) as tx:
                tx.touch_node(session.node_id, now=now)
        except StorageError as exc:
            _not_recorded(session, exc)
            return
        self._core.after_commit(tx, lambda: None, failed=lambda exc: _not_recorded(session, exc))

    async def goodbye(self, session: NodeSession) -> None:
        """The node is shutting down: nothing more goes there; its results still count."""
        state = self._fleet.liveness.get(session.node_id)
        if (
            state is None
            or self._fleet.sessions.get(session.node_id) is not session
            or state.status is not NodeStatus.READY
        ):
            return
        now = self._core.clock.now()
        async with self._core.tx() as tx:
            tx.set_node_status(session.node_id, NodeStatus.STOPPING)
            tx.add_event(EventType.NODE_STOPPING, now=now, node=session.node_name)
        state.status = NodeStatus.STOPPING

    async def reap(self) -> None:
        """Mark nodes silent past the TTL down and requeue their steps."""
        now = self._core.clock.now()
        for node_id, state in list(self._fleet.liveness.items()):
            if state.status is NodeStatus.DOWN or now - state.last_seen <= self._node_ttl:
                continue
            # Memory changes only after the commit: if the write fails (e.g. a full disk), the
            # next pass tries again instead of leaving the node's steps on a node marked down.
            session = self._fleet.sessions.get(node_id)
            async with self._core.tx() as tx:
                record = tx.node(node_id)
                name = record.name if record else node_id
                tx.set_node_status(node_id, NodeStatus.DOWN)
                silent = (now - state.last_seen).total_seconds()
                tx.add_event(EventType.NODE_DOWN, now=now, node=name, data={"silent_s": round(silent, 1)})
                for step in tx.steps_on_node(node_id):
                    requeue_lost(
                        tx,
                        step,
                        reason=f"node {name} went down (no heartbeat for {silent:.0f}s)",
                        node_name=name,
                        now=now,
                    )
            # A node that came back meanwhile has a new Liveness and session: leave those alone.
            state.status = NodeStatus.DOWN
            if session is not None and self._fleet.sessions.get(node_id) is session:
                del self._fleet.sessions[node_id]
                session.close()


def _not_recorded(session: NodeSession, exc: BaseException) -> None:
    # Liveness lives in memory; the stored time is for display. Keep the stream.
    log.warning("cannot record a heartbeat", extra={"node": session.node_name, "error": str(exc)})
