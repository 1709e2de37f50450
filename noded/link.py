"""The node's connection to the control plane: register, one Connect stream, reconnect.

The node always dials out. Each stream starts with a Hello naming the attempts the node still
runs and the results it holds, then resends those results; heartbeats follow at the interval
the control plane asked for. When the stream breaks, the link reconnects with capped, jittered
backoff; results keep piling up in the outbox meanwhile and are sent on reconnect.

Messages for the control plane wait in a bounded queue (`SEND_QUEUE_SIZE`). When it is full the
control plane has stopped reading: the link drops the stream and reconnects, and the hello of
the next stream resends every result not yet acknowledged, so a full queue loses none (only
`Started` notices and heartbeats, which the next stream makes up for).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Protocol

import grpc

from agentflow.attempt import AttemptKey
from agentflow.backoff import JITTER_MAX, JITTER_MIN, retry_delay
from agentflow.clock import Clock, SystemClock, wait
from agentflow.lifecycle import Component
from agentflow.rpc import (
    AlreadyExists,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    RpcError,
    Unauthenticated,
    rpc_errors,
)
from agentflow.stream_batch import groups, take_waiting
from agentflow.telemetry.tracing import current_headers
from agentflow.transport import BATCHES_METADATA, NODE_ID_METADATA
from agentflow.v1 import node_pb2, node_pb2_grpc
from agentflow.wire import InvalidField
from noded import convert
from noded.errors import RegistrationError
from noded.messages import (
    Ack,
    Assignment,
    Cancel,
    DrainNotice,
    Heartbeat,
    Hello,
    Journal,
    JournalAck,
    JournalEntry,
    Registration,
    StepResult,
    ToControlPlane,
)
from noded.state import NodeState

log = logging.getLogger(__name__)

RECONNECT_MIN = timedelta(milliseconds=200)
RECONNECT_MAX = timedelta(seconds=5)
RPC_TIMEOUT_S = 10.0
DEFAULT_HEARTBEAT_INTERVAL = timedelta(seconds=2)
SEND_QUEUE_SIZE = 4096
JOURNAL_BATCH = 64  # journal entries per message when a new stream resends them
# A heartbeat is skipped while this many messages wait to be written: the stream is behind,
# and results (which are never dropped) matter more than one more liveness signal.
HEARTBEAT_SKIP_BACKLOG = 1024


class LinkHandlers(Protocol):
    """What the link asks of, and tells, the step runner."""

    def in_flight(self) -> list[AttemptKey]: ...
    def unacked(self) -> list[StepResult]: ...
    def unacked_journal(self) -> list[JournalEntry]: ...
    def running_count(self) -> int: ...
    def idle_workers(self) -> int: ...
    def on_assign(self, assignment: Assignment) -> None: ...
    def on_cancel(self, key: AttemptKey) -> None: ...
    async def on_ack(self, ack: Ack) -> None: ...
    def on_drain(self, notice: DrainNotice) -> None: ...
    async def on_journal_ack(self, ack: JournalAck) -> None: ...


class StreamBehind(ConnectionError):
    """The send queue filled up: the control plane stopped reading this stream."""


class ControlPlaneLink(Component):
    def __init__(
        self,
        channel: grpc.aio.Channel,
        *,
        registration: Registration,
        state: NodeState,
        handlers: LinkHandlers,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        on_connection: Callable[[bool], None] | None = None,
        on_heartbeat: Callable[[], None] | None = None,
    ) -> None:
        super().__init__()
        self._stub = node_pb2_grpc.NodeGatewayStub(channel)
        self._registration = registration
        self._state = state
        self._handlers = handlers
        self._clock = clock or SystemClock()
        self._rng = rng or random.Random()
        self._on_connection = on_connection or (lambda up: None)
        self._on_heartbeat = on_heartbeat or (lambda: None)
        self._outgoing: asyncio.Queue[ToControlPlane] | None = None
        self._behind = asyncio.Event()  # set when the live stream's queue overflowed
        self._heartbeat_interval = DEFAULT_HEARTBEAT_INTERVAL
        self.node_id: str | None = None
        self.connected = asyncio.Event()
        self.redial_at: datetime | None = None  # while waiting to dial again after a failure
        self._redial_scheduled = asyncio.Event()
        # Whether the live stream's control plane reads batch messages (`agentflow.stream_batch`):
        # its Connect answer's initial metadata says; until then, and to one that does not, the
        # link sends messages one by one.
        self.peer_reads_batches = False

    async def wait_for_redial(self) -> datetime:
        """Wait until the link is backing off before a redial; answer when it dials (for tests
        and status)."""
        await self._redial_scheduled.wait()
        assert self.redial_at is not None
        return self.redial_at

    # sending ---------------------------------------------------------------------------------

    def send(self, message: ToControlPlane) -> bool:
        """Queue a message on the live stream; False (not sent) while disconnected or behind."""
        queue = self._outgoing
        if queue is None or self._behind.is_set():
            return False
        try:
            queue.put_nowait(message)
        except asyncio.QueueFull:
            log.warning("the control plane stopped reading; reconnecting", extra={"queued": queue.qsize()})
            self._behind.set()
            return False
        return True

    def fetch_module(self, digest: str) -> grpc.aio.UnaryStreamCall:
        """The module's chunks; the call continues the current trace (the step that needs it)."""
        metadata = tuple(current_headers().items())
        return self._stub.FetchModule(node_pb2.FetchModuleRequest(digest=digest), metadata=metadata or None)

    # lifecycle -------------------------------------------------------------------------------

    async def _serve(self) -> None:
        """Keep a stream up until shutdown."""
        failures = 0
        while not self.stopping.is_set():
            try:
                with rpc_errors():
                    if self.node_id is None:
                        await self._register()
                    await self._session()
                failures = 0
            except RegistrationError:
                raise
            except _Stopped:
                pass
            except (NotFound, Unauthenticated):
                log.warning("control plane does not know this node; registering again")
                self.node_id = None
            except RpcError as exc:
                log.warning("control plane link lost", extra={"code": exc.code.name, "detail": exc.details})
            except (ConnectionError, OSError, asyncio.InvalidStateError, InvalidField) as exc:
                # InvalidStateError: the control plane ended the stream while we were writing to it;
                # InvalidField: it sent something this node cannot read (the stream is dropped)
                log.warning("control plane link lost", extra={"error": str(exc) or type(exc).__name__})
            finally:
                self._outgoing = None
                if self.connected.is_set():
                    self.connected.clear()
                    self._on_connection(False)
            if self.stopping.is_set():
                break
            failures += 1
            delay = retry_delay(
                failures=failures,
                base=RECONNECT_MIN,
                cap=RECONNECT_MAX,
                jitter=self._rng.uniform(JITTER_MIN, JITTER_MAX),
            )
            self.redial_at = self._clock.now() + delay
            self._redial_scheduled.set()
            try:
                await wait(self.stopping, self.redial_at, clock=self._clock)
            finally:
                self.redial_at = None
                self._redial_scheduled.clear()

    async def _register(self) -> None:
        registration = dataclasses.replace(self._registration, node_id=await self._state.node_id() or "")
        try:
            with rpc_errors():
                response = await self._stub.Register(convert.registration(registration), timeout=RPC_TIMEOUT_S)
        except (InvalidArgument, AlreadyExists, PermissionDenied, Unauthenticated) as exc:  # retrying won't help
            raise RegistrationError(f"control plane refused registration ({exc.code.name}): {exc.details}") from exc
        registered = convert.registered(response)
        self.node_id = registered.node_id
        await self._state.set_node_id(registered.node_id)
        self._heartbeat_interval = registered.heartbeat_interval or self._heartbeat_interval
        log.info("registered", extra={"node_id": registered.node_id, "node": registration.name})

    async def _session(self) -> None:
        assert self.node_id is not None
        queue: asyncio.Queue[ToControlPlane] = asyncio.Queue(maxsize=SEND_QUEUE_SIZE)
        self._behind.clear()
        # Open the queue before taking the snapshot: a result finishing meanwhile is then
        # queued or in the snapshot (maybe both; the control plane treats repeats as no-ops).
        self._outgoing = queue
        in_flight = self._handlers.in_flight()
        unacked = self._handlers.unacked()
        journal = self._handlers.unacked_journal()

        self.peer_reads_batches = False  # until the control plane's initial metadata says so

        async def outgoing() -> AsyncIterator[node_pb2.NodeMessage]:
            yield convert.to_pb(Hello(in_flight=tuple(in_flight), unacked=tuple(r.key for r in unacked)))
            for result in unacked:
                yield convert.to_pb(result)
            for i in range(0, len(journal), JOURNAL_BATCH):
                yield convert.to_pb(Journal(entries=tuple(journal[i : i + JOURNAL_BATCH])))
            while True:
                first = await queue.get()
                waiting = take_waiting(queue, first) if self.peer_reads_batches else [first]
                for group in groups([convert.to_pb(m) for m in waiting]):
                    if len(group) == 1:
                        yield group[0]
                    else:
                        yield node_pb2.NodeMessage(batch=node_pb2.NodeMessages(messages=group))
                if any(isinstance(m, Heartbeat) for m in waiting):  # gRPC asks for the next one once this is written
                    self._on_heartbeat()

        async def learn_batches(call: grpc.aio.StreamStreamCall) -> None:
            metadata = dict(await call.initial_metadata() or ())
            self.peer_reads_batches = metadata.get(BATCHES_METADATA) == "1"

        # gRPC writes from the iterator, so a stream the control plane ends (say NOT_FOUND for a
        # node it forgot) reaches the reader with that status rather than as a failed write.
        call = self._stub.Connect(outgoing(), metadata=((NODE_ID_METADATA, self.node_id), (BATCHES_METADATA, "1")))
        self.connected.set()
        self._on_connection(True)
        log.info("connected to control plane", extra={"in_flight": len(in_flight), "unacked": len(unacked)})
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._heartbeat_loop(queue), name="link-heartbeat")
                group.create_task(self._read_loop(call), name="link-reader")
                group.create_task(learn_batches(call), name="link-batches")
                group.create_task(self._until_stopped_or_behind(), name="link-watch")
        except* (ConnectionError, OSError, asyncio.InvalidStateError, InvalidField, grpc.RpcError) as group:
            raise group.exceptions[0] from None
        finally:
            call.cancel()

    async def _until_stopped_or_behind(self) -> None:
        stopped = asyncio.ensure_future(self.stopping.wait())
        behind = asyncio.ensure_future(self._behind.wait())
        try:
            await asyncio.wait({stopped, behind}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            behind.cancel()
        if self._behind.is_set():
            raise StreamBehind("the control plane stopped reading this stream")
        raise _Stopped()

    async def _heartbeat_loop(self, queue: asyncio.Queue[ToControlPlane]) -> None:
        handlers = self._handlers
        while True:
            if queue.qsize() < HEARTBEAT_SKIP_BACKLOG:
                queue.put_nowait(Heartbeat(running=handlers.running_count(), idle_workers=handlers.idle_workers()))
            await self._clock.sleep(self._heartbeat_interval)

    async def _read_loop(self, call: grpc.aio.StreamStreamCall) -> None:
        handlers = self._handlers
        async for message in call:
            batch = message.WhichOneof("kind") == "batch"
            for each in message.batch.messages if batch else (message,):
                if batch and each.WhichOneof("kind") == "batch":
                    raise InvalidField("batch: a batch must not hold a batch")
                match convert.from_pb(each):
                    case Assignment() as assignment:
                        handlers.on_assign(assignment)
                    case Cancel(key=key):
                        handlers.on_cancel(key)
                    case Ack() as ack:
                        await handlers.on_ack(ack)
                    case DrainNotice() as notice:
                        handlers.on_drain(notice)
                    case JournalAck() as journal_ack:
                        await handlers.on_journal_ack(journal_ack)
                    case None:
                        log.debug("ignoring a message this node does not know", extra={"kind": each.WhichOneof("kind")})
        raise ConnectionError("control plane closed the stream")


class _Stopped(ConnectionError):
    """The link is shutting down: the session ends (not an error)."""
