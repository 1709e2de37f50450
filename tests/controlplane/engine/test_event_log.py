"""`controlplane.engine.event_log` and `retention`: filtered pages, tails and follows over the
events table, and pruning that never deletes what a sink has not delivered."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from waiting import eventually

from agentflow.clock import ManualClock
from agentflow.vocabulary import EventType
from controlplane.engine import Engine
from controlplane.engine.event_log import event_filter
from controlplane.engine.retention import EventRetention
from controlplane.errors import InvalidArgument
from controlplane.store import EventRecord, EventWhere

pytestmark = [pytest.mark.component, pytest.mark.timeout(30)]


@pytest.fixture
def engine(bare_engine: Engine) -> Engine:
    return bare_engine


async def add(engine: Engine, *events: tuple[EventType, str]) -> None:
    async with engine.core.tx() as tx:
        for type, run_id in events:
            tx.add_event(type, now=engine.core.clock.now(), run_id=run_id, step="s" if run_id else "")


async def collect(stream: AsyncIterator[EventRecord]) -> list[tuple[int, str, str]]:
    return [(e.seq, e.type.value, e.run_id) async for e in stream]


def test_filters_name_types_and_families_and_refuse_unknown_ones() -> None:
    where = event_filter(run_id="r", types=["agent.failed", "workflow.*"])
    assert where == EventWhere(run_id="r", types=(EventType.AGENT_FAILED,), prefixes=("workflow",))
    with pytest.raises(InvalidArgument, match=r"types\[1\]: unknown event type 'agent.bogus'"):
        event_filter(run_id="", types=["agent.failed", "agent.bogus"])
    with pytest.raises(InvalidArgument, match=r"types\[0\]: unknown event type 'bogus.\*'"):
        event_filter(run_id="", types=["bogus.*"])


async def test_a_page_is_filtered_by_run_and_type_in_sequence_order(engine: Engine) -> None:
    await add(engine, (EventType.WORKFLOW_STARTED, "a"), (EventType.AGENT_STARTED, "a"),
              (EventType.AGENT_STARTED, "b"), (EventType.NODE_READY, ""), (EventType.AGENT_FAILED, "a"))  # fmt: skip
    log = engine.events
    assert await collect(log.stream(EventWhere())) == [
        (1, "workflow.started", "a"), (2, "agent.started", "a"), (3, "agent.started", "b"),
        (4, "node.ready", ""), (5, "agent.failed", "a"),
    ]  # fmt: skip
    assert await collect(log.stream(event_filter(run_id="a", types=["agent.*"]))) == [
        (2, "agent.started", "a"), (5, "agent.failed", "a"),
    ]  # fmt: skip
    assert await collect(log.stream(EventWhere(), after_seq=3)) == [(4, "node.ready", ""), (5, "agent.failed", "a")]
    assert await collect(log.stream(event_filter(run_id="", types=["agent.*"]), tail=2)) == [
        (3, "agent.started", "b"), (5, "agent.failed", "a"),
    ]  # fmt: skip
    with pytest.raises(InvalidArgument, match="tail"):
        await collect(log.stream(EventWhere(), tail=-1))


async def test_a_page_longer_than_one_read_is_whole(engine: Engine) -> None:
    await add(engine, *[(EventType.AGENT_STARTED, "a")] * 1203)
    seqs = [seq for seq, _, _ in await collect(engine.events.stream(EventWhere()))]
    assert seqs == list(range(1, 1204))


async def test_follow_sends_the_tail_then_each_new_matching_event(engine: Engine) -> None:
    await add(engine, (EventType.AGENT_STARTED, "a"), (EventType.AGENT_STARTED, "b"))
    got: list[tuple[int, str]] = []

    async def follow() -> None:
        async for e in engine.events.stream(EventWhere(run_id="a"), tail=5, follow=True):
            got.append((e.seq, e.type.value))

    task = asyncio.create_task(follow())
    try:
        await eventually(lambda: got == [(1, "agent.started")], what="the tail")
        await add(engine, (EventType.AGENT_COMPLETED, "b"), (EventType.AGENT_COMPLETED, "a"))
        await eventually(lambda: got == [(1, "agent.started"), (4, "agent.completed")], what="the new event of run a")
        await add(engine, *[(EventType.AGENT_STARTED, "a")] * 1500)  # more than the bus queue holds
        await eventually(lambda: len(got) == 1502, what="every event, even past a lagging doorbell")
        assert [seq for seq, _ in got[2:]] == list(range(5, 1505))
    finally:
        task.cancel()


async def test_retention_prunes_old_events_but_only_those_the_sink_delivered(engine: Engine) -> None:
    clock = engine.core.clock
    assert isinstance(clock, ManualClock)
    await add(engine, *[(EventType.AGENT_STARTED, "a")] * 4)  # seq 1-4, at day 0
    await clock.advance(timedelta(days=8))
    await add(engine, (EventType.AGENT_STARTED, "a"))  # seq 5, at day 8
    async with engine.core.store.transaction() as tx:
        tx.set_delivered("nats", 2)

    with_sink = EventRetention(engine.core, keep=timedelta(days=7), sink="nats")
    assert await with_sink.prune_once() == 2  # 1 and 2: old and delivered; 3 and 4 wait for NATS
    assert [s for s, _, _ in await collect(engine.events.stream(EventWhere()))] == [3, 4, 5]

    without_sink = EventRetention(engine.core, keep=timedelta(days=7), sink=None)
    assert await without_sink.prune_once() == 2
    assert [s for s, _, _ in await collect(engine.events.stream(EventWhere()))] == [5]
    assert await without_sink.prune_once() == 0
