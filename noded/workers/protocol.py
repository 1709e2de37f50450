"""The pipe protocol between the pool and its worker processes.

Each message is a frame: a 4-byte big-endian length, then that many bytes of UTF-8 JSON
(one object with a ``"type"``). The pool writes to the worker's stdin, the worker writes
to its original stdout (see ``worker_main``).

    worker → pool   {"type": "ready", "pid": 123, "fingerprint": "wasmtime-50.0.1;..."}
    pool → worker   {"type": "job", "job": <StepJob as dict>}
    worker → pool   {"type": "result", "result": <ExecResult as dict>}
                    {"type": "error", "error": "<host-side exception>"}

While a job runs, the guest's host calls that the node answers (``llm.complete``) travel up and
back, one at a time, before the result:

    worker → pool   {"type": "host_call", "op": "llm.complete", "request": <the guest's JSON>}
    pool → worker   {"type": "host_reply", "response": <JSON>}
                    {"type": "host_reply", "code": -8, "log": "<line for the step's log>"}

One job at a time per worker; closing the worker's stdin asks it to exit.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import struct
from typing import Any

from agentflow.vocabulary import Capability, FailureKind
from noded.sandbox import ExecResult, StepJob
from noded.workers.errors import ProtocolError

MAX_FRAME_BYTES = 64 * 1024 * 1024
_HEADER = struct.Struct(">I")

READY = "ready"
JOB = "job"
RESULT = "result"
ERROR = "error"
HOST_CALL = "host_call"
HOST_REPLY = "host_reply"


def encode_frame(message: dict[str, Any]) -> bytes:
    # ASCII-only JSON: any str (even one holding a lone surrogate) encodes safely.
    body = json.dumps(message, separators=(",", ":")).encode("ascii")
    if len(body) > MAX_FRAME_BYTES:
        raise ProtocolError(f"frame of {len(body)} bytes exceeds {MAX_FRAME_BYTES}")
    return _HEADER.pack(len(body)) + body


def _decode_body(body: bytes) -> dict[str, Any]:
    try:
        message = json.loads(body)
    except ValueError as exc:
        raise ProtocolError(f"frame is not JSON: {exc}") from exc
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise ProtocolError("frame is not an object with a string 'type'")
    return message


def _check_length(length: int) -> None:
    if length > MAX_FRAME_BYTES:
        raise ProtocolError(f"frame of {length} bytes exceeds {MAX_FRAME_BYTES}")


async def read_frame(reader: asyncio.StreamReader) -> dict[str, Any] | None:
    """The next message, or None on a clean EOF between frames."""
    try:
        header = await reader.readexactly(_HEADER.size)
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise ProtocolError("EOF inside a frame header") from exc
    (length,) = _HEADER.unpack(header)
    _check_length(length)
    try:
        body = await reader.readexactly(length)
    except asyncio.IncompleteReadError as exc:
        raise ProtocolError("EOF inside a frame") from exc
    return _decode_body(body)


def _read_exactly(fd: int, n: int) -> bytes:
    chunks: list[bytes] = []
    while n:
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def read_frame_sync(fd: int) -> dict[str, Any] | None:
    """Blocking ``read_frame`` on a raw file descriptor (used by the worker)."""
    header = _read_exactly(fd, _HEADER.size)
    if not header:
        return None
    if len(header) < _HEADER.size:
        raise ProtocolError("EOF inside a frame header")
    (length,) = _HEADER.unpack(header)
    _check_length(length)
    body = _read_exactly(fd, length)
    if len(body) < length:
        raise ProtocolError("EOF inside a frame")
    return _decode_body(body)


def write_frame_sync(fd: int, message: dict[str, Any]) -> None:
    """Blocking write of one whole frame to a raw file descriptor."""
    view = memoryview(encode_frame(message))
    while view:
        written = os.write(fd, view)
        view = view[written:]


def job_to_dict(job: StepJob) -> dict[str, Any]:
    return {
        "digest": job.digest,
        "module_path": job.module_path,
        "stdin": base64.b64encode(job.stdin).decode("ascii"),
        "timeout_s": job.timeout_s,
        "memory_limit_bytes": job.memory_limit_bytes,
        "scratch_dir": job.scratch_dir,
        "allowed_paths": list(job.allowed_paths),
        "writable_paths": list(job.writable_paths),
        "capabilities": sorted(job.capabilities),
        "max_stdout_bytes": job.max_stdout_bytes,
        "max_stderr_bytes": job.max_stderr_bytes,
    }


def job_from_dict(data: dict[str, Any]) -> StepJob:
    try:
        return StepJob(
            digest=str(data["digest"]),
            module_path=str(data["module_path"]),
            stdin=base64.b64decode(data["stdin"], validate=True),
            timeout_s=float(data["timeout_s"]),
            memory_limit_bytes=int(data["memory_limit_bytes"]),
            scratch_dir=str(data["scratch_dir"]),
            allowed_paths=tuple(str(p) for p in data.get("allowed_paths", ())),
            writable_paths=tuple(str(p) for p in data.get("writable_paths", ())),
            capabilities=frozenset(Capability(c) for c in data.get("capabilities", ())),
            max_stdout_bytes=int(data["max_stdout_bytes"]),
            max_stderr_bytes=int(data["max_stderr_bytes"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ProtocolError(f"bad job: {exc!r}") from exc


def result_to_dict(result: ExecResult) -> dict[str, Any]:
    return {
        "exit_code": result.exit_code,
        "trap": result.trap,
        "failure_kind": result.failure_kind,
        "error": result.error,
        "output_json": result.output_json,
        "stderr": result.stderr,
        "duration_s": result.duration_s,
        "denied_host_calls": result.denied_host_calls,
        "cpu_s": result.cpu_s,
        "memory_bytes": result.memory_bytes,
        "host_calls": result.host_calls,
    }


def result_from_dict(data: dict[str, Any]) -> ExecResult:
    try:
        return ExecResult(
            exit_code=None if data["exit_code"] is None else int(data["exit_code"]),
            trap=None if data["trap"] is None else str(data["trap"]),
            failure_kind=None if data["failure_kind"] is None else FailureKind(data["failure_kind"]),
            error=str(data["error"]),
            output_json=None if data["output_json"] is None else str(data["output_json"]),
            stderr=str(data["stderr"]),
            duration_s=float(data["duration_s"]),
            denied_host_calls=int(data["denied_host_calls"]),
            cpu_s=float(data["cpu_s"]),
            memory_bytes=int(data["memory_bytes"]),
            host_calls=int(data["host_calls"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ProtocolError(f"bad result: {exc!r}") from exc
