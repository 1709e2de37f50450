"""noded's local admin API on a real unix socket, its link talking to a scripted gateway:
status, drain and undrain confirmed over the node's own stream, and typed errors for the rest."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import grpc
import pytest
from fake_gateway import FakeGateway, FakeHandlers, FakeStream, serve_gateway
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from protofuzz import messages

from agentflow.attempt import AttemptKey
from agentflow.clock import ManualClock
from agentflow.v1 import node_admin_pb2, node_admin_pb2_grpc, node_pb2, types_pb2
from agentflow.vocabulary import Isolation
from noded.admin import CONFIRM_TIMEOUT, NodeAdminServicer, NodeFacts, serve_admin
from noded.drain import DrainState
from noded.link import ControlPlaneLink
from noded.messages import Capacity, Registration
from noded.metrics import NodeMetrics
from noded.state import MemoryNodeState

pytestmark = [pytest.mark.component, pytest.mark.timeout(60)]


@dataclass
class Admin:
    stub: node_admin_pb2_grpc.NodeAdminStub
    gateway: FakeGateway
    stream: FakeStream
    handlers: FakeHandlers
    clock: ManualClock


@pytest.fixture
async def admin(tmp_path: Path) -> AsyncIterator[Admin]:
    gateway = FakeGateway()
    gateway_server, address = await serve_gateway(gateway)
    channel = grpc.aio.insecure_channel(address)
    drain = DrainState(NodeMetrics(CollectorRegistry()))
    handlers = FakeHandlers(running=[AttemptKey("r1", "s", 1)], drain_state=drain)
    link = ControlPlaneLink(
        channel,
        registration=Registration(
            name="n1", node_id="", labels={}, capacity=Capacity(cpu_millis=1000, memory_bytes=1 << 30, slots=2),
            isolation=Isolation.NONE, version="test",
        ),
        state=MemoryNodeState(),
        handlers=handlers,
        rng=random.Random(1),
    )  # fmt: skip
    clock = ManualClock()
    servicer = NodeAdminServicer(
        facts=NodeFacts(name="n1", server=address, isolation=Isolation.NONE, slots=2, version="test"),
        link=link,
        runner=handlers,
        drain=drain,
        idle_workers=lambda: 1,
        clock=clock,
    )
    socket = tmp_path / "noded.sock"
    server = await serve_admin(servicer, socket)
    admin_channel = grpc.aio.insecure_channel(f"unix:{socket}")
    async with link:
        stream = await gateway.stream()
        await stream.expect("hello")
        async with asyncio.timeout(5):
            await link.connected.wait()
        yield Admin(node_admin_pb2_grpc.NodeAdminStub(admin_channel), gateway, stream, handlers, clock)
    await admin_channel.close()
    await server.stop(0)
    await channel.close()
    await gateway_server.stop(0)


async def test_status_reports_the_link_the_running_steps_and_the_facts(admin: Admin) -> None:
    report = await admin.stub.GetStatus(node_admin_pb2.GetNodeStatusRequest(), timeout=5)
    assert (report.name, report.node_id, report.connected, report.draining) == ("n1", "node-1", True, False)
    assert (report.isolation, report.slots, report.idle_workers, report.version) == (
        types_pb2.ISOLATION_NONE, 2, 1, "test"
    )  # fmt: skip
    assert [(s.run_id, s.step, s.attempt, s.workflow) for s in report.running] == [("r1", "s", 1, "wf")]


async def test_drain_goes_up_the_stream_and_returns_once_the_control_plane_confirms(admin: Admin) -> None:
    request = node_admin_pb2.DrainSelfRequest()
    request.deadline.FromTimedelta(timedelta(minutes=5))
    call = asyncio.ensure_future(admin.stub.Drain(request, timeout=10))
    asked = await admin.stream.expect("drain")
    assert asked.draining and asked.deadline.ToTimedelta() == timedelta(minutes=5)
    assert not call.done()
    confirm = node_pb2.Drain(draining=True)
    confirm.deadline.GetCurrentTime()
    admin.stream.send(node_pb2.ControlMessage(drain=confirm))
    report = await call
    assert report.draining and report.HasField("drain_deadline")

    undrain = asyncio.ensure_future(admin.stub.Undrain(node_admin_pb2.UndrainSelfRequest(), timeout=10))
    assert not (await admin.stream.expect("drain")).draining
    admin.stream.send(node_pb2.ControlMessage(drain=node_pb2.Drain(draining=False)))
    assert not (await undrain).draining


async def test_an_unconfirmed_drain_is_deadline_exceeded_when_the_confirm_timeout_passes(admin: Admin) -> None:
    call = asyncio.ensure_future(admin.stub.Drain(node_admin_pb2.DrainSelfRequest(), timeout=10))
    await admin.stream.expect("drain")
    await admin.clock.wait_for_sleepers(1)
    await admin.clock.advance(CONFIRM_TIMEOUT - timedelta(milliseconds=1))
    done, _ = await asyncio.wait({call}, timeout=0.1)
    assert not done  # still waiting for the confirmation
    await admin.clock.advance(timedelta(milliseconds=1))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    assert info.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert info.value.details() == "the control plane did not confirm within 10s"


async def test_drain_without_a_stream_is_a_failed_precondition(admin: Admin) -> None:
    admin.gateway.refuse_connect = [(grpc.StatusCode.UNAVAILABLE, "down")] * 1000
    admin.stream.end(grpc.StatusCode.UNAVAILABLE, "control plane stopping")
    async with asyncio.timeout(5):
        while True:  # wait for the link to notice (its status, not a sleep, is the condition)
            report = await admin.stub.GetStatus(node_admin_pb2.GetNodeStatusRequest(), timeout=5)
            if not report.connected:
                break
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await admin.stub.Drain(node_admin_pb2.DrainSelfRequest(), timeout=5)
    assert info.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert "not connected to the control plane" in info.value.details()


async def test_a_negative_deadline_is_an_invalid_argument(admin: Admin) -> None:
    request = node_admin_pb2.DrainSelfRequest()
    request.deadline.FromTimedelta(timedelta(seconds=-5))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await admin.stub.Drain(request, timeout=5)
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details() == "deadline: must not be negative"


@settings(
    max_examples=max(settings.default.max_examples // 10, 1),
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
async def test_any_request_gets_a_typed_status(admin: Admin, data: st.DataObject) -> None:
    request = data.draw(messages(node_admin_pb2.DrainSelfRequest))
    call = asyncio.ensure_future(admin.stub.Drain(request, timeout=10))
    asked = asyncio.ensure_future(admin.stream.expect("drain"))
    await asyncio.wait({call, asked}, return_when=asyncio.FIRST_COMPLETED)
    if asked.done():  # it went up the stream: confirm it
        admin.stream.send(node_pb2.ControlMessage(drain=node_pb2.Drain(draining=True)))
    else:
        asked.cancel()
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        assert exc.code() not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN), exc.details()
