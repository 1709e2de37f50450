"""Reading the event log: a filtered page, a tail, and following new events as they commit.

The store is the source of truth; the in-process bus only rings the doorbell, so a follower
never misses an event (a slow one re-reads after its last sequence number instead of dropping).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from agentflow.vocabulary import EventType
from controlplane.engine.core import Core
from controlplane.errors import InvalidArgument
from controlplane.store import EventRecord, EventWhere

PAGE = 500  # events read per query while catching up
MAX_TAIL = 100_000
FAMILIES = frozenset(t.value.partition(".")[0] for t in EventType)


def event_filter(*, run_id: str, types: Sequence[str]) -> EventWhere:
    """The filter of a request; InvalidArgument names the first unknown type."""
    exact: list[EventType] = []
    families: list[str] = []
    for i, text in enumerate(types):
        if text.endswith(".*") and text[:-2] in FAMILIES:
            families.append(text[:-2])
            continue
        try:
            exact.append(EventType(text))
        except ValueError:
            known = ", ".join(sorted(f"{f}.*" for f in FAMILIES))
            raise InvalidArgument(
                f"types[{i}]: unknown event type {text!r} (an event type such as 'agent.failed', or one of {known})"
            ) from None
    return EventWhere(run_id=run_id, types=tuple(exact), prefixes=tuple(families))


class EventLog:
    def __init__(self, core: Core) -> None:
        self._core = core

    async def stream(
        self, where: EventWhere, *, after_seq: int = 0, tail: int = 0, follow: bool = False
    ) -> AsyncIterator[EventRecord]:
        """Events after `after_seq` (only the last `tail`, when > 0) matching `where`, oldest first;
        with `follow`, then every new matching event until the caller stops iterating."""
        if after_seq < 0:
            raise InvalidArgument("after_seq: must not be negative")
        if not 0 <= tail <= MAX_TAIL:
            raise InvalidArgument(f"tail: must be between 0 and {MAX_TAIL}")
        read = self._core.store.read
        # Subscribed before the first read: an event committed in between still rings.
        with self._core.bus.subscribe(where.run_id or None) as doorbell:
            last = after_seq
            if tail > 0:
                head = read.last_event_seq()  # read first: a later match is in the tail
                batch = read.events_tail(tail, after_seq=after_seq, where=where)
                for event in batch:
                    yield event
                last = batch[-1].seq if batch else max(after_seq, head)
            else:
                async for event in self._catch_up(where, last):
                    last = event.seq
                    yield event
            while follow:
                await doorbell.ring()
                async for event in self._catch_up(where, last):
                    last = event.seq
                    yield event

    async def _catch_up(self, where: EventWhere, after_seq: int) -> AsyncIterator[EventRecord]:
        read = self._core.store.read
        while True:
            batch = read.events_after(after_seq, limit=PAGE, where=where)
            for event in batch:
                yield event
            if len(batch) < PAGE:
                return
            after_seq = batch[-1].seq
