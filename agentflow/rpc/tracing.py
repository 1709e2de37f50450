"""Server spans for gRPC calls: one per call, child of the caller's W3C `traceparent` metadata.

Long-lived bidirectional streams (a node's `Connect`) are left out: a span of hours says nothing.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind

from agentflow.telemetry.tracing import Tracing, extract, inject, set_error

TRACED_PREFIX = "/agentflow.v1."


def _metadata(context: grpc.aio.ServicerContext) -> Mapping[str, str]:
    return {k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}


class ServerTracingInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, tracing: Tracing) -> None:
        self._tracing = tracing

    def _start(self, method: str, context: grpc.aio.ServicerContext) -> Span:
        service, _, name = method.lstrip("/").partition("/")
        return self._tracing.tracer.start_span(
            f"{service}/{name}",
            context=extract(_metadata(context)),
            kind=SpanKind.SERVER,
            attributes={"rpc.system": "grpc", "rpc.service": service, "rpc.method": name},
        )

    @staticmethod
    def _end(span: Span, context: grpc.aio.ServicerContext, exc: BaseException | None) -> None:
        code = context.code() if hasattr(context, "code") else None
        status = code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.OK if exc is None else None
        if status is not None:
            span.set_attribute("rpc.grpc.status_code", status.value[0])
        if exc is not None or (status is not None and status is not grpc.StatusCode.OK):
            details = context.details() if hasattr(context, "details") else None
            set_error(span, str(details or exc or (status.name if status else "error")))
        span.end()

    def _unary(self, fn: Callable[..., Awaitable[Any]], method: str) -> Callable[..., Awaitable[Any]]:
        async def handler(request: Any, context: grpc.aio.ServicerContext) -> Any:
            span = self._start(method, context)
            token = otel_context.attach(trace.set_span_in_context(span))  # the handler's spans nest
            failure: BaseException | None = None
            try:
                return await fn(request, context)
            except BaseException as exc:
                failure = exc
                raise
            finally:
                otel_context.detach(token)
                self._end(span, context, failure)

        return handler

    def _stream(self, fn: Callable[..., AsyncIterator[Any]], method: str) -> Callable[..., AsyncIterator[Any]]:
        async def handler(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            span = self._start(method, context)
            failure: BaseException | None = None
            try:
                async for item in fn(request, context):
                    yield item
            except BaseException as exc:
                failure = exc
                raise
            finally:
                self._end(span, context, failure)

        return handler

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or not self._tracing.enabled or not method.startswith(TRACED_PREFIX):
            return handler
        if handler.unary_unary is not None and inspect.iscoroutinefunction(handler.unary_unary):
            return handler._replace(unary_unary=self._unary(handler.unary_unary, method))
        if handler.stream_unary is not None and inspect.iscoroutinefunction(handler.stream_unary):
            return handler._replace(stream_unary=self._unary(handler.stream_unary, method))
        if handler.unary_stream is not None and inspect.isasyncgenfunction(handler.unary_stream):
            return handler._replace(unary_stream=self._stream(handler.unary_stream, method))
        return handler


class ClientTracingInterceptor(grpc.aio.UnaryUnaryClientInterceptor):
    """A client span per unary call, child of the caller's current span, its context sent on in
    the call's `traceparent` metadata. A streaming call carries the current span's context in its
    metadata itself (see `current_headers`)."""

    def __init__(self, tracing: Tracing) -> None:
        self._tracing = tracing

    def _start(self, details: grpc.aio.ClientCallDetails) -> tuple[Span, grpc.aio.ClientCallDetails]:
        method = details.method.decode() if isinstance(details.method, bytes) else str(details.method)
        service, _, name = method.lstrip("/").partition("/")
        span = self._tracing.tracer.start_span(
            f"{service}/{name}",
            kind=SpanKind.CLIENT,
            attributes={"rpc.system": "grpc", "rpc.service": service, "rpc.method": name},
        )
        metadata = [*(details.metadata or ()), *inject(span).items()]
        return span, details._replace(metadata=grpc.aio.Metadata(*metadata))

    @staticmethod
    def _finish(span: Span) -> Callable[[grpc.aio.Call], None]:
        def done(call: grpc.aio.Call) -> None:
            code = call.code() if not call.cancelled() else grpc.StatusCode.CANCELLED
            if isinstance(code, grpc.StatusCode):
                span.set_attribute("rpc.grpc.status_code", code.value[0])
                if code is not grpc.StatusCode.OK:
                    set_error(span, code.name)
            span.end()

        return done

    async def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        if not self._tracing.enabled:
            return await continuation(client_call_details, request)
        span, details = self._start(client_call_details)
        call = await continuation(details, request)
        call.add_done_callback(self._finish(span))
        return call
