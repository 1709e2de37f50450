"""ControlPlane service: thin handlers over the engine's run and node services."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from agentflow import wire
from agentflow.v1 import controlplane_pb2, controlplane_pb2_grpc, types_pb2
from agentflow.vocabulary import EventType, Role
from controlplane.api import convert
from controlplane.engine import Engine, SubscriberLagged
from controlplane.engine.event_log import event_filter
from controlplane.errors import InvalidArgument

# At most this many events in one WatchRun message.
WATCH_BATCH = 256
# The events that finish a run; WatchRun ends after sending one of them.
RUN_END_EVENTS = frozenset({EventType.WORKFLOW_COMPLETED, EventType.WORKFLOW_FAILED, EventType.WORKFLOW_CANCELLED})


class ControlPlaneServicer(controlplane_pb2_grpc.ControlPlaneServicer):
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def SubmitWorkflow(
        self, request: controlplane_pb2.SubmitWorkflowRequest, context: grpc.aio.ServicerContext
    ) -> controlplane_pb2.SubmitWorkflowResponse:
        run_id, workflow_id = await self._engine.runs.submit(
            workflow_yaml=request.workflow_yaml,
            source=request.source,
            input_json=request.input_json,
            module_digests=dict(request.module_digests),
        )
        return controlplane_pb2.SubmitWorkflowResponse(run_id=run_id, workflow_id=workflow_id)

    async def GetRun(self, request: controlplane_pb2.GetRunRequest, context: grpc.aio.ServicerContext) -> types_pb2.Run:
        return convert.run(await self._engine.runs.view(request.run_id))

    async def ListRuns(
        self, request: controlplane_pb2.ListRunsRequest, context: grpc.aio.ServicerContext
    ) -> controlplane_pb2.ListRunsResponse:
        views = await self._engine.runs.list_runs(limit=request.limit, workflow_name=request.workflow_name)
        return controlplane_pb2.ListRunsResponse(runs=[convert.run(v) for v in views])

    async def WatchRun(
        self, request: controlplane_pb2.WatchRunRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[controlplane_pb2.WatchRunResponse]:
        runs = self._engine.runs
        with self._engine.core.bus.subscribe(request.run_id) as sub:
            view = await runs.view(request.run_id)
            yield controlplane_pb2.WatchRunResponse(run=convert.run(view))
            # Stop after the run's end event, not at the first finished view: a view read right
            # after the finishing commit comes before that commit's events are delivered.
            finished = view.run.status.terminal
            while not finished:
                try:
                    first = await sub.get()
                except SubscriberLagged:
                    view = await runs.view(request.run_id)
                    yield controlplane_pb2.WatchRunResponse(run=convert.run(view))
                    finished = view.run.status.terminal
                    continue
                # What else was committed meanwhile goes in the same message, up to the end.
                events = [first, *sub.waiting(WATCH_BATCH - 1)]
                end = next((i for i, e in enumerate(events) if e.type in RUN_END_EVENTS), None)
                finished = end is not None
                if end is not None:  # the end: the whole run, with every output, once
                    events = events[: end + 1]
                    view = await runs.view(request.run_id)
                    run = convert.run(view)
                    changed = []
                else:
                    run = convert.run(await runs.steps_view(request.run_id, (e.step for e in events)))
                    changed = list(run.steps)
                    del run.steps[:]
                store_id = self._engine.core.store_id
                yield controlplane_pb2.WatchRunResponse(
                    event=convert.event(events[0], store_id),
                    later_events=[convert.event(e, store_id) for e in events[1:]],
                    run=run,
                    steps=changed,
                )

    async def CancelRun(
        self, request: controlplane_pb2.CancelRunRequest, context: grpc.aio.ServicerContext
    ) -> types_pb2.Run:
        return convert.run(await self._engine.runs.cancel(request.run_id))

    async def RetryRun(
        self, request: controlplane_pb2.RetryRunRequest, context: grpc.aio.ServicerContext
    ) -> types_pb2.Run:
        return convert.run(await self._engine.runs.retry(request.run_id))

    async def ListNodes(
        self, request: controlplane_pb2.ListNodesRequest, context: grpc.aio.ServicerContext
    ) -> controlplane_pb2.ListNodesResponse:
        return controlplane_pb2.ListNodesResponse(
            nodes=[convert.node(n) for n in await self._engine.nodes.list_nodes()]
        )

    async def GetNode(
        self, request: controlplane_pb2.GetNodeRequest, context: grpc.aio.ServicerContext
    ) -> types_pb2.Node:
        return convert.node(await self._engine.nodes.get(request.name))

    async def DrainNode(
        self, request: controlplane_pb2.DrainNodeRequest, context: grpc.aio.ServicerContext
    ) -> types_pb2.Node:
        deadline = wire.optional_duration(request, "deadline", field="deadline")
        return convert.node(await self._engine.drains.drain(request.name, deadline=deadline))

    async def UndrainNode(
        self, request: controlplane_pb2.UndrainNodeRequest, context: grpc.aio.ServicerContext
    ) -> types_pb2.Node:
        return convert.node(await self._engine.drains.undrain(request.name))

    async def PushModule(
        self,
        request_iterator: AsyncIterator[controlplane_pb2.PushModuleRequest],
        context: grpc.aio.ServicerContext,
    ) -> types_pb2.Module:
        first = await anext(aiter(request_iterator), None)
        if first is None:
            raise InvalidArgument("PushModule: the stream sent no chunks")

        async def chunks() -> AsyncIterator[bytes]:
            yield first.chunk
            async for message in request_iterator:
                yield message.chunk

        record = await self._engine.runs.push_module(
            name=first.name, expected_digest=first.expected_digest, chunks=chunks()
        )
        return convert.module(record)

    async def ListModules(
        self, request: controlplane_pb2.ListModulesRequest, context: grpc.aio.ServicerContext
    ) -> controlplane_pb2.ListModulesResponse:
        return controlplane_pb2.ListModulesResponse(
            modules=[convert.module(m) for m in await self._engine.runs.modules()]
        )

    async def CreateToken(
        self, request: controlplane_pb2.CreateTokenRequest, context: grpc.aio.ServicerContext
    ) -> controlplane_pb2.CreateTokenResponse:
        role = wire.from_pb(Role, types_pb2.Role, request.role, field="role")
        ttl = wire.optional_duration(request, "ttl", field="ttl")
        record, secret = await self._engine.tokens.create(
            role, ttl=ttl, single_use=request.single_use, description=request.description
        )
        return controlplane_pb2.CreateTokenResponse(token=convert.token(record), secret=secret)

    async def ListTokens(
        self, request: controlplane_pb2.ListTokensRequest, context: grpc.aio.ServicerContext
    ) -> controlplane_pb2.ListTokensResponse:
        return controlplane_pb2.ListTokensResponse(tokens=[convert.token(t) for t in self._engine.tokens.list()])

    async def StreamEvents(
        self, request: controlplane_pb2.StreamEventsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[types_pb2.Event]:
        where = event_filter(run_id=request.run_id, types=request.types)
        store_id = self._engine.core.store_id
        events = self._engine.events.stream(
            where, after_seq=request.after_seq, tail=request.tail, follow=request.follow
        )
        async for event in events:
            yield convert.event(event, store_id)

    async def RevokeToken(
        self, request: controlplane_pb2.RevokeTokenRequest, context: grpc.aio.ServicerContext
    ) -> types_pb2.Token:
        if not request.id:
            raise InvalidArgument("id: required")
        return convert.token(await self._engine.tokens.revoke(request.id))
