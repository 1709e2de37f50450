"""A fake paid provider: a real aiohttp server on 127.0.0.1 speaking OpenAI chat completions
(`POST /v1/chat/completions`) and Anthropic Messages (`POST /v1/messages`), streaming included.

By default it answers `echo: <last user text>` with fixed usage. Tests queue scripted behaviours
(`fake.script(...)`) that the next calls take in order: an HTTP status with headers (429 with
Retry-After, 500…), a malformed body, a dropped connection (before or mid-stream), or a hold on
an `asyncio.Event` that the test releases (a slow provider without sleeping). Every call received is
recorded in `fake.calls`.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

PROMPT_TOKENS = 12
COMPLETION_TOKENS = 5


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply:
    """Answer with this status and body instead of a completion."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Hold:
    """Wait for `gate` before answering normally."""

    gate: asyncio.Event


@dataclass(frozen=True, slots=True, kw_only=True)
class Malformed:
    """Answer 200 with a body that is not a completion."""

    body: bytes = b'{"unexpected": true}'


@dataclass(frozen=True, slots=True, kw_only=True)
class Drop:
    """Close the connection: before any byte, or (streaming) after `after_chunks` chunks."""

    after_chunks: int = 0


Script = Reply | Hold | Malformed | Drop


@dataclass(frozen=True, slots=True, kw_only=True)
class Received:
    path: str
    body: dict[str, Any]
    headers: dict[str, str]


def last_user_text(messages: list[dict[str, Any]]) -> str:
    for m in reversed(messages):
        if m.get("role") == "user":
            content = m.get("content")
            if isinstance(content, str):
                return content
            return "".join(p.get("text", "") for p in content or [] if isinstance(p, dict))
    return ""


class FakeProvider:
    def __init__(self, *, words: int = 3) -> None:
        self.calls: list[Received] = []
        self._scripts: list[Script] = []
        self._holding: list[Hold] = []
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.words = words  # the answer is streamed in this many pieces
        self.arrived = asyncio.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def script(self, *steps: Script) -> None:
        self._scripts.extend(steps)

    def count(self, path_suffix: str = "") -> int:
        return sum(1 for c in self.calls if c.path.endswith(path_suffix))

    async def start(self) -> FakeProvider:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._openai)
        app.router.add_post("/v1/messages", self._anthropic)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        for step in self._scripts + self._holding:
            if isinstance(step, Hold):
                step.gate.set()  # a failed test must not leave handlers waiting
        if self._runner is not None:
            await self._runner.cleanup()

    async def _take(self, request: web.Request) -> tuple[dict[str, Any], Script | None]:
        body = await request.json()
        self.calls.append(Received(path=request.path, body=body, headers=dict(request.headers)))
        self.arrived.set()
        step = self._scripts.pop(0) if self._scripts else None
        if isinstance(step, Hold):
            self._holding.append(step)
            await step.gate.wait()
            step = None
        return body, step

    def _answer(self, body: dict[str, Any]) -> str:
        return "echo: " + last_user_text(body.get("messages") or [])

    def _pieces(self, text: str) -> list[str]:
        size = max(1, len(text) // self.words + 1)
        return [text[i : i + size] for i in range(0, len(text), size)]

    async def _scripted(self, request: web.Request, step: Script | None) -> web.StreamResponse | None:
        if isinstance(step, Reply):
            body = step.body if isinstance(step.body, bytes | str) else json.dumps(step.body or {"error": {}})
            return web.Response(status=step.status, body=body, headers=step.headers, content_type="application/json")
        if isinstance(step, Malformed):
            return web.Response(body=step.body, content_type="application/json")
        if isinstance(step, Drop) and step.after_chunks == 0:
            assert request.transport is not None
            request.transport.close()
            return web.Response()
        return None

    async def _openai(self, request: web.Request) -> web.StreamResponse:
        body, step = await self._take(request)
        scripted = await self._scripted(request, step)
        if scripted is not None:
            return scripted
        text = self._answer(body)
        model = body.get("model", "")
        usage = {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS,
                 "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS}  # fmt: skip
        if not body.get("stream"):
            return web.json_response({
                "id": "chatcmpl-fake", "object": "chat.completion", "created": 1700000000, "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": usage, "system_fingerprint": "fp_fake",
            })  # fmt: skip
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        head = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1700000000, "model": model}
        for i, piece in enumerate(self._pieces(text)):
            if isinstance(step, Drop) and i == step.after_chunks:
                assert request.transport is not None
                request.transport.close()
                return resp
            delta = {"role": "assistant", "content": piece} if i == 0 else {"content": piece}
            chunk = {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
            await resp.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
        await resp.write(
            b"data: "
            + json.dumps({**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}).encode()
            + b"\n\n"
        )
        if (body.get("stream_options") or {}).get("include_usage"):
            await resp.write(b"data: " + json.dumps({**head, "choices": [], "usage": usage}).encode() + b"\n\n")
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    async def _anthropic(self, request: web.Request) -> web.StreamResponse:
        body, step = await self._take(request)
        scripted = await self._scripted(request, step)
        if scripted is not None:
            return scripted
        text = self._answer(body)
        model = body.get("model", "")
        if not body.get("stream"):
            return web.json_response({
                "id": "msg_fake", "type": "message", "role": "assistant", "model": model,
                "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": None,
                "usage": {"input_tokens": PROMPT_TOKENS, "output_tokens": COMPLETION_TOKENS},
            })  # fmt: skip
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)

        async def event(name: str, data: dict[str, Any]) -> None:
            await resp.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())

        await event(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_fake",
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": PROMPT_TOKENS, "output_tokens": 1},
                },
            },
        )
        await event(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        )
        await event("ping", {"type": "ping"})
        for i, piece in enumerate(self._pieces(text)):
            if isinstance(step, Drop) and i == step.after_chunks:
                assert request.transport is not None
                request.transport.close()
                return resp
            await event(
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}},
            )
        await event("content_block_stop", {"type": "content_block_stop", "index": 0})
        await event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": COMPLETION_TOKENS},
            },
        )
        await event("message_stop", {"type": "message_stop"})
        await resp.write_eof()
        return resp  # fmt: skip
