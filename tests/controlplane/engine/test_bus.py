"""`controlplane.engine.bus`: per-run and all-event subscriptions with bounded queues."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from controlplane.engine.bus import DEFAULT_SUBSCRIBER_QUEUE, EventBus, SubscriberLagged, Subscription
from controlplane.store import EventRecord

pytestmark = [pytest.mark.unit, pytest.mark.timeout(10)]

T0 = datetime(2025, 1, 1, tzinfo=UTC)
_seq = 0


def event(run_id: str = "run-a", type: str = "agent.completed") -> EventRecord:
    global _seq
    _seq += 1
    return EventRecord(seq=_seq, type=type, run_id=run_id, time=T0)


def events(n: int, run_id: str = "run-a") -> list[EventRecord]:
    return [event(run_id) for _ in range(n)]


async def drain(sub: Subscription) -> list[EventRecord]:
    """Everything already queued, without waiting for more."""
    got = []
    while True:
        try:
            got.append(await asyncio.wait_for(sub.get(), 0.01))
        except TimeoutError:
            return got


async def test_run_subscription_gets_only_its_run_in_order() -> None:
    bus = EventBus()
    sub = bus.subscribe("run-a")
    a1, b1, a2, node = event("run-a"), event("run-b"), event("run-a"), event("", "node.ready")
    bus.publish([a1, b1, a2, node])
    assert await drain(sub) == [a1, a2]


async def test_all_events_subscription_gets_everything() -> None:
    bus = EventBus()
    sub = bus.subscribe()
    published = [event("run-a"), event("run-b"), event("", "node.down")]
    bus.publish(published)
    assert await drain(sub) == published


async def test_every_subscriber_gets_its_own_copy() -> None:
    bus = EventBus()
    first, second, other = bus.subscribe("run-a"), bus.subscribe("run-a"), bus.subscribe("run-b")
    published = events(3)
    bus.publish(published)
    assert await drain(first) == published
    assert await drain(second) == published
    assert await drain(other) == []


async def test_get_waits_for_the_next_event() -> None:
    bus = EventBus()
    sub = bus.subscribe("run-a")
    waiting = asyncio.create_task(sub.get())
    for _ in range(3):  # let it run to where it waits
        await asyncio.sleep(0)
    assert not waiting.done()
    e = event("run-a")
    bus.publish([e])
    assert await waiting == e


async def test_publish_accepts_any_iterable() -> None:
    bus = EventBus()
    sub = bus.subscribe()
    published = events(2)
    bus.publish(e for e in published)
    assert await drain(sub) == published


async def test_overflow_raises_lagged_once_then_delivery_resumes() -> None:
    bus = EventBus(queue_size=3)
    sub = bus.subscribe("run-a")
    kept, dropped = events(3), events(2)
    bus.publish([*kept, *dropped])
    assert sub.lagged
    assert [await sub.get() for _ in kept] == kept
    with pytest.raises(SubscriberLagged):
        await sub.get()
    assert not sub.lagged
    later = events(2)
    bus.publish(later)
    assert await drain(sub) == later  # no second SubscriberLagged


async def test_nothing_after_the_gap_arrives_before_the_lag_is_reported() -> None:
    bus = EventBus(queue_size=2)
    sub = bus.subscribe()
    e1, e2, lost = events(3)
    bus.publish([e1, e2, lost])
    assert await sub.get() == e1
    also_lost = event()
    bus.publish([also_lost])  # there is room again, but it comes after the gap
    assert await sub.get() == e2
    with pytest.raises(SubscriberLagged):
        await sub.get()
    after = event()
    bus.publish([after])
    assert await sub.get() == after


async def test_a_lagging_subscriber_does_not_hold_back_others() -> None:
    bus = EventBus(queue_size=1)
    slow, fast = bus.subscribe(), bus.subscribe()
    for e in events(3):
        bus.publish([e])
        assert await fast.get() == e
    assert slow.lagged and not fast.lagged


async def test_lagging_in_one_run_does_not_affect_another() -> None:
    bus = EventBus(queue_size=1)
    a, b = bus.subscribe("run-a"), bus.subscribe("run-b")
    bus.publish(events(2, "run-a"))
    b_event = event("run-b")
    bus.publish([b_event])
    assert a.lagged and not b.lagged
    assert await drain(b) == [b_event]


async def test_close_unsubscribes() -> None:
    bus = EventBus()
    sub = bus.subscribe("run-a")
    sub.close()
    sub.close()  # idempotent
    bus.publish(events(2))
    assert await drain(sub) == []
    assert len(bus._subs) == 0


async def test_context_manager_closes_on_exit() -> None:
    bus = EventBus()
    other = bus.subscribe()
    with bus.subscribe("run-a") as sub:
        first = event()
        bus.publish([first])
        assert await sub.get() == first
    bus.publish(events(1))
    assert await drain(sub) == []
    assert bus._subs == {other}


async def test_closing_one_subscription_keeps_the_others() -> None:
    bus = EventBus()
    gone, kept = bus.subscribe(), bus.subscribe()
    gone.close()
    e = event()
    bus.publish([e])
    assert await drain(kept) == [e]


async def test_default_queue_size_holds_a_burst() -> None:
    bus = EventBus()
    sub = bus.subscribe()
    burst = events(DEFAULT_SUBSCRIBER_QUEUE)
    bus.publish(burst)
    assert not sub.lagged
    assert await drain(sub) == burst
