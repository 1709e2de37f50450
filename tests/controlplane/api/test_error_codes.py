"""Each control-plane error maps to one gRPC status code, the most specific class first."""

from __future__ import annotations

import grpc
import pytest

from controlplane import errors
from controlplane.api.errors import STATUS_CODES, status_for

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
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else v.name,
)
def test_status_for(error: errors.Error, code: grpc.StatusCode) -> None:
    assert status_for(error) is code


def test_no_class_is_shadowed_by_an_earlier_base() -> None:
    classes = [cls for cls, _ in STATUS_CODES]
    for i, cls in enumerate(classes):
        assert not any(issubclass(cls, earlier) for earlier in classes[:i]), f"{cls.__name__} is unreachable"
