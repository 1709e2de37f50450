"""`controlplane.publish`: the events table published to a real `nats-server -js`, in order,
once each, across NATS outages and publisher restarts."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import nats
import pytest
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig
from processes import NatsServer
from waiting import eventually

from agentflow.clock import ManualClock
from agentflow.vocabulary import EventType
from controlplane.engine import Engine
from controlplane.publish import NATS_SINK, STREAMS, JetStreamPublisher, stream_for
from controlplane.publish.jetstream import MSG_ID, last_published_seq

pytestmark = [pytest.mark.component, pytest.mark.timeout(90)]

WITHIN_S = 30.0  # a publisher backs off up to 10 s while NATS is away


@pytest.fixture
def engine(bare_engine: Engine) -> Engine:
    return bare_engine


async def add_events(engine: Engine, count: int, *, run_id: str = "run-1") -> None:
    """`count` events of a run, cycling through types of every stream."""
    types = [EventType.AGENT_STARTED, EventType.AGENT_COMPLETED, EventType.RESOURCE_LIMIT_HIT, EventType.NODE_READY]
    async with engine.core.tx() as tx:
        for i in range(count):
            type = types[i % len(types)]
            node = "alpha" if type.about_a_node else ""
            tx.add_event(type, now=engine.core.clock.now(), run_id="" if node else run_id,
                               step=f"s{i}", node=node, data={"i": i})  # fmt: skip


async def stream_messages(js: JetStreamContext, stream: str) -> list[nats.aio.msg.Msg]:
    """Every message of `stream`, through a pull consumer of its own."""
    info = await js.stream_info(stream)
    if info.state.messages == 0:
        return []
    name = f"reader{info.state.last_seq}"
    await js.add_consumer(stream, ConsumerConfig(durable_name=name, ack_policy=AckPolicy.EXPLICIT))
    sub = await js.pull_subscribe_bind(name, stream=stream)
    got: list[nats.aio.msg.Msg] = []
    while len(got) < info.state.messages:
        for msg in await sub.fetch(info.state.messages - len(got), timeout=5):
            await msg.ack()
            got.append(msg)
    await sub.unsubscribe()
    await js.delete_consumer(stream, name)
    return got


async def all_seqs(js: JetStreamContext, store_id: str) -> dict[str, list[int]]:
    seqs: dict[str, list[int]] = {}
    for spec in STREAMS:
        messages = await stream_messages(js, spec.name)
        for msg in messages:
            assert msg.headers is not None and msg.headers[MSG_ID].startswith(f"{store_id}-")
        seqs[spec.name] = [int(m.headers[MSG_ID].rpartition("-")[2]) for m in messages]  # type: ignore[index]
    return seqs


@pytest.fixture
async def js(nats_server: NatsServer) -> AsyncIterator[JetStreamContext]:
    nc = await nats.connect(nats_server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    try:
        yield nc.jetstream()
    finally:
        await nc.close()


def test_every_event_type_has_exactly_one_stream() -> None:
    for type in EventType:
        assert sum(type.value.partition(".")[0] in s.families for s in STREAMS) == 1, type
        assert stream_for(type).name in {"WORKFLOWS", "METRICS", "NODES"}
    assert stream_for(EventType.AGENT_FAILED).name == "WORKFLOWS"
    assert stream_for(EventType.COST_THRESHOLD_MET).name == "METRICS"


async def test_events_reach_their_streams_in_order_with_their_ids(
    engine: Engine, nats_server: NatsServer, js: JetStreamContext
) -> None:
    await add_events(engine, 10)
    async with JetStreamPublisher(engine.core, nats_server.url) as publisher:
        assert isinstance(publisher, JetStreamPublisher)
        await eventually(lambda: publisher.delivered_seq == 10, within=WITHIN_S, what="10 events published")
        await add_events(engine, 6)  # published as they commit
        await eventually(lambda: publisher.delivered_seq == 16, within=WITHIN_S, what="16 events published")

    seqs = await all_seqs(js, engine.core.store_id)
    assert sorted(seqs["WORKFLOWS"] + seqs["METRICS"] + seqs["NODES"]) == list(range(1, 17))
    for stream in seqs.values():
        assert stream == sorted(stream)
    assert seqs["METRICS"] == [3, 7, 13]  # the second batch starts the cycle of types again
    assert seqs["NODES"] == [4, 8, 14]
    assert engine.core.store.read.delivered_seq(NATS_SINK) == 16
    first = (await stream_messages(js, "WORKFLOWS"))[0]
    body = json.loads(first.data)
    assert first.subject == "agent.started"
    assert body["id"] == f"{engine.core.store_id}-1" and body["type"] == "agent.started"
    assert body["subject"] == "run/run-1/step/s0" and body["data"] == {"i": 0}
    assert set(body) >= {"id", "type", "source", "subject", "timestamp", "data", "trace"}


async def test_events_raised_while_nats_is_down_arrive_once_it_is_back(
    engine: Engine, nats_server: NatsServer, js: JetStreamContext
) -> None:
    async with JetStreamPublisher(engine.core, nats_server.url) as publisher:
        assert isinstance(publisher, JetStreamPublisher)
        await add_events(engine, 4)
        await eventually(lambda: publisher.delivered_seq == 4, within=WITHIN_S, what="first events published")
        nats_server.kill()
        await add_events(engine, 8)
        await asyncio.sleep(0)  # the publisher tries, and fails, while the server is gone
        assert publisher.delivered_seq < 12
        nats_server.start()
        clock = engine.core.clock
        assert isinstance(clock, ManualClock)

        async def backlog_published() -> bool:  # the publisher's backoff runs on the engine's clock
            await clock.advance(timedelta(seconds=1))
            return publisher.delivered_seq == 12

        await eventually(backlog_published, within=WITHIN_S, what="the backlog published")

    seqs = await all_seqs(js, engine.core.store_id)
    published = sorted(seqs["WORKFLOWS"] + seqs["METRICS"] + seqs["NODES"])
    assert published == list(range(1, 13)), "every event once, none twice"


async def test_a_restarted_publisher_resumes_past_what_the_streams_already_hold(
    engine: Engine, nats_server: NatsServer, js: JetStreamContext, tmp_path: Path
) -> None:
    async with JetStreamPublisher(engine.core, nats_server.url) as publisher:
        assert isinstance(publisher, JetStreamPublisher)
        await add_events(engine, 9)
        await eventually(lambda: publisher.delivered_seq == 9, within=WITHIN_S, what="9 events published")
    # As if it had crashed after publishing, before saving its position.
    with sqlite3.connect(engine.core.store.path) as db:
        db.execute("UPDATE event_deliveries SET seq = 2 WHERE sink = ?", (NATS_SINK,))
    assert engine.core.store.read.delivered_seq(NATS_SINK) == 2
    assert await last_published_seq(js, engine.core.store_id) == 9

    async with JetStreamPublisher(engine.core, nats_server.url) as again:
        assert isinstance(again, JetStreamPublisher)
        await eventually(lambda: again.delivered_seq == 9, within=WITHIN_S, what="resumed at 9")
        await add_events(engine, 1)
        await eventually(lambda: again.delivered_seq == 10, within=WITHIN_S, what="the 10th published")
        assert again.published == 1  # nothing sent twice: it started after event 9
    seqs = await all_seqs(js, engine.core.store_id)
    assert sorted(seqs["WORKFLOWS"] + seqs["METRICS"] + seqs["NODES"]) == list(range(1, 11))


async def test_an_existing_stream_is_left_as_its_operator_configured_it(
    engine: Engine, nats_server: NatsServer, js: JetStreamContext
) -> None:
    await js.add_stream(StreamConfig(name="WORKFLOWS", subjects=["workflow.*", "agent.*"], max_age=60.0))
    await add_events(engine, 2)
    async with JetStreamPublisher(engine.core, nats_server.url) as publisher:
        assert isinstance(publisher, JetStreamPublisher)
        await eventually(lambda: publisher.delivered_seq == 2, within=WITHIN_S, what="2 events published")
    info = await js.stream_info("WORKFLOWS")
    assert info.config.max_age == 60.0
    assert info.state.messages == 2
