"""What every provider offers, and the mapping of upstream HTTP failures to router errors."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import aiohttp

from router.completion import ChatRequest, Completion, Shape
from router.config import DeploymentConfig
from router.errors import (
    ContextLengthExceeded,
    RateLimited,
    UpstreamError,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)

StreamItem = str | Completion
"""A provider's stream yields text deltas, then one final `Completion` (text, finish reason, usage)."""

CONTEXT_LENGTH_MARKERS = ("context_length_exceeded", "maximum context length", "prompt is too long", "context window")


class Provider(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def shape(self) -> Shape | None:
        """The API shape it speaks; None for the dev provider."""
        ...

    async def complete(self, deployment: DeploymentConfig, request: ChatRequest, *, limit_s: float) -> Completion: ...

    def stream(
        self, deployment: DeploymentConfig, request: ChatRequest, *, limit_s: float
    ) -> AsyncIterator[StreamItem]:
        """Raises the same errors as `complete` before the first item; a failure later ends the stream."""
        ...

    async def close(self) -> None: ...


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP-date (relative to wall `now`)."""
    if not value:
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - now)


def _message_of(body: bytes) -> str:
    try:
        data: Any = json.loads(body)
    except ValueError:
        return body[:300].decode(errors="replace")
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        parts = [str(error.get(k)) for k in ("type", "code", "message") if error.get(k)]
        return ": ".join(parts)
    return body[:300].decode(errors="replace")


def error_for_status(provider: str, status: int, body: bytes, headers: Any, *, now: float) -> UpstreamError:
    message = _message_of(body)
    what = f"{provider} answered HTTP {status}: {message}"
    if status == 429:
        return RateLimited(what, status=status, retry_after=parse_retry_after(headers.get("Retry-After"), now=now))
    if status >= 500 or status == 408:
        return UpstreamError(what, status=status, retry_after=parse_retry_after(headers.get("Retry-After"), now=now))
    if status in (400, 413) and any(m in message.lower() for m in CONTEXT_LENGTH_MARKERS):
        return ContextLengthExceeded(what, status=status)
    return UpstreamRejected(what, status=status)


def map_transport_error(provider: str, exc: BaseException) -> UpstreamError:
    """An aiohttp or timeout exception as the router error it means."""
    if isinstance(exc, UpstreamError):
        return exc
    if isinstance(exc, asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return UpstreamTimeout(f"{provider} did not answer in time")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return UpstreamUnavailable(f"cannot connect to {provider}: {exc.os_error or exc}")
    if isinstance(exc, aiohttp.ClientError):
        return UpstreamError(f"{provider}: connection failed mid-call: {type(exc).__name__}: {exc}")
    raise exc


def new_session(*, connect_timeout: float, limit: int = 256) -> aiohttp.ClientSession:
    """One keep-alive session per deployment, without the per-request extras aiohttp can skip."""
    connector = aiohttp.TCPConnector(limit=limit, keepalive_timeout=60, enable_cleanup_closed=False)
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout),
        auto_decompress=True,
        skip_auto_headers=("User-Agent",),
        raise_for_status=False,
        json_serialize=json.dumps,
    )


async def sse_data(content: aiohttp.StreamReader) -> AsyncIterator[tuple[str, bytes]]:
    """(event name, data) of each server-sent event; the name is "" when the event has none."""
    event = ""
    data: list[bytes] = []
    async for line in content:
        line = line.rstrip(b"\r\n")
        if not line:
            if data:
                yield event, b"\n".join(data)
            event, data = "", []
        elif line.startswith(b"data:"):
            data.append(line[5:].lstrip(b" "))
        elif line.startswith(b"event:"):
            event = line[6:].strip().decode()
    if data:
        yield event, b"\n".join(data)
