"""The HTTP front: OpenAI and Anthropic APIs, the node's journal/spend endpoints, health and metrics.

Routes:
  POST /v1/chat/completions     OpenAI chat completions (stream: true answers server-sent events)
  POST /v1/messages             Anthropic Messages (stream: true answers its event sequence)
  GET  /v1/models               the model names served (OpenAI list; Anthropic's when anthropic-version is sent)
  GET  /health                  {"status": "ok"}
  GET  /metrics                 Prometheus
  GET  /v1/agentflow/status     providers, breakers, cache, spend today
  GET  /v1/agentflow/journal    ?run=&step=[&after_seq=][&limit=]  journal entries in seq order
  POST /v1/agentflow/journal    {"entries": [...]}  seed entries from another node (idempotent)
  GET  /v1/agentflow/spend      ?run=[&step=][&attempt=]  tokens, USD, cache hits, replays, calls
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from opentelemetry.trace import Span, SpanKind
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from agentflow.llm import (
    ERROR_STATUS,
    ERROR_TYPE,
    HEADER_ATTEMPT,
    HEADER_BUDGET_TOKENS,
    HEADER_BUDGET_USD,
    HEADER_CACHE,
    HEADER_CALL,
    HEADER_COST_USD,
    HEADER_OVERHEAD_MS,
    HEADER_REQUEST_HASH,
    HEADER_RUN,
    HEADER_STEP,
    HEADER_TIMEOUT,
    HEADER_WORKFLOW,
    Attribution,
    CacheResult,
    ErrorCode,
    Grant,
)
from agentflow.telemetry.tracing import Tracing, extract, set_error, span_attributes
from router.completion import ChatRequest, Completion, Shape
from router.engine import CallOptions, Engine, Ticket
from router.errors import BodyTooLarge, Error, InvalidRequest
from router.translate import AnthropicStream, OpenAIStream, dumps, render
from router.validate import anthropic_request, openai_request, parse_json

log = logging.getLogger("router.http")

JSON = "application/json"
_SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "Connection": "keep-alive"}
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    402: "budget_exceeded",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_body(exc: Error, shape: Shape) -> tuple[int, bytes]:
    status = ERROR_STATUS[exc.code]
    if shape is Shape.ANTHROPIC:
        body: dict[str, Any] = {
            "type": "error",
            "error": {
                "type": _ANTHROPIC_TYPES.get(status, "api_error"),
                "message": exc.message,
                "code": exc.code.value,
            },
        }
    else:
        body = {
            "error": {"message": exc.message, "type": ERROR_TYPE[exc.code], "param": exc.param, "code": exc.code.value}
        }
    return status, dumps(body)


def _header_int(request: web.Request, name: str, *, low: int) -> int | None:
    raw = request.headers.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise InvalidRequest(f"header {name} must be an integer, got {raw!r}", param=name) from None
    if value < low:
        raise InvalidRequest(f"header {name} must be at least {low}, got {value}", param=name)
    return value


def _header_float(request: web.Request, name: str) -> float | None:
    raw = request.headers.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise InvalidRequest(f"header {name} must be a number, got {raw!r}", param=name) from None
    if not value >= 0 or value == float("inf"):
        raise InvalidRequest(f"header {name} must be a non-negative number, got {raw!r}", param=name)
    return value


def call_options(request: web.Request) -> CallOptions:
    headers = request.headers
    run, step = headers.get(HEADER_RUN), headers.get(HEADER_STEP)
    attempt = _header_int(request, HEADER_ATTEMPT, low=1)
    call = _header_int(request, HEADER_CALL, low=0)
    who = None
    if run or step or attempt is not None:
        if not run or not step or attempt is None:
            raise InvalidRequest(
                f"attributed calls need all of {HEADER_RUN}, {HEADER_STEP} and {HEADER_ATTEMPT}", param=HEADER_RUN
            )
        who = Attribution(run=run, step=step, attempt=attempt, call=call, workflow=headers.get(HEADER_WORKFLOW, ""))
    usd = _header_float(request, HEADER_BUDGET_USD)
    tokens = _header_int(request, HEADER_BUDGET_TOKENS, low=0)
    grant = Grant(usd=usd, tokens=tokens) if usd is not None or tokens is not None else None
    timeout = _header_float(request, HEADER_TIMEOUT)
    return CallOptions(attribution=who, grant=grant, timeout=timeout or None)


def _no_store(request: web.Request) -> bool:
    value = request.headers.get("Cache-Control")
    return value is not None and "no-store" in value.lower()


class Front:
    def __init__(self, engine: Engine, *, tracing: Tracing | None = None) -> None:
        self._tracing = tracing or Tracing.disabled()
        self.engine = engine
        self._max_body = engine.config.max_body_size

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self._max_body, handler_args={"max_field_size": 16384})
        # the two hot routes answer their own errors; the others go through _guard
        app.router.add_post("/v1/chat/completions", self.chat_completions)
        app.router.add_post("/chat/completions", self.chat_completions)
        app.router.add_post("/v1/messages", self.messages)
        for method, path, handler in (
            ("GET", "/v1/models", self.models),
            ("GET", "/health", self.health),
            ("GET", "/metrics", self.metrics),
            ("GET", "/v1/agentflow/status", self.status),
            ("GET", "/v1/agentflow/journal", self.journal),
            ("POST", "/v1/agentflow/journal", self.seed_journal),
            ("GET", "/v1/agentflow/spend", self.spend),
        ):
            app.router.add_route(method, path, self._guard(handler))
        self._paths = {r.resource.canonical for r in app.router.routes() if r.resource is not None}
        app.router.add_route("*", "/{tail:.*}", self._unknown)
        return app

    def _guard(self, handler: Handler) -> Handler:
        """Error objects and the x-agentflow headers for the routes other than the two completions."""

        async def guarded(request: web.Request) -> web.StreamResponse:
            started = time.perf_counter()
            try:
                response = await handler(request)
            except Error as exc:
                return self._error(exc, Shape.OPENAI, started)
            response.headers[HEADER_CACHE] = CacheResult.MISS.value
            response.headers[HEADER_OVERHEAD_MS] = f"{(time.perf_counter() - started) * 1000:.3f}"
            return response

        return guarded

    async def _unknown(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        if request.path in self._paths:
            error = Error(f"method {request.method} not allowed on {request.path}")
            return self._error(error, Shape.OPENAI, started, code=ErrorCode.INVALID_REQUEST, status=405)
        return self._error(
            Error(f"no route {request.method} {request.path}"), Shape.OPENAI, started, code=ErrorCode.NOT_FOUND
        )

    def _error(
        self, exc: Error, shape: Shape, started: float, *, code: ErrorCode | None = None, status: int | None = None
    ) -> web.Response:
        if code is not None:
            exc.code = code
        status_code, body = error_body(exc, shape)
        overhead = (time.perf_counter() - started) * 1000 if started else 0.0
        headers = {HEADER_CACHE: CacheResult.MISS.value, HEADER_OVERHEAD_MS: f"{overhead:.3f}"}
        return web.Response(status=status or status_code, body=body, content_type=JSON, headers=headers)

    async def chat_completions(self, request: web.Request) -> web.StreamResponse:
        return await self._complete(request, Shape.OPENAI)

    async def messages(self, request: web.Request) -> web.StreamResponse:
        return await self._complete(request, Shape.ANTHROPIC)

    async def _complete(self, request: web.Request, shape: Shape) -> web.StreamResponse:
        """One call, in an `llm.call` span that continues the caller's trace (its `traceparent`)."""
        attributes = span_attributes({
            "llm.api": shape.value,
            "workflow.run_id": request.headers.get(HEADER_RUN, ""),
            "agent.name": request.headers.get(HEADER_STEP, ""),
            "workflow.name": request.headers.get(HEADER_WORKFLOW, ""),
        })  # fmt: skip
        parent = extract(request.headers)
        with self._tracing.span(LLM_SPAN, parent=parent, kind=SpanKind.SERVER, attributes=attributes) as span:
            response = await self._answer(request, shape, span)
            span.set_attribute("http.response.status_code", response.status)
            if response.status >= 400:
                set_error(span, f"HTTP {response.status}")
            return response

    async def _answer(self, request: web.Request, shape: Shape, span: Span) -> web.StreamResponse:
        started = time.perf_counter()
        try:
            try:
                raw = await request.read()
            except web.HTTPRequestEntityTooLarge:
                raise BodyTooLarge(f"the request body is larger than the limit of {self._max_body} bytes") from None
            body = parse_json(raw)
            options = call_options(request)
            no_store = _no_store(request)
            chat = (
                openai_request(body, no_store=no_store, raw=raw)
                if shape is Shape.OPENAI
                else anthropic_request(body, no_store=no_store)
            )
            ticket = await self.engine.submit(chat, options)
        except Error as exc:
            return self._error(exc, shape, started)
        span.set_attributes(span_attributes({"llm.request.model": chat.model, "llm.stream": chat.stream,
                                             "llm.cache": ticket.cache.value}))  # fmt: skip
        if chat.stream:
            streamed = await self._stream(request, chat, ticket, started)
            _describe(span, ticket)
            return streamed
        waited = 0.0
        try:
            if ticket.completion is None:
                before = time.perf_counter()
                completion = await ticket.result()
                waited = time.perf_counter() - before
            else:
                completion = ticket.completion
        except Error as exc:
            return self._error(exc, shape, started + waited)
        body_bytes = render(completion, shape)
        _describe(span, ticket)
        return web.Response(body=body_bytes, content_type=JSON, headers=self._headers(ticket, started, waited))

    def _headers(self, ticket: Ticket, started: float, waited: float) -> dict[str, str]:
        if ticket.cache is CacheResult.MISS and ticket.call is not None and ticket.call.done:
            waited = ticket.call.upstream_s  # provider calls, limit waits and backoff: not the router's own time
        overhead = max(0.0, time.perf_counter() - started - waited) * 1000
        headers = {
            HEADER_CACHE: ticket.cache.value,
            HEADER_OVERHEAD_MS: f"{overhead:.3f}",
            HEADER_COST_USD: f"{ticket.cost_usd:.10f}" if ticket.cost_usd else "0",
        }
        if ticket.request_hash:  # not computed for sampled calls without attribution
            headers[HEADER_REQUEST_HASH] = ticket.request_hash
        return headers

    async def _stream(
        self, request: web.Request, chat: ChatRequest, ticket: Ticket, started: float
    ) -> web.StreamResponse:
        shape = chat.shape
        waited = 0.0
        call = ticket.call
        if call is not None:
            before = time.perf_counter()
            await call.first()
            waited = time.perf_counter() - before
            if call.error is not None and not call.streamed:
                return self._error(call.error, shape, started + waited)
        response = web.StreamResponse(headers={**_SSE_HEADERS, **self._headers(ticket, started, waited)})
        response.enable_chunked_encoding()
        try:
            await response.prepare(request)
            if call is None:
                assert ticket.completion is not None
                await response.write(self._whole_stream(ticket.completion, shape))
            else:
                await self._follow(response, ticket, shape)
            await response.write_eof()
        except (ConnectionResetError, ConnectionError):
            log.debug("client went away mid-stream; the call carries on", extra={"model": chat.model})
        return response

    @staticmethod
    def _whole_stream(completion: Completion, shape: Shape) -> bytes:
        writer: OpenAIStream | AnthropicStream
        if shape is Shape.OPENAI:
            writer = OpenAIStream(id=completion.id, model=completion.model, created=completion.created)
        else:
            writer = AnthropicStream(
                id=completion.id, model=completion.model, input_tokens=completion.usage.input_tokens
            )
        head = writer.delta(completion.text) if completion.text else b""
        return head + writer.finish(completion)

    async def _follow(self, response: web.StreamResponse, ticket: Ticket, shape: Shape) -> None:
        call = ticket.call
        assert call is not None
        writer: OpenAIStream | AnthropicStream
        stream_id = ticket.request_hash[:24] or os.urandom(12).hex()
        if shape is Shape.OPENAI:
            writer = OpenAIStream(
                id="chatcmpl-" + stream_id, model=call.model or ticket.model, created=int(time.time())
            )
        else:
            writer = AnthropicStream(id="msg_" + stream_id, model=call.model or ticket.model)
        async for text in call.deltas():
            await response.write(writer.delta(text))
        if call.error is not None:
            _, payload = error_body(call.error, shape)
            await response.write(writer.error(json.loads(payload)))
        else:
            assert call.completion is not None
            await response.write(writer.finish(call.completion))

    async def models(self, request: web.Request) -> web.Response:
        names = self.engine.routes.model_names()
        if "anthropic-version" in request.headers:
            data: dict[str, Any] = {
                "data": [
                    {"type": "model", "id": n, "display_name": n, "created_at": "1970-01-01T00:00:00Z"} for n in names
                ],
                "has_more": False,
                "first_id": names[0] if names else None,
                "last_id": names[-1] if names else None,
            }
        else:
            data = {
                "object": "list",
                "data": [{"id": n, "object": "model", "created": 0, "owned_by": "agentflow"} for n in names],
            }
        return web.Response(body=dumps(data), content_type=JSON)

    async def health(self, request: web.Request) -> web.Response:
        return web.Response(body=b'{"status":"ok"}', content_type=JSON)

    async def metrics(self, request: web.Request) -> web.Response:
        body = generate_latest(self.engine.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def status(self, request: web.Request) -> web.Response:
        return web.Response(body=dumps(self.engine.status()), content_type=JSON)

    @staticmethod
    def _query_int(request: web.Request, name: str, default: int | None, *, low: int) -> int | None:
        raw = request.query.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise InvalidRequest(f"query parameter {name} must be an integer, got {raw!r}", param=name) from None
        if value < low:
            raise InvalidRequest(f"query parameter {name} must be at least {low}, got {value}", param=name)
        return value

    async def journal(self, request: web.Request) -> web.Response:
        run = request.query.get("run")
        if not run:
            raise InvalidRequest("query parameter run is required", param="run")
        after = self._query_int(request, "after_seq", 0, low=0) or 0
        limit = self._query_int(request, "limit", 1000, low=1) or 1000
        entries = await self.engine.journal.entries(
            run=run, step=request.query.get("step") or None, after_seq=after, limit=min(limit, 1000)
        )
        last = entries[-1].seq if entries else after
        data = {"entries": [e.to_json() for e in entries], "last_seq": last}
        return web.Response(body=dumps(data), content_type=JSON)

    async def seed_journal(self, request: web.Request) -> web.Response:
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise BodyTooLarge(f"the request body is larger than the limit of {self._max_body} bytes") from None
        body = parse_json(raw)
        entries = body.get("entries")
        if not isinstance(entries, list):
            raise InvalidRequest("entries must be an array of journal entries", param="entries")
        added = await self.engine.journal.seed(entries)
        return web.Response(body=dumps({"received": len(entries), "added": added}), content_type=JSON)

    async def spend(self, request: web.Request) -> web.Response:
        run = request.query.get("run")
        if not run:
            raise InvalidRequest("query parameter run is required", param="run")
        attempt = self._query_int(request, "attempt", None, low=1)
        data = await self.engine.ledger.spend(run=run, step=request.query.get("step") or None, attempt=attempt)
        return web.Response(body=dumps(data), content_type=JSON)


LLM_SPAN = "llm.call"


def _describe(span: Span, ticket: Ticket) -> None:
    """What the call came to: model, provider, tokens, cost, cache result."""
    completion = ticket.completion or (ticket.call.completion if ticket.call is not None else None)
    values: dict[str, object] = {
        "llm.model": ticket.model,
        "llm.provider": ticket.provider,
        "llm.cache": ticket.cache.value,
        "llm.cost_usd": ticket.cost_usd,
    }
    if completion is not None:
        values.update({"llm.response.model": completion.model, "llm.usage.input_tokens": completion.usage.input_tokens,
                       "llm.usage.output_tokens": completion.usage.output_tokens})  # fmt: skip
    span.set_attributes(span_attributes(values))
