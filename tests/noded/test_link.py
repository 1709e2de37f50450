"""The control-plane link against a scripted gateway over a real channel, on a manual clock:
registration, the hello that reconciles, heartbeats, reconnect backoff, a full send queue."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta

import grpc
import pytest
from fake_gateway import FakeGateway, FakeHandlers, serve_gateway
from waiting import eventually

from agentflow.attempt import AttemptKey
from agentflow.clock import ManualClock
from agentflow.v1 import node_pb2, types_pb2
from agentflow.vocabulary import Isolation, StepOutcome
from noded import link as link_module
from noded.errors import RegistrationError
from noded.link import RECONNECT_MIN, ControlPlaneLink
from noded.messages import Capacity, Registration, Started, StepResult
from noded.state import MemoryNodeState

pytestmark = [pytest.mark.component, pytest.mark.timeout(30)]

REGISTRATION = Registration(
    name="n1",
    node_id="",
    labels={"zone": "a"},
    capacity=Capacity(cpu_millis=2000, memory_bytes=1 << 30, slots=4),
    isolation=Isolation.CGROUP1,
    version="test",
)
KEY = AttemptKey("r1", "s", 1)
DONE = StepResult(key=KEY, outcome=StepOutcome.SUCCEEDED, output_json='{"ok":true}')

Opened = tuple[ControlPlaneLink, FakeGateway, FakeHandlers, ManualClock, MemoryNodeState]


@pytest.fixture
async def open_link() -> AsyncIterator[Callable[..., Awaitable[Opened]]]:
    """open(handlers=None) -> a running link to a fresh scripted gateway; everything is shut down after."""
    servers: list[grpc.aio.Server] = []
    links: list[ControlPlaneLink] = []
    channels: list[grpc.aio.Channel] = []

    async def open_(handlers: FakeHandlers | None = None, gateway: FakeGateway | None = None) -> Opened:
        gateway = gateway or FakeGateway()
        server, address = await serve_gateway(gateway)
        servers.append(server)
        channel = grpc.aio.insecure_channel(address)
        channels.append(channel)
        handlers = handlers or FakeHandlers()
        clock, state = ManualClock(), MemoryNodeState()
        link = ControlPlaneLink(
            channel, registration=REGISTRATION, state=state, handlers=handlers, clock=clock, rng=random.Random(7)
        )
        links.append(link)
        await link.__aenter__()
        return link, gateway, handlers, clock, state

    yield open_
    for link in links:
        await link.__aexit__(None, None, None)
    for channel in channels:
        await channel.close()
    for server in servers:
        await server.stop(0)


async def redial(link: ControlPlaneLink) -> datetime:
    async with asyncio.timeout(5):
        return await link.wait_for_redial()


async def test_registers_then_says_hello_with_what_it_holds_and_resends_unacked_results(open_link) -> None:
    handlers = FakeHandlers(running=[AttemptKey("r1", "other", 2)], results=[DONE])
    link, gateway, _, _, state = await open_link(handlers)
    stream = await gateway.stream()
    [request] = gateway.registrations
    assert (request.name, dict(request.labels), request.isolation) == ("n1", {"zone": "a"}, types_pb2.ISOLATION_CGROUP1)
    assert request.capacity.slots == 4 and request.node_id == ""
    assert stream.node_id == "node-1" == await state.node_id() == link.node_id

    hello = await stream.expect("hello")
    assert [(r.step, r.attempt) for r in hello.in_flight] == [("other", 2)]
    assert [(r.step, r.attempt) for r in hello.unacked] == [("s", 1)]
    result = await stream.expect("result")
    assert (result.run_id, result.outcome, json.loads(result.output_json)) == ("r1", 1, {"ok": True})
    assert stream.kinds()[:2] == ["hello", "result"]  # nothing before the hello
    async with asyncio.timeout(5):
        await link.connected.wait()


async def test_heartbeats_follow_the_interval_the_control_plane_asked_for(open_link) -> None:
    _link, gateway, _, clock, _ = await open_link()
    stream = await gateway.stream()
    await stream.expect("hello")
    first = await stream.expect("heartbeat")  # one at once
    assert (first.running, first.idle_workers) == (0, 2)
    await clock.advance(timedelta(milliseconds=900))
    with pytest.raises(AssertionError, match="no heartbeat"):
        await stream.expect("heartbeat", within=0.2)
    await clock.advance(timedelta(milliseconds=100))  # the gateway asked for 1 s
    await stream.expect("heartbeat")


async def test_messages_from_the_control_plane_reach_the_runner_as_domain_messages(open_link) -> None:
    _link, gateway, handlers, _, _ = await open_link()
    stream = await gateway.stream()
    await stream.expect("hello")
    assignment = types_pb2.Assignment(
        run_id="r1", step="s", attempt=1, module_digest="sha256:" + "a" * 64, stdin_json="{}", workflow_name="wf"
    )
    assignment.timeout.FromTimedelta(timedelta(seconds=30))
    assignment.capabilities.http_allowed_hosts.append("api.example.com")
    stream.send(node_pb2.ControlMessage(assign=assignment))
    stream.send(node_pb2.ControlMessage(cancel=node_pb2.AttemptRef(run_id="r1", step="s", attempt=1)))
    stream.send(
        node_pb2.ControlMessage(
            ack=node_pb2.ResultAck(attempt=node_pb2.AttemptRef(run_id="r1", step="s", attempt=1), stale=True)
        )
    )
    stream.send(node_pb2.ControlMessage(drain=node_pb2.Drain(draining=True)))
    await handlers.until(lambda: handlers.drains)
    [got] = handlers.assigned
    assert (got.key, got.workflow, got.timeout, got.capabilities.http_allowed_hosts) == (
        KEY,
        "wf",
        timedelta(seconds=30),
        ("api.example.com",),
    )
    assert handlers.cancelled == [KEY]
    assert [(a.key, a.stale) for a in handlers.acked] == [(KEY, True)]
    assert (handlers.drains[0].draining, handlers.drains[0].deadline) == (True, None)


async def test_a_broken_stream_is_redialled_after_the_backoff(open_link) -> None:
    link, gateway, _, clock, _ = await open_link()
    first = await gateway.stream()
    await first.expect("hello")
    first.end(grpc.StatusCode.UNAVAILABLE, "control plane restarting")
    redial_at = await redial(link)
    assert RECONNECT_MIN * 0.8 <= redial_at - clock.now() <= RECONNECT_MIN * 1.2  # the first delay, jittered
    await clock.advance(redial_at - clock.now() - timedelta(milliseconds=1))
    with pytest.raises(TimeoutError):
        await gateway.stream(within=0.2)  # not before the backoff
    await clock.advance(timedelta(milliseconds=1))
    second = await gateway.stream()
    await second.expect("hello")
    assert len(gateway.registrations) == 1  # the same node id, no second registration
    assert second.node_id == first.node_id


async def test_a_control_plane_that_forgot_the_node_gets_it_registered_again(open_link) -> None:
    gateway = FakeGateway()
    gateway.forget_registrations = 1  # as a control plane whose database was replaced would
    link, _, _, clock, _ = await open_link(gateway=gateway)
    # A NOT_FOUND that races the node's first writes can reach it as a transport error; then it
    # redials once more before it learns that it must register again.
    while not gateway.streams:
        redial_at = await redial(link)
        await clock.advance(max(redial_at - clock.now(), timedelta(0)))
        await eventually(lambda at=redial_at: link.redial_at != at or gateway.streams, what="the redial")
    stream = await gateway.stream()
    await stream.expect("hello")
    assert [r.node_id for r in gateway.registrations] == ["", "node-1"]  # it asks for its old id back


async def test_a_refused_registration_stops_the_link_with_the_reason(open_link) -> None:
    gateway = FakeGateway()
    gateway.refuse_register = (grpc.StatusCode.ALREADY_EXISTS, 'node name "n1" is held by a connected node')
    server, address = await serve_gateway(gateway)
    channel = grpc.aio.insecure_channel(address)
    try:
        link = ControlPlaneLink(channel, registration=REGISTRATION, state=MemoryNodeState(), handlers=FakeHandlers())
        with pytest.raises(RegistrationError, match='node name "n1" is held by a connected node'):
            async with asyncio.timeout(5):
                await link.run()
    finally:
        await channel.close()
        await server.stop(0)


async def test_a_full_send_queue_drops_the_stream_and_the_next_hello_resends_the_results(
    open_link, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(link_module, "SEND_QUEUE_SIZE", 3)
    monkeypatch.setattr(link_module, "HEARTBEAT_SKIP_BACKLOG", 1)
    handlers = FakeHandlers()
    link, gateway, _, clock, _ = await open_link(handlers)
    first = await gateway.stream()
    await first.expect("hello")
    handlers.results = [DONE]  # finished meanwhile, not yet acked
    accepted = [link.send(Started(key=AttemptKey("r1", f"s{i}", 1))) for i in range(50)]
    assert accepted.count(False) > 0  # the writer cannot keep up with 50 at once
    assert link.send(DONE) is False  # refused while behind, kept by the runner
    await clock.advance(await redial(link) - clock.now())
    second = await gateway.stream()
    hello = await second.expect("hello")
    assert [(r.step, r.attempt) for r in hello.unacked] == [("s", 1)]
    assert (await second.expect("result")).step == "s"


# -- batches ---------------------------------------------------------------------------------


def _result(step: str) -> StepResult:
    return StepResult(key=AttemptKey("r1", step, 1), outcome=StepOutcome.SUCCEEDED, output_json="{}")


async def test_messages_that_wait_together_go_up_as_one_batch_to_a_control_plane_that_reads_them(
    open_link,
) -> None:
    gateway = FakeGateway()
    gateway.reads_batches = True
    link, gateway, _, _, _ = await open_link(gateway=gateway)
    stream = await gateway.stream()
    await stream.expect("hello")
    assert stream.node_reads_batches  # the node says it reads them too
    await eventually(lambda: link.peer_reads_batches)
    for i in range(5):  # queued without yielding: all five wait when the writer next runs
        assert link.send(_result(f"s{i}"))
    for i in range(5):
        assert (await stream.expect("result")).step == f"s{i}"  # in order
    assert stream.batches and max(stream.batches) >= 5


async def test_a_control_plane_that_does_not_say_it_reads_batches_gets_messages_one_by_one(open_link) -> None:
    link, gateway, _, _, _ = await open_link()
    stream = await gateway.stream()
    await stream.expect("hello")
    await stream.expect("heartbeat")
    for i in range(5):
        assert link.send(_result(f"s{i}"))
    for i in range(5):
        assert (await stream.expect("result")).step == f"s{i}"
    assert stream.batches == [] and link.peer_reads_batches is False


async def test_a_batch_from_the_control_plane_reaches_the_runner_in_order(open_link) -> None:
    _link, gateway, handlers, _, _ = await open_link()
    stream = await gateway.stream()
    await stream.expect("hello")
    ref = node_pb2.AttemptRef(run_id="r1", step="s", attempt=1)
    stream.send(
        node_pb2.ControlMessage(
            batch=node_pb2.ControlMessages(
                messages=[
                    node_pb2.ControlMessage(cancel=ref),
                    node_pb2.ControlMessage(ack=node_pb2.ResultAck(attempt=ref)),
                    node_pb2.ControlMessage(drain=node_pb2.Drain(draining=True)),
                ]
            )
        )
    )
    await handlers.until(lambda: handlers.drains)
    assert handlers.cancelled == [KEY]
    assert [a.key for a in handlers.acked] == [KEY]


async def test_a_batch_inside_a_batch_drops_the_stream(open_link) -> None:
    link, gateway, handlers, _, _ = await open_link()
    stream = await gateway.stream()
    await stream.expect("hello")
    inner = node_pb2.ControlMessage(batch=node_pb2.ControlMessages(messages=[node_pb2.ControlMessage()]))
    stream.send(node_pb2.ControlMessage(batch=node_pb2.ControlMessages(messages=[inner])))
    await redial(link)  # the link gave up on that stream and backs off before dialling again
    assert handlers.cancelled == [] and handlers.acked == []
