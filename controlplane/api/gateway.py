"""NodeGateway service: registration, the per-node Connect stream and module download."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import grpc

from agentflow import wire
from agentflow.stream_batch import groups, take_waiting
from agentflow.transport import BATCHES_METADATA, NODE_ID_METADATA
from agentflow.v1 import node_pb2, node_pb2_grpc
from controlplane.api import convert
from controlplane.api.identity import check_node_name
from controlplane.engine import Engine, NodeSession, ToNode
from controlplane.errors import InvalidArgument, Unauthenticated

log = logging.getLogger(__name__)


class NodeGatewayServicer(node_pb2_grpc.NodeGatewayServicer):
    """With `tls`, a node's certificate binds it to its name (see `controlplane.api.identity`)."""

    def __init__(self, engine: Engine, *, tls: bool = False) -> None:
        self._engine = engine
        self._tls = tls

    async def Register(
        self, request: node_pb2.RegisterRequest, context: grpc.aio.ServicerContext
    ) -> node_pb2.RegisterResponse:
        check_node_name(context, request.name, tls=self._tls)
        node_id = await self._engine.registration.register(convert.registration(request), require_join=self._tls)
        return node_pb2.RegisterResponse(
            node_id=node_id,
            heartbeat_interval=convert.duration(self._engine.heartbeat_interval),
            heartbeat_ttl=convert.duration(self._engine.node_ttl),
        )

    async def Connect(
        self, request_iterator: AsyncIterator[node_pb2.NodeMessage], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[node_pb2.ControlMessage]:
        metadata = dict(context.invocation_metadata() or ())
        node_id = metadata.get(NODE_ID_METADATA, "")
        if not node_id:
            raise Unauthenticated(f"Connect needs the {NODE_ID_METADATA} metadata from Register")
        registration = self._engine.registration
        if self._tls:  # before the session opens: another node's certificate must not close it
            record = self._engine.core.store.read.node(node_id)
            if record is not None:
                check_node_name(context, record.name, tls=True)
        session = await registration.open_session(node_id)
        batches = metadata.get(BATCHES_METADATA) == "1"  # the node reads batch messages
        await context.send_initial_metadata(((BATCHES_METADATA, "1"),))  # and so does this side
        reader = asyncio.create_task(self._read(session, request_iterator), name=f"node-reader-{node_id}")
        closed = asyncio.ensure_future(session.closed.wait())
        get: asyncio.Future[ToNode | None] | None = None
        try:
            while not session.closed.is_set():
                if session.outgoing.empty():
                    get = asyncio.ensure_future(session.outgoing.get())
                    await asyncio.wait({get, closed}, return_when=asyncio.FIRST_COMPLETED)
                    if not get.done():
                        break
                    first = get.result()
                else:  # no need to wait: the common case while steps run
                    first = session.outgoing.get_nowait()
                if first is None:
                    break
                waiting = take_waiting(session.outgoing, first) if batches else [first]
                end = None in waiting  # the session closed behind what was taken
                messages = [convert.to_node(m) for m in waiting if m is not None]
                for group in groups(messages):
                    if len(group) == 1:
                        yield group[0]
                    else:
                        yield node_pb2.ControlMessage(batch=node_pb2.ControlMessages(messages=group))
                if end:
                    break
        finally:
            for pending in (get, closed):
                if pending is not None:
                    pending.cancel()
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            await registration.close_session(session)
        # What ended the node's side of the stream (a bad message, say) is the stream's status.
        if not reader.cancelled() and (failure := reader.exception()) is not None:
            raise failure

    async def _read(self, session: NodeSession, request_iterator: AsyncIterator[node_pb2.NodeMessage]) -> None:
        try:
            first = True
            async for message in request_iterator:
                if message.WhichOneof("kind") != "batch":
                    await self._handle(session, message, first=first)
                    first = False
                    continue
                for each in message.batch.messages:
                    if each.WhichOneof("kind") == "batch":
                        raise InvalidArgument("Connect: a batch must not hold a batch")
                    await self._handle(session, each, first=first)
                    first = False
        finally:
            session.close()

    async def _handle(self, session: NodeSession, message: node_pb2.NodeMessage, *, first: bool) -> None:
        engine = self._engine
        kind = message.WhichOneof("kind")
        if first and kind != "hello":
            raise InvalidArgument("Connect: the first message must be a hello")
        if kind == "hello":
            await engine.registration.hello(session, convert.hello(message.hello))
        elif kind == "heartbeat":
            await engine.liveness.heartbeat(session)
        elif kind == "started":
            await engine.reports.started(session, convert.attempt_key(message.started.attempt))
        elif kind == "result":
            await engine.reports.result(session, convert.result(message.result))
        elif kind == "drain":
            request = message.drain
            try:
                deadline = wire.optional_duration(request, "deadline", field="drain.deadline")
            except wire.InvalidField as exc:  # dropped, as the engine drops a bad drain request
                log.warning("node sent a bad drain request", extra={"node": session.node_name, "error": str(exc)})
                return
            await engine.drains.drain_request(session, draining=request.draining, deadline=deadline)
        elif kind == "journal":
            await engine.reports.journal(session, convert.journal(message.journal))
        elif kind == "goodbye":
            await engine.liveness.goodbye(session)

    async def FetchModule(
        self, request: node_pb2.FetchModuleRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[node_pb2.ModuleChunk]:
        first = True
        async for chunk in self._engine.runs.module_chunks(request.digest):
            if first:
                record = self._engine.core.store.read.module(request.digest)
                yield node_pb2.ModuleChunk(data=chunk, total_size=record.size if record else 0)
                first = False
            else:
                yield node_pb2.ModuleChunk(data=chunk)
