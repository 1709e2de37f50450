"""OpenAI-compatible chat completions upstream (OpenAI, vLLM, Ollama, …)."""

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
from router.translate import completion_from_openai, dumps

_PASSTHROUGH = frozenset({"agentflow", "top_k", "stream", "stream_options"})  # keys that stop a verbatim forward


class OpenAIProvider:
    shape = Shape.OPENAI

    def __init__(
        self, config: ProviderConfig, *, connect_timeout: float, wall: Callable[[], float] = time.time
    ) -> None:
        self.name = config.name
        self._wall = wall  # reads HTTP-date Retry-After headers
        self._url = config.base_url + "/chat/completions"
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if config.api_key is not None:
            self._headers["Authorization"] = "Bearer " + config.api_key.reveal()
        self._connect_timeout = connect_timeout
        self._sessions: dict[str, aiohttp.ClientSession] = {}

    def _session(self, deployment: DeploymentConfig) -> aiohttp.ClientSession:
        session = self._sessions.get(deployment.name)
        if session is None:
            session = self._sessions[deployment.name] = new_session(connect_timeout=self._connect_timeout)
        return session

    def _body(self, deployment: DeploymentConfig, request: ChatRequest, *, stream: bool) -> bytes:
        source = request.original if request.shape is Shape.OPENAI else request.body
        if request.raw and not stream and source.get("model") == deployment.model and _PASSTHROUGH.isdisjoint(source):
            return request.raw  # nothing to change: forward the client's bytes
        body: dict[str, Any] = {k: v for k, v in source.items() if k != "agentflow" and k != "top_k"}
        body["model"] = deployment.model
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        else:
            body.pop("stream", None)
            body.pop("stream_options", None)
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
            keep = raw if request.shape is Shape.OPENAI else None
            return completion_from_openai(json.loads(raw), keep, now=int(time.time()))
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise UpstreamError(f"{self.name} answered a malformed chat completion: {raw[:200]!r}") from None

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
                    finish = "stop"
                    usage = Usage()
                    cid, model, created = "", deployment.model, int(time.time())
                    done = False
                    async for _, payload in sse_data(resp.content):
                        if payload == b"[DONE]":
                            done = True
                            break
                        chunk = json.loads(payload)
                        if "error" in chunk:
                            raise UpstreamError(f"{self.name} stream failed: {chunk['error']}")
                        cid = chunk.get("id") or cid
                        model = chunk.get("model") or model
                        created = chunk.get("created") or created
                        if chunk.get("usage"):
                            u = chunk["usage"]
                            details = u.get("prompt_tokens_details") or {}
                            usage = Usage(
                                input_tokens=int(u.get("prompt_tokens") or 0),
                                cached_input_tokens=int(details.get("cached_tokens") or 0),
                                output_tokens=int(u.get("completion_tokens") or 0),
                            )
                        for choice in chunk.get("choices") or ():
                            piece = (choice.get("delta") or {}).get("content")
                            if piece:
                                text.append(piece)
                                yield piece
                            if choice.get("finish_reason"):
                                finish = choice["finish_reason"]
                    if not done:
                        raise UpstreamError(f"{self.name} stream ended without [DONE]")
        except UpstreamError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise UpstreamError(f"{self.name} sent a malformed stream chunk: {exc}") from None
        except Exception as exc:
            raise map_transport_error(self.name, exc) from None
        yield Completion(
            id=cid or "chatcmpl-router",
            model=model,
            text="".join(text),
            finish_reason=finish,
            usage=usage,
            created=int(created),
        )

    async def close(self) -> None:
        for session in self._sessions.values():
            await session.close()
        self._sessions.clear()
