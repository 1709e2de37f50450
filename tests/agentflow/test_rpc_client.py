"""Status codes come back as typed errors, from the sync and the asyncio stacks alike."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from agentflow import rpc

pytestmark = [pytest.mark.component, pytest.mark.timeout(30)]


@pytest.fixture
async def address():
    server = grpc.aio.server()
    port = server.add_insecure_port("127.0.0.1:0")  # serves nothing: every method is UNIMPLEMENTED
    await server.start()
    yield f"127.0.0.1:{port}"
    await server.stop(0)


async def test_an_asyncio_call_error_is_translated_by_its_code(address: str) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        with pytest.raises(rpc.RpcError) as info, rpc.rpc_errors():
            await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert info.value.code is grpc.StatusCode.UNIMPLEMENTED
    assert type(info.value) is rpc.RpcError  # no class of its own: the base, with the code


async def test_an_unreachable_server_is_unavailable() -> None:
    async with grpc.aio.insecure_channel("127.0.0.1:1") as channel:
        with pytest.raises(rpc.Unavailable), rpc.rpc_errors():
            await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)


def test_a_sync_call_error_is_translated_too() -> None:
    with grpc.insecure_channel("127.0.0.1:1") as channel, pytest.raises(rpc.Unavailable) as info, rpc.rpc_errors():
        health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert info.value.details
