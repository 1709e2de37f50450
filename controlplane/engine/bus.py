"""In-process publish/subscribe of committed events, with bounded subscriber queues."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from controlplane.store import EventRecord

DEFAULT_SUBSCRIBER_QUEUE = 1024


class SubscriberLagged(Exception):
    """The subscriber fell more than its queue size behind; events were dropped for it."""


class Subscription:
    def __init__(self, bus: EventBus, run_id: str | None, maxsize: int) -> None:
        self._bus = bus
        self.run_id = run_id
        self._queue: asyncio.Queue[EventRecord] = asyncio.Queue(maxsize=maxsize)
        self.lagged = False

    def _offer(self, event: EventRecord) -> None:
        if self.lagged:
            return  # dropped until the subscriber has seen the gap
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.lagged = True

    async def get(self) -> EventRecord:
        """The next event; raises SubscriberLagged once where events were dropped.

        Events queued before the overflow come first, then SubscriberLagged, then events
        published after it was raised: nothing after the gap arrives before the gap is reported.
        """
        if self.lagged and self._queue.empty():
            self.lagged = False
            raise SubscriberLagged()
        return await self._queue.get()

    def waiting(self, limit: int) -> list[EventRecord]:
        """Up to `limit` events queued now, without waiting (a gap is reported by the next `get`)."""
        taken: list[EventRecord] = []
        while len(taken) < limit and not self._queue.empty():
            taken.append(self._queue.get_nowait())
        return taken

    async def ring(self) -> None:
        """Use the subscription as a doorbell: wait until anything was published since the last
        ring (or drop), then forget what it was; the subscriber reads the store itself."""
        if self._queue.empty() and not self.lagged:
            await self._queue.get()
        self.lagged = False
        while not self._queue.empty():
            self._queue.get_nowait()

    def close(self) -> None:
        self._bus._remove(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventBus:
    def __init__(self, *, queue_size: int = DEFAULT_SUBSCRIBER_QUEUE) -> None:
        self._subs: set[Subscription] = set()
        self._queue_size = queue_size

    def subscribe(self, run_id: str | None = None) -> Subscription:
        """Events of one run, or of everything when run_id is None."""
        sub = Subscription(self, run_id, self._queue_size)
        self._subs.add(sub)
        return sub

    def _remove(self, sub: Subscription) -> None:
        self._subs.discard(sub)

    def publish(self, events: Iterable[EventRecord]) -> None:
        for event in events:
            for sub in list(self._subs):
                if sub.run_id is None or sub.run_id == event.run_id:
                    sub._offer(event)
