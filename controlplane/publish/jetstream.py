"""The events table as an outbox for NATS JetStream.

Every committed event is published, in sequence order, to the stream of its family (subject:
its type, message id: "<store id>-<seq>"). The sink's position (`event_deliveries`) moves only
after JetStream acknowledged everything before it, so events raised while NATS is down are sent
once it is back, in order. A publish that may have reached the stream before a crash or a lost
connection is sent again with the same message id, which JetStream's duplicate window drops;
and on every (re)start the position is first moved past whatever the streams already hold from
this store, so that no event is stored twice even after a longer outage.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATSClient
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig

from agentflow.backoff import JITTER_MAX, JITTER_MIN, retry_delay
from agentflow.lifecycle import Component
from agentflow.vocabulary import EventType
from controlplane.engine.core import Core
from controlplane.errors import Error as ControlPlaneError
from controlplane.publish.envelope import DUPLICATE_WINDOW, STREAMS, encode, envelope, stream_for
from controlplane.store import EventRecord

log = logging.getLogger(__name__)

NATS_SINK = "nats"  # this sink's row in event_deliveries
BATCH = 256  # events read from the store at a time; the position is saved after each batch
ACK_TIMEOUT_S = 5.0
RETRY_BASE = timedelta(milliseconds=200)
RETRY_CAP = timedelta(seconds=10)
MSG_ID = "Nats-Msg-Id"
TRACE_CACHE_RUNS = 4096

Connect = Callable[..., Awaitable[NATSClient]]
# What a lost or refusing NATS raises; all of them mean "send it again later".
NATS_FAILURES: tuple[type[BaseException], ...] = (nats.errors.Error, TimeoutError, OSError)
# ... and a store that cannot write the position now (e.g. a full disk): also retried.
RETRIED: tuple[type[BaseException], ...] = (*NATS_FAILURES, ControlPlaneError)


class JetStreamPublisher(Component):
    def __init__(self, core: Core, url: str, *, rng: random.Random | None = None, connect: Connect = nats.connect):
        super().__init__()
        self._core = core
        self._url = url
        self._rng = rng or random.Random()
        self._connect = connect
        self.delivered_seq = 0  # every event up to this one is in JetStream
        self.published = 0  # messages JetStream stored (not counting duplicates it dropped)
        self._traces: OrderedDict[str, dict[str, str]] = OrderedDict()  # run id -> its trace, recent runs

    async def _serve(self) -> None:
        async with asyncio.TaskGroup() as group:
            publishing = group.create_task(self._publish_forever(), name="nats-publisher")
            await self.stopping.wait()
            publishing.cancel()

    async def _publish_forever(self) -> None:
        nc = await self._connect(
            servers=[self._url],
            name="agentflow-controlplane",
            allow_reconnect=True,
            max_reconnect_attempts=-1,
            reconnect_time_wait=1,
            connect_timeout=2,
            error_cb=_quiet_error,
            disconnected_cb=_disconnected,
            reconnected_cb=_reconnected,
        )
        try:
            js = nc.jetstream(timeout=ACK_TIMEOUT_S)
            await self._retrying("create the streams", lambda: ensure_streams(js))
            await self._retrying("resume from the streams", lambda: self._resume(js))
            with self._core.bus.subscribe() as doorbell:
                while True:
                    batch = self._core.store.read.events_after(self.delivered_seq, limit=BATCH)
                    if not batch:
                        await doorbell.ring()
                        continue
                    for event in batch:
                        await self._retrying("publish an event", functools.partial(self._publish, js, event))
                    await self._save_position(batch[-1].seq)
        finally:
            await nc.close()

    async def _resume(self, js: JetStreamContext) -> None:
        read = self._core.store.read
        saved = read.delivered_seq(NATS_SINK)
        in_streams = await last_published_seq(js, self._core.store_id)
        self.delivered_seq = max(saved, in_streams)
        if in_streams > saved:
            log.info("events reached NATS past the saved position", extra={"saved": saved, "in_streams": in_streams})
            await self._save_position(in_streams)

    async def _publish(self, js: JetStreamContext, event: EventRecord) -> None:
        store_id = self._core.store_id
        if event.type is EventType.WORKFLOW_STARTED:  # a retry begins a new workflow.execute span
            self._traces.pop(event.run_id, None)
        body = encode(envelope(event, store_id=store_id, trace=await self._trace_of(event.run_id)))
        stream = stream_for(event.type).name
        ack = await js.publish(event.type.value, body, stream=stream, headers={MSG_ID: f"{store_id}-{event.seq}"})
        if not ack.duplicate:
            self.published += 1
        self.delivered_seq = event.seq

    async def _trace_of(self, run_id: str) -> dict[str, str]:
        """The run's trace and workflow.execute span ({} for events of no run)."""
        if not run_id:
            return {}
        if (known := self._traces.get(run_id)) is not None:
            self._traces.move_to_end(run_id)
            return known
        run = self._core.store.read.run(run_id)
        trace = {} if run is None or run.trace is None else {
            "trace_id": run.trace.span.trace_id, "span_id": run.trace.span.span_id,
        }  # fmt: skip
        self._traces[run_id] = trace
        if len(self._traces) > TRACE_CACHE_RUNS:
            self._traces.popitem(last=False)
        return trace

    async def _save_position(self, seq: int) -> None:
        async def save() -> None:
            async with self._core.store.transaction() as tx:
                tx.set_delivered(NATS_SINK, seq)

        await self._retrying("save the NATS position", save)

    async def _retrying(self, what: str, attempt: Callable[[], Awaitable[Any]]) -> Any:
        """`attempt()` until it succeeds, backing off after each NATS or store failure."""
        failures = 0
        while True:
            try:
                result = await attempt()
            except RETRIED as exc:
                failures += 1
                if failures == 1:
                    log.warning(f"cannot {what} yet; retrying", extra={"error": repr(exc)})
                jitter = self._rng.uniform(JITTER_MIN, JITTER_MAX)
                delay = retry_delay(failures=failures, base=RETRY_BASE, cap=RETRY_CAP, jitter=jitter)
                await self._core.clock.sleep(delay)
                continue
            if failures:
                log.info(f"could {what} again", extra={"failures": failures})
            return result


async def ensure_streams(js: JetStreamContext) -> None:
    """Create the streams that do not exist; one that does is left as its operator set it."""
    for spec in STREAMS:
        try:
            await js.stream_info(spec.name)
            continue
        except nats.js.errors.NotFoundError:
            pass
        await js.add_stream(
            StreamConfig(
                name=spec.name,
                subjects=list(spec.subjects),
                storage=StorageType.FILE,
                max_age=spec.max_age.total_seconds(),
                duplicate_window=DUPLICATE_WINDOW.total_seconds(),
            )
        )
        log.info("created a JetStream stream", extra={"stream": spec.name, "subjects": list(spec.subjects)})


async def last_published_seq(js: JetStreamContext, store_id: str) -> int:
    """The highest event sequence of this store found at the end of any of the streams (0: none).

    Events are published one at a time in order, so everything before it was acknowledged."""
    prefix = f"{store_id}-"
    highest = 0
    for spec in STREAMS:
        info = await js.stream_info(spec.name)
        last = info.state.last_seq
        if not last or not info.state.messages:
            continue
        try:
            message = await js.get_msg(spec.name, seq=last)
        except nats.js.errors.NotFoundError:
            continue
        msg_id = (message.headers or {}).get(MSG_ID, "")
        if msg_id.startswith(prefix) and msg_id[len(prefix) :].isdigit():
            highest = max(highest, int(msg_id[len(prefix) :]))
    return highest


async def _quiet_error(exc: Exception) -> None:
    log.debug("NATS connection error", extra={"error": repr(exc)})


async def _disconnected() -> None:
    log.warning("NATS disconnected; events wait in the store until it is back")


async def _reconnected() -> None:
    log.info("NATS reconnected")
