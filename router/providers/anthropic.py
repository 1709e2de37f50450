"""Anthropic Messages API upstream."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp

from router.completion import ChatRequest, Completion, Shape, Usage
from router.config import DeploymentConfig, ProviderConfig
from router.errors import UpstreamError
from router.providers.base import StreamItem, error_for_status, map_transport_error, new_session, sse_data
from router.translate import (
    anthropic_usage,
    completion_from_anthropic,
    dumps,
    finish_from_anthropic,
    openai_to_anthropic_request,
)

ANTHROPIC_VERSION = "2023-06-01"


class AnthropicProvider:
    shape = Shape.ANTHROPIC

    def __init__(
        self, config: ProviderConfig, *, connect_timeout: float, wall: Callable[[], float] = time.time
    ) -> None:
        self.name = config.name
        self._wall = wall  # reads HTTP-date Retry-After headers
        self._url = config.base_url + "/v1/messages"
        self._headers = {"Content-Type": "application/json", "anthropic-version": ANTHROPIC_VERSION}
        if config.api_key is not None:
            self._headers["x-api-key"] = config.api_key.reveal()
        self._connect_timeout = connect_timeout
        self._sessions: dict[str, aiohttp.ClientSession] = {}

    def _session(self, deployment: DeploymentConfig) -> aiohttp.ClientSession:
        session = self._sessions.get(deployment.name)
        if session is None:
            session = self._sessions[deployment.name] = new_session(connect_timeout=self._connect_timeout)
        return session

    def _body(self, deployment: DeploymentConfig, request: ChatRequest, *, stream: bool) -> bytes:
        body: dict[str, Any]
        if request.shape is Shape.ANTHROPIC:
            body = {k: v for k, v in request.original.items() if k != "agentflow"}
            body["model"] = deployment.model
        else:
            body = openai_to_anthropic_request(request.body, deployment.model)
        if stream:
            body["stream"] = True
        else:
            body.pop("stream", None)
        return dumps(body)

    async def complete(self, deployment: DeploymentConfig, request: ChatRequest, *, limit_s: float) -> Completion:
        data = self._body(deployment, request, stream=False)
        try:
            async with asyncio.timeout(limit_s):
                async with self._session(deployment).post(self._url, data=data, headers=self._headers) as resp:
                    raw = await resp.read()
                    status = resp.status
                    headers = resp.headers
        except Exception as exc:
            raise map_transport_error(self.name, exc) from None
        if status != 200:
            raise error_for_status(self.name, status, raw, headers, now=self._wall())
        try:
            keep = raw if request.shape is Shape.ANTHROPIC else None
            return completion_from_anthropic(json.loads(raw), keep, now=int(time.time()))
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise UpstreamError(f"{self.name} answered a malformed message: {raw[:200]!r}") from None

    async def stream(
        self, deployment: DeploymentConfig, request: ChatRequest, *, limit_s: float
    ) -> AsyncIterator[StreamItem]:
        data = self._body(deployment, request, stream=True)
        session = self._session(deployment)
        try:
            async with asyncio.timeout(limit_s):
                async with session.post(self._url, data=data, headers=self._headers) as resp:
                    if resp.status != 200:
                        raise error_for_status(
                            self.name, resp.status, await resp.read(), resp.headers, now=self._wall()
                        )
                    text: list[str] = []
                    start: dict[str, Any] = {}
                    usage: dict[str, Any] = {}
                    finish = "stop"
                    stopped = False
                    async for _, payload in sse_data(resp.content):
                        event = json.loads(payload)
                        kind = event.get("type")
                        if kind == "message_start":
                            start = event.get("message") or {}
                            usage.update(start.get("usage") or {})
                        elif kind == "content_block_delta":
                            delta = event.get("delta") or {}
                            if delta.get("type") == "text_delta" and delta.get("text"):
                                text.append(delta["text"])
                                yield delta["text"]
                        elif kind == "message_delta":
                            finish = finish_from_anthropic((event.get("delta") or {}).get("stop_reason"))
                            usage.update({k: v for k, v in (event.get("usage") or {}).items() if v is not None})
                        elif kind == "message_stop":
                            stopped = True
                            break
                        elif kind == "error":
                            raise UpstreamError(f"{self.name} stream failed: {event.get('error')}")
                    if not stopped:
                        raise UpstreamError(f"{self.name} stream ended without message_stop")
        except UpstreamError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise UpstreamError(f"{self.name} sent a malformed stream event: {exc}") from None
        except Exception as exc:
            raise map_transport_error(self.name, exc) from None
        u: Usage = anthropic_usage(usage)
        yield Completion(
            id=str(start.get("id") or "msg_router"),
            model=str(start.get("model") or deployment.model),
            text="".join(text),
            finish_reason=finish,
            usage=u,
            created=int(time.time()),
        )

    async def close(self) -> None:
        for session in self._sessions.values():
            await session.close()
        self._sessions.clear()
