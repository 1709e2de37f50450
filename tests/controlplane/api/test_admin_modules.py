"""PushModule / ListModules / FetchModule: content-addressed, validated, never left half-written."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import grpc
import pytest
import wasmtime

from agentflow.v1 import controlplane_pb2, node_pb2

pytestmark = pytest.mark.component


async def push(cp, chunks: Sequence[bytes], *, name: str = "m.wasm", expected_digest: str = ""):
    async def requests() -> AsyncIterator[controlplane_pb2.PushModuleRequest]:
        for i, chunk in enumerate(chunks):
            if i == 0:
                yield controlplane_pb2.PushModuleRequest(name=name, expected_digest=expected_digest, chunk=chunk)
            else:
                yield controlplane_pb2.PushModuleRequest(chunk=chunk)

    return await cp.admin.PushModule(requests(), timeout=5)


async def push_error(cp, chunks: Sequence[bytes], **kwargs) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await push(cp, chunks, **kwargs)
    return caught.value


def blob_dir(cp) -> Path:
    return cp.data_dir / "modules" / "sha256"


def blob_files(cp) -> list[str]:
    return sorted(p.name for p in blob_dir(cp).iterdir())


async def list_modules(cp) -> list:
    return list((await cp.admin.ListModules(controlplane_pb2.ListModulesRequest(), timeout=5)).modules)


async def test_push_stores_by_sha256_and_is_idempotent(cp, echo_wasm: Path) -> None:
    data = echo_wasm.read_bytes()
    hexdigest = hashlib.sha256(data).hexdigest()
    chunks = [data[i : i + 1000] for i in range(0, len(data), 1000)]

    module = await push(cp, chunks, name="echo.wasm")
    assert module.digest == f"sha256:{hexdigest}"
    assert (module.size, module.name) == (len(data), "echo.wasm")
    assert module.created_at.ToSeconds() > 0
    assert (blob_dir(cp) / hexdigest).read_bytes() == data

    again = await push(cp, [data], name="renamed.wasm", expected_digest=module.digest)
    assert again == module  # the first push's record, unchanged
    assert [m.digest for m in await list_modules(cp)] == [module.digest]
    assert blob_files(cp) == [hexdigest]


async def test_fetch_module_streams_the_pushed_bytes(cp, echo_wasm: Path) -> None:
    data = echo_wasm.read_bytes()
    digest = (await cp.push(echo_wasm)).digest
    chunks = [c async for c in cp.gateway.FetchModule(node_pb2.FetchModuleRequest(digest=digest), timeout=5)]
    assert b"".join(c.data for c in chunks) == data
    assert chunks[0].total_size == len(data)

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in cp.gateway.FetchModule(node_pb2.FetchModuleRequest(digest="sha256:" + "1" * 64), timeout=5):
            pass
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    "chunks",
    [
        pytest.param([b"MZ\x90\x00 not wasm at all"], id="no-wasm-magic"),
        pytest.param([b"\0asm\x01\0\0\0\x01\xff\xff"], id="truncated-wasm"),
        pytest.param([b""], id="zero-bytes"),
    ],
)
async def test_non_wasm_bytes_are_invalid(cp, chunks: list[bytes]) -> None:
    err = await push_error(cp, chunks)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details().startswith("module: ")
    assert blob_files(cp) == []
    assert await list_modules(cp) == []


async def test_a_module_importing_what_no_node_provides_is_refused(cp) -> None:
    wasm = bytes(wasmtime.wat2wasm('(module (import "env" "system" (func)) (func (export "_start")))'))
    err = await push_error(cp, [wasm])
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details() == (
        "module: imports env.system, but the host provides only wasi_snapshot_preview1 and agentflow"
    )
    assert blob_files(cp) == []


async def test_wrong_expected_digest_is_invalid(cp, echo_wasm: Path) -> None:
    wrong = "sha256:" + "0" * 64
    err = await push_error(cp, [echo_wasm.read_bytes()], expected_digest=wrong)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details().startswith("expected_digest: ")
    assert wrong in err.details()
    assert blob_files(cp) == []
    assert await list_modules(cp) == []


async def test_empty_stream_is_invalid(cp) -> None:
    err = await push_error(cp, [])
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "no chunks" in err.details()
    assert blob_files(cp) == []


async def test_module_over_the_size_limit_is_resource_exhausted(control_plane, echo_wasm: Path) -> None:
    data = echo_wasm.read_bytes()
    cp = await control_plane(max_module_bytes=len(data) - 1)
    err = await push_error(cp, [data[: len(data) // 2], data[len(data) // 2 :]])
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert str(len(data) - 1) in err.details()
    assert blob_files(cp) == []
    assert await list_modules(cp) == []

    # exactly at the limit is fine
    cp2 = await control_plane(cp.data_dir.parent / "cp2", max_module_bytes=len(data))
    assert (await push(cp2, [data])).size == len(data)
