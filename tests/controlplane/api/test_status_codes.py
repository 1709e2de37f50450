"""Each control-plane error maps to one gRPC status code, the most specific class first."""

from __future__ import annotations

import grpc
import pytest

from agentflow.wire import InvalidField
from controlplane import errors
from controlplane.api.errors import STATUS_CODES, error_mapping

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (errors.NotFound("x"), grpc.StatusCode.NOT_FOUND),
        (errors.InvalidArgument("x"), grpc.StatusCode.INVALID_ARGUMENT),
        (errors.FailedPrecondition("x"), grpc.StatusCode.FAILED_PRECONDITION),
        (errors.AlreadyExists("x"), grpc.StatusCode.ALREADY_EXISTS),
        (errors.ResourceExhausted("x"), grpc.StatusCode.RESOURCE_EXHAUSTED),
        (errors.Unauthenticated("x"), grpc.StatusCode.UNAUTHENTICATED),
        (errors.StorageFull("x"), grpc.StatusCode.RESOURCE_EXHAUSTED),
        (errors.StorageError("x"), grpc.StatusCode.UNAVAILABLE),
        (errors.Error("x"), grpc.StatusCode.INTERNAL),
        (InvalidField("x"), grpc.StatusCode.INVALID_ARGUMENT),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else v.name,
)
def test_status_for(error: Exception, code: grpc.StatusCode) -> None:
    assert error_mapping().status_for(error) is code


def test_an_error_not_in_the_table_has_no_code_and_becomes_internal_at_the_edge() -> None:
    assert error_mapping().status_for(KeyError("x")) is None


def test_no_class_is_shadowed_by_an_earlier_base() -> None:
    classes = [cls for cls, _ in STATUS_CODES]
    for i, cls in enumerate(classes):
        assert not any(issubclass(cls, earlier) for earlier in classes[:i]), f"{cls.__name__} is unreachable"
