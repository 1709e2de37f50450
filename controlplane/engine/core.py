"""What every engine service needs: the store, the event bus, the clock, and a way to wake the
scheduler. State about nodes lives in `fleet.Fleet`; each service takes only what it uses."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
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
    wake_event: asyncio.Event = field(default_factory=asyncio.Event)  # a scheduling pass is wanted
    turn_event: asyncio.Event = field(default_factory=asyncio.Event)  # a pass or a group commit is

    def wake(self) -> None:
        """Ask the scheduler for a pass soon."""
        self.wake_event.set()
        self.turn_event.set()

    def request_commit(self) -> None:
        """Transactions wait to be committed (the engine's loop commits them as a group)."""
        self.turn_event.set()

    @asynccontextmanager
    async def tx(self, *, wait: bool = True, urgent: bool = True) -> AsyncIterator[Tx]:
        """A logical transaction; its events are published once it is committed.

        One after which a pass may place something wakes the scheduler before the commit, not
        after: the pass then joins the same group (one commit for a result and the placement of
        the steps it made ready). With `wait=False` the caller goes on at once and does what
        must follow the commit in `after_commit(tx, ...)`."""
        async with self.store.transaction(wait=wait, urgent=urgent) as tx:
            yield tx
            if any(e.type in SCHEDULER_EVENTS for e in tx.emitted):
                self.wake()
        if wait:
            if tx.emitted:
                self.bus.publish(tx.emitted)
        elif tx.emitted:
            events = tx.emitted
            self.after_commit(tx, lambda: self.bus.publish(events))

    @staticmethod
    def after_commit(
        tx: Tx, then: Callable[[], object], *, failed: Callable[[BaseException], None] | None = None
    ) -> None:
        """Call `then` once the group of `tx` (ended with `wait=False`) is durable, or `failed`
        with the error if its commit failed (nothing of it was kept). Callbacks run in the order
        they were added, so events and acks keep the order of their transactions."""
        committed = tx.committed
        if committed is None:
            raise RuntimeError("after_commit needs a transaction ended with wait=False")

        def done(future: asyncio.Future[None]) -> None:
            if future.cancelled():
                return
            if (error := future.exception()) is None:
                then()
            elif failed is not None:
                failed(error)

        committed.add_done_callback(done)
