"""gRPC plumbing both sides share: one server interceptor that maps typed exceptions to status
codes from a declarative table, and one client-side translation of status codes back into
typed exceptions."""

from agentflow.rpc.client import (
    AlreadyExists,
    DeadlineExceeded,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    RpcError,
    Unauthenticated,
    Unavailable,
    rpc_errors,
    translate,
)
from agentflow.rpc.server import ErrorMappingInterceptor, StatusTable

__all__ = [
    "AlreadyExists",
    "DeadlineExceeded",
    "ErrorMappingInterceptor",
    "FailedPrecondition",
    "Internal",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "ResourceExhausted",
    "RpcError",
    "StatusTable",
    "Unauthenticated",
    "Unavailable",
    "rpc_errors",
    "translate",
]
