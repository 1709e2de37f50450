"""A scripted control plane for noded's component tests: the real `NodeGateway` service over a
real gRPC channel, whose answers the test chooses (register or refuse, hold a stream, send
control messages, end a stream with a status), recording everything the node sends.

The pieces of the node it talks to are fakes with the runner's face (`FakeHandlers`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc

from agentflow.attempt import AttemptKey
from agentflow.transport import BATCHES_METADATA, NODE_ID_METADATA
from agentflow.v1 import node_pb2, node_pb2_grpc
from noded.drain import DrainState
from noded.messages import Ack, Assignment, DrainNotice, JournalAck, JournalEntry, StepResult
from noded.runner import RunningStep

WAIT_S = 5.0


@dataclass(frozen=True, slots=True)
class _End:
    code: grpc.StatusCode | None
    details: str


class FakeStream:
    """One Connect stream as the control plane sees it."""

    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        self.received: list[node_pb2.NodeMessage] = []  # batches taken apart, in order
        self.batches: list[int] = []  # the size of each batch message the node sent
        self.node_reads_batches = False  # the node's Connect metadata said so
        self._inbox: asyncio.Queue[node_pb2.NodeMessage] = asyncio.Queue()
        self._held: list[node_pb2.NodeMessage] = []
        self.outgoing: asyncio.Queue[node_pb2.ControlMessage | _End] = asyncio.Queue()
        self.ended = asyncio.Event()  # the node's side of the stream is over

    def deliver(self, message: node_pb2.NodeMessage) -> None:
        if message.WhichOneof("kind") == "batch":
            self.batches.append(len(message.batch.messages))
            for each in message.batch.messages:
                self.deliver(each)
            return
        self.received.append(message)
        self._inbox.put_nowait(message)

    def send(self, message: node_pb2.ControlMessage) -> None:
        self.outgoing.put_nowait(message)

    def end(self, code: grpc.StatusCode | None = None, details: str = "") -> None:
        """End the stream: OK, or with a status."""
        self.outgoing.put_nowait(_End(code, details))

    async def expect(self, kind: str, *, within: float = WAIT_S) -> Any:
        """The next message of `kind` ("hello", "heartbeat", "result", ...); others stay held."""
        for i, message in enumerate(self._held):
            if message.WhichOneof("kind") == kind:
                del self._held[i]
                return getattr(message, kind)
        try:
            async with asyncio.timeout(within):
                while True:
                    message = await self._inbox.get()
                    if message.WhichOneof("kind") == kind:
                        return getattr(message, kind)
                    self._held.append(message)
        except TimeoutError:
            raise AssertionError(
                f"no {kind} within {within}s (held: {[m.WhichOneof('kind') for m in self._held]})"
            ) from None

    def kinds(self) -> list[str]:
        return [str(m.WhichOneof("kind")) for m in self.received]


class FakeGateway(node_pb2_grpc.NodeGatewayServicer):
    def __init__(self) -> None:
        self.heartbeat_interval = timedelta(seconds=1)
        self.registrations: list[node_pb2.RegisterRequest] = []
        self.refuse_register: tuple[grpc.StatusCode, str] | None = None
        self.refuse_connect: list[tuple[grpc.StatusCode, str]] = []  # one per Connect, in order
        self.modules: dict[str, bytes] = {}
        self.known: set[str] = set()  # node ids Register answered; Connect refuses others (NOT_FOUND)
        self.forget_registrations = 0  # this many registrations are forgotten at once
        self.streams: list[FakeStream] = []
        self.reads_batches = False  # say so in the initial metadata of every stream
        self._opened: asyncio.Queue[FakeStream] = asyncio.Queue()

    async def Register(
        self, request: node_pb2.RegisterRequest, context: grpc.aio.ServicerContext
    ) -> node_pb2.RegisterResponse:
        self.registrations.append(request)
        if self.refuse_register is not None:
            await context.abort(*self.refuse_register)
        response = node_pb2.RegisterResponse(node_id=request.node_id or f"node-{len(self.registrations)}")
        if self.forget_registrations:
            self.forget_registrations -= 1
        else:
            self.known.add(response.node_id)
        response.heartbeat_interval.FromTimedelta(self.heartbeat_interval)
        return response

    async def Connect(
        self, request_iterator: AsyncIterator[node_pb2.NodeMessage], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[node_pb2.ControlMessage]:
        if self.refuse_connect:
            await context.abort(*self.refuse_connect.pop(0))
        node_id = dict(context.invocation_metadata() or ()).get(NODE_ID_METADATA, "")
        if node_id not in self.known:
            await context.abort(
                grpc.StatusCode.NOT_FOUND, f'node id "{node_id}" is not registered; call Register first'
            )
        stream = FakeStream(node_id)
        stream.node_reads_batches = dict(context.invocation_metadata() or ()).get(BATCHES_METADATA) == "1"
        if self.reads_batches:
            await context.send_initial_metadata(((BATCHES_METADATA, "1"),))
        self.streams.append(stream)
        self._opened.put_nowait(stream)

        async def read() -> None:
            try:
                async for message in request_iterator:
                    stream.deliver(message)
            finally:
                stream.ended.set()

        reader = asyncio.create_task(read())
        try:
            while True:
                item = await stream.outgoing.get()
                if isinstance(item, _End):
                    if item.code is not None:
                        await context.abort(item.code, item.details)
                    return
                yield item
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)

    async def FetchModule(
        self, request: node_pb2.FetchModuleRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[node_pb2.ModuleChunk]:
        data = self.modules.get(request.digest)
        if data is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"module {request.digest} is not stored")
            return
        yield node_pb2.ModuleChunk(data=data, total_size=len(data))

    async def stream(self, *, within: float = WAIT_S) -> FakeStream:
        """The next stream a node opens."""
        async with asyncio.timeout(within):
            return await self._opened.get()


async def serve_gateway(gateway: FakeGateway) -> tuple[grpc.aio.Server, str]:
    server = grpc.aio.server()
    node_pb2_grpc.add_NodeGatewayServicer_to_server(gateway, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"


@dataclass
class FakeHandlers:
    """What the link talks to, in place of the step runner: it records what it is told."""

    running: list[AttemptKey] = field(default_factory=list)
    results: list[StepResult] = field(default_factory=list)
    journal: list[JournalEntry] = field(default_factory=list)
    assigned: list[Assignment] = field(default_factory=list)
    cancelled: list[AttemptKey] = field(default_factory=list)
    acked: list[Ack] = field(default_factory=list)
    drains: list[DrainNotice] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    drain_state: DrainState | None = None  # updated on drain notices, as the runner does

    def in_flight(self) -> list[AttemptKey]:
        return list(self.running)

    def unacked(self) -> list[StepResult]:
        return list(self.results)

    def unacked_journal(self) -> list[JournalEntry]:
        return list(self.journal)

    async def on_journal_ack(self, ack: JournalAck) -> None:
        self.journal = [e for e in self.journal if e not in ack.entries]
        self.changed.set()

    def running_count(self) -> int:
        return len(self.running)

    def idle_workers(self) -> int:
        return 2

    def on_assign(self, assignment: Assignment) -> None:
        self.assigned.append(assignment)
        self.changed.set()

    def on_cancel(self, key: AttemptKey) -> None:
        self.cancelled.append(key)
        self.changed.set()

    async def on_ack(self, ack: Ack) -> None:
        self.acked.append(ack)
        self.results = [r for r in self.results if r.key != ack.key]
        self.changed.set()

    def on_drain(self, notice: DrainNotice) -> None:
        self.drains.append(notice)
        if self.drain_state is not None:
            self.drain_state.update(notice.draining, notice.deadline)
        self.changed.set()

    @property
    def unacked_count(self) -> int:
        return len(self.results)

    def running_steps(self) -> list[RunningStep]:
        return [RunningStep(key=k, workflow="wf", since=datetime(2026, 1, 1, tzinfo=UTC)) for k in self.running]

    async def until(self, check: Any, *, within: float = WAIT_S) -> None:
        async with asyncio.timeout(within):
            while not check():
                self.changed.clear()
                await self.changed.wait()
