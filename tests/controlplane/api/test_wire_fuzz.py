"""Property: any protobuf request, however odd, gets a typed status from the control plane.

Each RPC of `ControlPlane` and `NodeGateway` is called over a real channel with requests drawn
from the message descriptors (huge numbers, unknown enum values, Durations out of range, odd
text, names that exist); the answer is a reply or a status code that names what is wrong, never
INTERNAL or UNKNOWN, and the server stays up.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from protofuzz import messages
from sample_workflows import ONE_STEP

from agentflow.transport import NODE_ID_METADATA
from agentflow.v1 import controlplane_pb2, node_pb2, types_pb2

pytestmark = [pytest.mark.component, pytest.mark.timeout(600)]

UNTYPED = (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN)
FUZZ = settings(
    max_examples=max(settings.default.max_examples // 5, 1), suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture
async def world(cp, echo_wasm, caplog: pytest.LogCaptureFixture) -> dict[str, Any]:
    """A control plane with a node, a module and a run, whose names the fuzzed requests reuse."""
    node = await cp.node("n1").join()
    module = await cp.push(echo_wasm)
    run_id = await cp.submit(ONE_STEP)
    await node.assignment("only")
    caplog.set_level(logging.ERROR, logger="controlplane")
    return {
        "cp": cp,
        "log": caplog,
        "names": ["n1", node.node_id, run_id, module.digest, "only", "one", "./echo.wasm", ONE_STEP],
    }


def assert_typed(exc: grpc.aio.AioRpcError) -> None:
    assert exc.code() not in UNTYPED, f"{exc.code().name}: {exc.details()}"


def assert_no_untyped_error_logged(log: pytest.LogCaptureFixture) -> None:
    untyped = [r for r in log.records if r.getMessage() == "unexpected error in RPC handler"]
    assert not untyped, [r.exc_text for r in untyped]


UNARY = [
    ("SubmitWorkflow", controlplane_pb2.SubmitWorkflowRequest),
    ("GetRun", controlplane_pb2.GetRunRequest),
    ("ListRuns", controlplane_pb2.ListRunsRequest),
    ("CancelRun", controlplane_pb2.CancelRunRequest),
    ("RetryRun", controlplane_pb2.RetryRunRequest),
    ("ListNodes", controlplane_pb2.ListNodesRequest),
    ("GetNode", controlplane_pb2.GetNodeRequest),
    ("DrainNode", controlplane_pb2.DrainNodeRequest),
    ("UndrainNode", controlplane_pb2.UndrainNodeRequest),
    ("ListModules", controlplane_pb2.ListModulesRequest),
]


@pytest.mark.parametrize(("method", "request_type"), UNARY, ids=[m for m, _ in UNARY])
@FUZZ
@given(data=st.data())
async def test_admin_rpcs_answer_any_request_with_a_typed_status(world, method, request_type, data) -> None:
    cp = world["cp"]
    request = data.draw(messages(request_type, names=world["names"]))
    try:
        await getattr(cp.admin, method)(request, timeout=10)
    except grpc.aio.AioRpcError as exc:
        assert_typed(exc)


@FUZZ
@given(data=st.data())
async def test_watch_run_answers_any_request_with_a_typed_status(world, data) -> None:
    cp = world["cp"]
    call = cp.admin.WatchRun(data.draw(messages(controlplane_pb2.WatchRunRequest, names=world["names"])), timeout=10)
    try:
        await call.read()
    except grpc.aio.AioRpcError as exc:
        assert_typed(exc)
    finally:
        call.cancel()


@FUZZ
@given(data=st.data())
async def test_push_module_answers_any_stream_with_a_typed_status(world, data) -> None:
    cp = world["cp"]
    chunks = data.draw(st.lists(messages(controlplane_pb2.PushModuleRequest, names=world["names"]), max_size=4))

    async def requests() -> AsyncIterator[controlplane_pb2.PushModuleRequest]:
        for chunk in chunks:
            yield chunk

    try:
        await cp.admin.PushModule(requests(), timeout=10)
    except grpc.aio.AioRpcError as exc:
        assert_typed(exc)


@FUZZ
@given(data=st.data())
async def test_register_and_fetch_module_answer_any_request_with_a_typed_status(world, data) -> None:
    cp = world["cp"]
    try:
        await cp.gateway.Register(data.draw(messages(node_pb2.RegisterRequest, names=world["names"])), timeout=10)
    except grpc.aio.AioRpcError as exc:
        assert_typed(exc)
    call = cp.gateway.FetchModule(data.draw(messages(node_pb2.FetchModuleRequest, names=world["names"])), timeout=10)
    try:
        async for _ in call:
            pass
    except grpc.aio.AioRpcError as exc:
        assert_typed(exc)


@FUZZ
@given(data=st.data())
async def test_a_node_stream_of_any_messages_ends_with_a_typed_status(world, data) -> None:
    cp = world["cp"]
    names = world["names"]
    header_text = st.text(st.characters(min_codepoint=32, max_codepoint=126))  # what gRPC metadata can carry
    node_id = data.draw(st.one_of(st.sampled_from(names[:3]), header_text))
    sent = data.draw(st.lists(messages(node_pb2.NodeMessage, names=names), min_size=1, max_size=5))

    async def requests() -> AsyncIterator[node_pb2.NodeMessage]:
        for message in sent:
            yield message

    # Written by gRPC from an iterator, so that a stream the server ends early keeps its status.
    call = cp.gateway.Connect(requests(), metadata=((NODE_ID_METADATA, node_id),), timeout=10)
    try:
        async for _ in call:
            pass
    except grpc.aio.AioRpcError:
        pass  # its status is checked below
    code, details = await call.code(), await call.details()
    # A client that writes after the server ended the stream gets a status of its own core's
    # making; the server's own answer is then checked by its log (no untyped error).
    if details != "Internal error from Core":
        assert code not in UNTYPED, f"{code.name}: {details}"
    assert_no_untyped_error_logged(world["log"])
    # the server still answers
    assert (await cp.admin.ListNodes(controlplane_pb2.ListNodesRequest(), timeout=10)) is not None
    _ = types_pb2  # the messages above reach every type of types.proto
