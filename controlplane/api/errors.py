"""Which status code each control-plane error gets on the wire (most specific first)."""

from __future__ import annotations

import grpc

from agentflow.rpc import ErrorMappingInterceptor, StatusTable
from agentflow.rpc.server import Guard
from controlplane import errors

STATUS_CODES: StatusTable = (
    (errors.NotFound, grpc.StatusCode.NOT_FOUND),
    (errors.InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (errors.ResourceExhausted, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (errors.PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (errors.StorageFull, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.StorageError, grpc.StatusCode.UNAVAILABLE),
    (errors.Error, grpc.StatusCode.INTERNAL),
)


def error_mapping(guard: Guard | None = None) -> ErrorMappingInterceptor:
    return ErrorMappingInterceptor(STATUS_CODES, guard=guard)
