"""The one server interceptor that turns exceptions into gRPC status codes.

Each server passes its declarative table — (exception type, status code), most specific first,
the first match wins — and every handler of that server answers a typed exception with its code
and message. Anything not in the table is a bug: it is logged with its traceback and answered
`INTERNAL` without internals. `agentflow.wire.InvalidField` (a message field out of range) is
`INVALID_ARGUMENT` on every server.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import grpc

from agentflow.wire import InvalidField

log = logging.getLogger(__name__)

StatusTable = Sequence[tuple[type[Exception], grpc.StatusCode]]
Guard = Callable[[str, grpc.aio.ServicerContext], None]
"""Checks a call (its full method name, its context) before the handler runs; raises a typed
exception, mapped like the handler's own, to refuse it."""
SHARED: StatusTable = ((InvalidField, grpc.StatusCode.INVALID_ARGUMENT),)


class ErrorMappingInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, table: StatusTable, *, guard: Guard | None = None) -> None:
        self._table = (*SHARED, *table)
        self._guard = guard

    def status_for(self, exc: BaseException) -> grpc.StatusCode | None:
        for cls, code in self._table:
            if isinstance(exc, cls):
                return code
        return None

    async def _abort(self, context: grpc.aio.ServicerContext, exc: Exception) -> None:
        code = self.status_for(exc)
        if code is not None:
            await context.abort(code, str(exc))
        log.exception("unexpected error in RPC handler", exc_info=exc)
        await context.abort(grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}")

    def _wrap_unary_response(self, fn: Callable[..., Awaitable[Any]], method: str) -> Callable[..., Awaitable[Any]]:
        async def handler(request: Any, context: grpc.aio.ServicerContext) -> Any:
            try:
                if self._guard is not None:
                    self._guard(method, context)
                return await fn(request, context)
            except grpc.aio.AbortError:
                raise  # the handler aborted with a status of its own
            except Exception as exc:
                await self._abort(context, exc)

        return handler

    def _wrap_stream_response(
        self, fn: Callable[..., AsyncIterator[Any]], method: str
    ) -> Callable[..., AsyncIterator[Any]]:
        async def handler(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            try:
                if self._guard is not None:
                    self._guard(method, context)
                async for item in fn(request, context):
                    yield item
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                await self._abort(context, exc)

        return handler

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        # Only the asyncio handlers of our servicers are wrapped; others pass through as they are.
        method = handler_call_details.method
        if handler.unary_unary is not None and inspect.iscoroutinefunction(handler.unary_unary):
            return handler._replace(unary_unary=self._wrap_unary_response(handler.unary_unary, method))
        if handler.stream_unary is not None and inspect.iscoroutinefunction(handler.stream_unary):
            return handler._replace(stream_unary=self._wrap_unary_response(handler.stream_unary, method))
        if handler.unary_stream is not None and inspect.isasyncgenfunction(handler.unary_stream):
            return handler._replace(unary_stream=self._wrap_stream_response(handler.unary_stream, method))
        if handler.stream_stream is not None and inspect.isasyncgenfunction(handler.stream_stream):
            return handler._replace(stream_stream=self._wrap_stream_response(handler.stream_stream, method))
        return handler
