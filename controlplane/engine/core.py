"""What every engine service needs: the store, the event bus, the clock, and a way to wake the
scheduler. State about nodes lives in `fleet.Fleet`; each service takes only what it uses."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from agentflow.clock import Clock
from agentflow.vocabulary import EventType
from controlplane.engine.bus import EventBus
from controlplane.store import StateStore, Tx

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


@dataclass(slots=True, kw_only=True)
class Core:
    store: StateStore
    bus: EventBus
    clock: Clock
    store_id: str = ""  # the store's identity (`Reader.store_id`); names events outside it
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
