"""What the engine's services share: the store, the event bus, the clock and node sessions."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from agentflow.vocabulary import EventType, NodeStatus
from controlplane.clock import Clock
from controlplane.engine.bus import EventBus
from controlplane.engine.messages import ToNode
from controlplane.errors import ResourceExhausted
from controlplane.store import ModuleBlobs, StateStore, Tx

SESSION_QUEUE_SIZE = 4096

# Events after which a scheduling pass may place something: a step became ready, capacity was
# freed, or a node joined. Others (e.g. agent.started) leave the last plan as good as it was.
SCHEDULER_EVENTS = frozenset(
    {
        EventType.WORKFLOW_STARTED,
        EventType.WORKFLOW_CANCELLED,
        EventType.AGENT_COMPLETED,
        EventType.AGENT_FAILED,
        EventType.AGENT_REQUEUED,
        EventType.AGENT_SKIPPED,
        EventType.NODE_READY,
        EventType.NODE_DOWN,
        EventType.NODE_UNDRAINED,
    }
)


class NodeSession:
    """One live Connect stream of a node: a bounded queue of messages to send down."""

    def __init__(self, node_id: str, node_name: str) -> None:
        self.node_id = node_id
        self.node_name = node_name
        self.outgoing: asyncio.Queue[ToNode] = asyncio.Queue(maxsize=SESSION_QUEUE_SIZE)
        self.closed = asyncio.Event()
        self.hello_done = False

    def send(self, message: ToNode) -> None:
        if self.closed.is_set():
            return
        try:
            self.outgoing.put_nowait(message)
        except asyncio.QueueFull:
            # The node stopped reading; drop the stream. It reconnects and reconciles.
            self.closed.set()
            raise ResourceExhausted(f"node {self.node_name}: send queue full, closing its stream") from None


@dataclass(slots=True)
class Liveness:
    status: NodeStatus
    last_seen: datetime


@dataclass(slots=True, kw_only=True)
class Core:
    store: StateStore
    blobs: ModuleBlobs
    bus: EventBus
    clock: Clock
    rng: random.Random
    heartbeat_interval: timedelta
    node_ttl: timedelta
    sessions: dict[str, NodeSession] = field(default_factory=dict)
    liveness: dict[str, Liveness] = field(default_factory=dict)
    # Draining nodes whose `node.drained` event was emitted (in memory: after a restart it is
    # emitted once more).
    drained: set[str] = field(default_factory=set)
    wake_event: asyncio.Event = field(default_factory=asyncio.Event)

    def wake(self) -> None:
        """Ask the scheduler for a pass soon."""
        self.wake_event.set()

    @asynccontextmanager
    async def tx(self) -> AsyncIterator[Tx]:
        """A transaction whose events are published (and the scheduler woken) after commit."""
        async with self.store.transaction() as tx:
            yield tx
        if tx.emitted:
            self.bus.publish(tx.emitted)
            if any(e.type in SCHEDULER_EVENTS for e in tx.emitted):
                self.wake()

    def send(self, node_id: str, message: ToNode) -> bool:
        """Queue a message for a node's live stream; False when the node has none."""
        session = self.sessions.get(node_id)
        if session is None or session.closed.is_set() or not session.hello_done:
            return False
        try:
            session.send(message)
        except ResourceExhausted:
            return False
        return True

    def live_status(self) -> dict[str, NodeStatus]:
        return {node_id: state.status for node_id, state in self.liveness.items()}
