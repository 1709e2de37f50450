"""The node's connection to the control plane: register, one Connect stream, reconnect.

The node always dials out. Each stream starts with a Hello naming the attempts the node still
runs and the results it holds, then resends those results; heartbeats follow at the interval
the control plane asked for. When the stream breaks, the link reconnects with capped,
jittered backoff; results keep piling up in the outbox meanwhile and are sent on reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from agentflow.transport import NODE_ID_METADATA
from agentflow.v1 import node_pb2, node_pb2_grpc, types_pb2
from noded.errors import RegistrationError
from noded.state import NodeState, ResultKey

log = logging.getLogger(__name__)

RECONNECT_MIN_S = 0.2
RECONNECT_MAX_S = 5.0
RPC_TIMEOUT_S = 10.0
# A heartbeat is skipped while this many messages wait to be written: the stream is behind,
# and results (which are never dropped) matter more than one more liveness signal.
HEARTBEAT_SKIP_BACKLOG = 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class Registration:
    name: str
    labels: dict[str, str]
    capacity: types_pb2.Resources
    isolation: types_pb2.Isolation
    version: str


class LinkHandlers(Protocol):
    """What the link calls for messages from the control plane (implemented by the runner)."""

    def in_flight(self) -> list[ResultKey]: ...
    def unacked(self) -> list[tuple[ResultKey, bytes]]: ...
    def running_count(self) -> int: ...
    def on_assign(self, assignment: types_pb2.Assignment) -> None: ...
    def on_cancel(self, key: ResultKey) -> None: ...
    async def on_ack(self, key: ResultKey, stale: bool) -> None: ...
    def on_drain(self, draining: bool, deadline: datetime | None) -> None: ...


class ControlPlaneLink:
    def __init__(
        self,
        channel: grpc.aio.Channel,
        *,
        registration: Registration,
        state: NodeState,
        handlers: LinkHandlers,
        rng: random.Random | None = None,
        on_connection: Callable[[bool], None] | None = None,
    ) -> None:
        self._stub = node_pb2_grpc.NodeGatewayStub(channel)
        self._registration = registration
        self._state = state
        self._handlers = handlers
        self._rng = rng or random.Random()
        self._on_connection = on_connection or (lambda up: None)
        self._outgoing: asyncio.Queue[node_pb2.NodeMessage] | None = None
        self._heartbeat_interval = timedelta(seconds=2)
        self.node_id: str | None = None
        self.connected = asyncio.Event()

    # sending -------------------------------------------------------------------------------

    def send(self, message: node_pb2.NodeMessage) -> bool:
        """Queue a message on the live stream; False (dropped) while disconnected.

        The queue is unbounded: what it holds is bounded by the steps the node runs, and a
        dropped result would sit in the outbox until the next reconnect.
        """
        queue = self._outgoing
        if queue is None:
            return False
        queue.put_nowait(message)
        return True

    def fetch_module(self, digest: str) -> grpc.aio.UnaryStreamCall:
        return self._stub.FetchModule(node_pb2.FetchModuleRequest(digest=digest))

    # lifecycle -----------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Keep a stream up until `stop` is set."""
        failures = 0
        while not stop.is_set():
            try:
                if self.node_id is None:
                    await self._register()
                await self._session(stop)
                failures = 0
            except RegistrationError:
                raise
            except grpc.aio.AioRpcError as exc:
                if exc.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.UNAUTHENTICATED):
                    log.warning("control plane does not know this node; registering again")
                    self.node_id = None
                else:
                    log.warning("control plane link lost", extra={"code": exc.code().name, "detail": exc.details()})
            except (ConnectionError, OSError, asyncio.InvalidStateError) as exc:
                # InvalidStateError: the control plane ended the stream while we were writing to it
                log.warning("control plane link lost", extra={"error": str(exc) or type(exc).__name__})
            finally:
                self._outgoing = None
                if self.connected.is_set():
                    self.connected.clear()
                    self._on_connection(False)
            if stop.is_set():
                break
            failures += 1
            delay = min(RECONNECT_MAX_S, RECONNECT_MIN_S * 2 ** min(failures, 8)) * self._rng.uniform(0.5, 1.0)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await stop.wait()

    async def _register(self) -> None:
        reg = self._registration
        request = node_pb2.RegisterRequest(
            name=reg.name,
            node_id=await self._state.node_id() or "",
            labels=reg.labels,
            capacity=reg.capacity,
            isolation=reg.isolation,
            version=reg.version,
        )
        try:
            response = await self._stub.Register(request, timeout=RPC_TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            if exc.code() is grpc.StatusCode.INVALID_ARGUMENT:
                raise RegistrationError(f"control plane refused registration: {exc.details()}") from exc
            raise
        self.node_id = response.node_id
        await self._state.set_node_id(response.node_id)
        self._heartbeat_interval = response.heartbeat_interval.ToTimedelta() or self._heartbeat_interval
        log.info("registered", extra={"node_id": response.node_id, "node": reg.name})

    async def _session(self, stop: asyncio.Event) -> None:
        assert self.node_id is not None
        call = self._stub.Connect(metadata=((NODE_ID_METADATA, self.node_id),))
        queue: asyncio.Queue[node_pb2.NodeMessage] = asyncio.Queue()
        # Open the queue before taking the snapshot: a result finishing meanwhile is then
        # queued or in the snapshot (maybe both; the control plane treats repeats as no-ops).
        self._outgoing = queue
        in_flight = self._handlers.in_flight()
        unacked = self._handlers.unacked()
        hello = node_pb2.Hello(
            in_flight=[_ref(k) for k in in_flight],
            unacked=[_ref(k) for k, _ in unacked],
        )
        await call.write(node_pb2.NodeMessage(hello=hello))
        for _, blob in unacked:
            await call.write(node_pb2.NodeMessage(result=types_pb2.StepResult.FromString(blob)))
        self.connected.set()
        self._on_connection(True)
        log.info("connected to control plane", extra={"in_flight": len(in_flight), "unacked": len(unacked)})

        tasks = [
            asyncio.create_task(self._write_loop(call, queue), name="link-writer"),
            asyncio.create_task(self._heartbeat_loop(queue), name="link-heartbeat"),
            asyncio.create_task(self._read_loop(call), name="link-reader"),
            asyncio.create_task(stop.wait(), name="link-stop"),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            call.cancel()

    async def _write_loop(self, call: grpc.aio.StreamStreamCall, queue: asyncio.Queue[node_pb2.NodeMessage]) -> None:
        while True:
            await call.write(await queue.get())

    async def _heartbeat_loop(self, queue: asyncio.Queue[node_pb2.NodeMessage]) -> None:
        while True:
            now = Timestamp()
            now.GetCurrentTime()
            beat = node_pb2.Heartbeat(time=now, running=self._handlers.running_count())
            if queue.qsize() < HEARTBEAT_SKIP_BACKLOG:
                queue.put_nowait(node_pb2.NodeMessage(heartbeat=beat))
            await asyncio.sleep(self._heartbeat_interval.total_seconds())

    async def _read_loop(self, call: grpc.aio.StreamStreamCall) -> None:
        handlers = self._handlers
        while True:
            message = await call.read()
            if message is grpc.aio.EOF:
                raise ConnectionError("control plane closed the stream")
            kind = message.WhichOneof("kind")
            if kind == "assign":
                handlers.on_assign(message.assign)
            elif kind == "cancel":
                handlers.on_cancel(_key(message.cancel))
            elif kind == "ack":
                await handlers.on_ack(_key(message.ack.attempt), message.ack.stale)
            elif kind == "drain":
                drain = message.drain
                deadline = drain.deadline.ToDatetime(tzinfo=UTC) if drain.HasField("deadline") else None
                handlers.on_drain(drain.draining, deadline)


def _ref(key: ResultKey) -> node_pb2.AttemptRef:
    return node_pb2.AttemptRef(run_id=key.run_id, step=key.step, attempt=key.attempt)


def _key(ref: node_pb2.AttemptRef) -> ResultKey:
    return ResultKey(ref.run_id, ref.step, ref.attempt)
