"""The nodes as this control plane sees them right now: their live streams and their liveness.

Kept in memory: liveness is what heartbeats say (the stored status and time are for display
and for a restart, after which every node is `disconnected` until it reconnects or its TTL ends).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime

from agentflow.vocabulary import NodeStatus
from controlplane.engine.messages import ToNode
from controlplane.errors import ResourceExhausted

SESSION_QUEUE_SIZE = 4096


class NodeSession:
    """One live Connect stream of a node: a bounded queue of messages to send down.

    `close()` ends it: `closed` is set, what is queued is dropped and a None wakes the sender."""

    def __init__(self, node_id: str, node_name: str) -> None:
        self.node_id = node_id
        self.node_name = node_name
        self.outgoing: asyncio.Queue[ToNode | None] = asyncio.Queue(maxsize=SESSION_QUEUE_SIZE)
        self.closed = asyncio.Event()
        self.hello_done = False

    def send(self, message: ToNode) -> None:
        if self.closed.is_set():
            return
        try:
            self.outgoing.put_nowait(message)
        except asyncio.QueueFull:
            # The node stopped reading; drop the stream. It reconnects and reconciles.
            self.close()
            raise ResourceExhausted(f"node {self.node_name}: send queue full, closing its stream") from None

    def close(self) -> None:
        """End the stream: nothing more is sent (what is still queued is dropped)."""
        if self.closed.is_set():
            return
        self.closed.set()
        while not self.outgoing.empty():
            self.outgoing.get_nowait()
        self.outgoing.put_nowait(None)  # wakes the sender


@dataclass(slots=True)
class Liveness:
    status: NodeStatus
    last_seen: datetime  # the last heartbeat (or hello), in memory
    recorded: datetime | None = None  # the last one written to the store; None: none since this began


@dataclass(slots=True)
class Fleet:
    sessions: dict[str, NodeSession] = field(default_factory=dict)
    liveness: dict[str, Liveness] = field(default_factory=dict)

    def current(self, session: NodeSession) -> bool:
        """Whether `session` is still the node's live stream (not replaced, reaped or closed)."""
        return self.sessions.get(session.node_id) is session and not session.closed.is_set()

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
