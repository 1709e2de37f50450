"""Status codes back into typed exceptions, for every client of our servers (the CLI, noded's
link to the control plane): callers catch `NotFound`, not `AioRpcError` with a code check."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import grpc


class RpcError(Exception):
    """A call failed with a status other than OK; `code` and `details` are the server's."""

    code = grpc.StatusCode.UNKNOWN

    def __init__(self, details: str, *, code: grpc.StatusCode | None = None) -> None:
        super().__init__(details)
        self.details = details
        if code is not None:
            self.code = code


class InvalidArgument(RpcError):
    """The request was malformed; the details name the field and why."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(RpcError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(RpcError):
    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPrecondition(RpcError):
    """Valid, but the state of the server forbids it now."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class ResourceExhausted(RpcError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unauthenticated(RpcError):
    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(RpcError):
    code = grpc.StatusCode.PERMISSION_DENIED


class Unavailable(RpcError):
    """The server could not be reached, or is shutting down."""

    code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceeded(RpcError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


class Internal(RpcError):
    """A fault on the server (or in the transport): not the caller's doing."""

    code = grpc.StatusCode.INTERNAL


_BY_CODE: dict[grpc.StatusCode, type[RpcError]] = {
    cls.code: cls
    for cls in (
        InvalidArgument,
        NotFound,
        AlreadyExists,
        FailedPrecondition,
        ResourceExhausted,
        Unauthenticated,
        PermissionDenied,
        Unavailable,
        DeadlineExceeded,
        Internal,
    )
}


def translate(exc: grpc.RpcError) -> RpcError:
    """The typed error for a failed call."""
    if isinstance(exc, grpc.Call | grpc.aio.AioRpcError):  # the aio error is not a grpc.Call
        code, details = exc.code(), exc.details() or ""
    else:
        code, details = grpc.StatusCode.UNKNOWN, str(exc)
    cls = _BY_CODE.get(code, RpcError)
    return cls(details, code=code)


@contextmanager
def rpc_errors() -> Iterator[None]:
    """Raise `translate(exc)` for any gRPC error in the block."""
    try:
        yield
    except grpc.RpcError as exc:
        raise translate(exc) from exc
