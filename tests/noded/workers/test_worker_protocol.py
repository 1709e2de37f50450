"""Frames and the StepJob/ExecResult wire forms."""

from __future__ import annotations

import asyncio
import os
import struct

import pytest

from agentflow.vocabulary import FailureKind
from noded.sandbox import ExecResult, StepJob
from noded.workers import ProtocolError
from noded.workers.protocol import (
    MAX_FRAME_BYTES,
    encode_frame,
    job_from_dict,
    job_to_dict,
    read_frame,
    read_frame_sync,
    result_from_dict,
    result_to_dict,
    write_frame_sync,
)

pytestmark = pytest.mark.unit

JOB = StepJob(
    digest="ab" * 32,
    module_path="/modules/x.wasm",
    stdin=b"\x00\xff{}",
    timeout_s=1.5,
    memory_limit_bytes=1 << 26,
    scratch_dir="/tmp/s",
    allowed_paths=("/data", "/models"),
    capabilities=frozenset({"llm.complete", "http.fetch"}),
    max_stdout_bytes=10,
    max_stderr_bytes=20,
)
RESULT = ExecResult(
    exit_code=None,
    trap="interrupt",
    failure_kind=FailureKind.TIMEOUT,
    error="timed out after 1.5s",
    output_json=None,
    stderr="é \ud800 [… 3 bytes truncated]",
    duration_s=1.51,
    denied_host_calls=2,
)


def test_job_round_trip() -> None:
    assert job_from_dict(job_to_dict(JOB)) == JOB


def test_result_round_trip_through_a_frame() -> None:
    read_end, write_end = os.pipe()
    try:
        write_frame_sync(write_end, {"type": "result", "result": result_to_dict(RESULT)})
        os.close(write_end)
        message = read_frame_sync(read_end)
        assert message is not None
        assert result_from_dict(message["result"]) == RESULT
        assert read_frame_sync(read_end) is None  # clean EOF
    finally:
        os.close(read_end)


@pytest.mark.parametrize(
    "data",
    [{"digest": "x"}, {**job_to_dict(JOB), "stdin": "***"}, {**job_to_dict(JOB), "timeout_s": -1}],
    ids=["missing-fields", "bad-base64", "invalid-value"],
)
def test_bad_job_is_a_protocol_error(data: dict[str, object]) -> None:
    with pytest.raises(ProtocolError, match="bad job"):
        job_from_dict(data)


def test_frame_layout() -> None:
    frame = encode_frame({"type": "ready", "pid": 7})
    (length,) = struct.unpack(">I", frame[:4])
    assert frame[4:] == b'{"type":"ready","pid":7}' and length == len(frame) - 4


def feed(data: bytes) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    return reader


async def test_async_reader() -> None:
    reader = feed(encode_frame({"type": "a"}) + encode_frame({"type": "b", "x": [1]}))
    assert await read_frame(reader) == {"type": "a"}
    assert await read_frame(reader) == {"type": "b", "x": [1]}
    assert await read_frame(reader) is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00\x00", "EOF inside a frame header"),
        (b"\x00\x00\x00\x09{}", "EOF inside a frame"),
        (struct.pack(">I", MAX_FRAME_BYTES + 1), "exceeds"),
        (struct.pack(">I", 2) + b"[]", "string 'type'"),
        (struct.pack(">I", 3) + b"{x}", "not JSON"),
    ],
    ids=["short-header", "short-body", "oversized", "not-object", "not-json"],
)
async def test_async_reader_rejects_bad_frames(data: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        await read_frame(feed(data))
