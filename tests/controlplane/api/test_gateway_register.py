"""Register and the opening of a Connect stream: names, ids, capacity, identification."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from agentflow.v1 import node_pb2, types_pb2

pytestmark = pytest.mark.component

CAPACITY = types_pb2.Resources(cpu_millis=1000, memory_bytes=1 << 30, slots=2)


def register_request(name: str = "n1", **fields) -> node_pb2.RegisterRequest:
    fields.setdefault("capacity", CAPACITY)
    fields.setdefault("isolation", types_pb2.ISOLATION_NONE)
    return node_pb2.RegisterRequest(name=name, **fields)


async def register_error(cp, request: node_pb2.RegisterRequest) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await cp.gateway.Register(request, timeout=5)
    return caught.value


async def test_register_answers_an_id_and_the_heartbeat_contract(control_plane) -> None:
    cp = await control_plane(heartbeat_interval=2.0, node_ttl=9.0)
    response = await cp.gateway.Register(register_request(version="1.2.3", labels={"gpu": "no"}), timeout=5)
    assert response.node_id
    assert response.heartbeat_interval.ToTimedelta().total_seconds() == 2.0
    assert response.heartbeat_ttl.ToTimedelta().total_seconds() == 9.0
    node = (await cp.list_nodes())["n1"]
    assert (node.id, node.version, dict(node.labels)) == (response.node_id, "1.2.3", {"gpu": "no"})
    assert node.status == types_pb2.NODE_STATUS_DISCONNECTED  # until it connects and says hello


async def test_same_name_while_the_first_is_connected_is_already_exists(cp) -> None:
    first = await cp.node("n1").join()
    other = cp.node("n1")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await other.register()
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert '"n1"' in caught.value.details()
    nodes = await cp.list_nodes()
    assert (nodes["n1"].id, nodes["n1"].status) == (first.node_id, types_pb2.NODE_STATUS_READY)


async def test_same_node_re_registering_keeps_its_id(cp) -> None:
    node = await cp.node("n1").join()
    node_id = node.node_id
    assert await node.register() == node_id  # while connected
    assert (await cp.list_nodes())["n1"].status == types_pb2.NODE_STATUS_READY
    await node.drop()
    await node.wait_status(types_pb2.NODE_STATUS_DISCONNECTED)
    assert await node.register() == node_id  # after the stream dropped
    await node.connect()
    await node.wait_status(types_pb2.NODE_STATUS_READY)
    assert list(await cp.list_nodes()) == ["n1"]


async def test_a_name_whose_node_is_gone_can_be_taken_over(cp) -> None:
    old = await cp.node("n1").join()
    await old.drop()
    await old.wait_status(types_pb2.NODE_STATUS_DISCONNECTED)
    new = await cp.node("n1").join()  # e.g. the host was reinstalled and lost its node id
    assert new.node_id == old.node_id
    assert list(await cp.list_nodes()) == ["n1"]


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        pytest.param(register_request(capacity=types_pb2.Resources(cpu_millis=1000, memory_bytes=1 << 30)),
                     "capacity", id="zero-slots"),
        pytest.param(register_request(capacity=types_pb2.Resources(memory_bytes=1 << 30, slots=1)),
                     "capacity", id="zero-cpu"),
        pytest.param(register_request(capacity=types_pb2.Resources(cpu_millis=1000, memory_bytes=1 << 30, slots=-1)),
                     "capacity", id="negative-slots"),
        pytest.param(register_request(name=""), "name", id="no-name"),
        pytest.param(register_request(isolation=types_pb2.ISOLATION_UNSPECIFIED), "isolation", id="no-isolation"),
    ],
)  # fmt: skip
async def test_invalid_registration_is_invalid_argument(cp, request_, field: str) -> None:
    err = await register_error(cp, request_)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details().startswith(f"{field}: ")
    assert await cp.list_nodes() == {}


async def connect_error(cp, metadata, first: node_pb2.NodeMessage | None = None) -> grpc.aio.AioRpcError:
    call = cp.gateway.Connect(metadata=metadata)
    if first is not None:
        await call.write(first)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async with asyncio.timeout(5):
            await call.read()
    return caught.value


async def test_connect_without_a_node_id_is_unauthenticated(cp) -> None:
    err = await connect_error(cp, ())
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "agentflow-node-id" in err.details()


async def test_connect_with_an_unknown_node_id_is_not_found(cp) -> None:
    err = await connect_error(cp, (("agentflow-node-id", "no-such-node"),))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert "Register" in err.details()


async def test_connect_must_start_with_a_hello(cp) -> None:
    node = cp.node("n1")
    await node.register()
    beat = node_pb2.NodeMessage(heartbeat=node_pb2.Heartbeat())
    err = await connect_error(cp, (("agentflow-node-id", node.node_id),), beat)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "hello" in err.details()
    assert (await cp.list_nodes())["n1"].status == types_pb2.NODE_STATUS_DISCONNECTED


async def test_a_second_stream_of_the_same_node_replaces_the_first(cp) -> None:
    first = await cp.node("n1").join()
    second = cp.node("n1")
    second.node_id = first.node_id
    await second.connect()
    async with asyncio.timeout(5):
        await first.stream_ended.wait()
    await second.wait_status(types_pb2.NODE_STATUS_READY)
    # the old stream's end (its handler closed its session before the stream ended) left it ready
    assert (await cp.list_nodes())["n1"].status == types_pb2.NODE_STATUS_READY
