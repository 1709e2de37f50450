"""Conversions both ends of the wire share: vocabulary enums <-> protobuf enums (by member name),
and protobuf's well-known types decoded safely: every value a peer may send maps to a result or
to `InvalidField`, never to an OverflowError deep inside a handler."""

from __future__ import annotations

import enum
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast

from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

MAX_DURATION = timedelta(days=3650)
"""Longest duration accepted on the wire (ten years): more than any deadline or timeout needs."""
_NANOS_PER_SECOND = 1_000_000_000


class InvalidField(ValueError):
    """A message field holds a value out of its range; the text names the field and the reason."""


def duration(value: Duration, *, field: str) -> timedelta:
    """`value` as a timedelta; InvalidField for negative, malformed or absurdly long durations."""
    mixed_signs = value.seconds and value.nanos and (value.seconds < 0) != (value.nanos < 0)
    if abs(value.nanos) >= _NANOS_PER_SECOND or mixed_signs:
        raise InvalidField(f"{field}: {value.seconds}s {value.nanos}ns is not a valid duration")
    if value.seconds < 0 or value.nanos < 0:
        raise InvalidField(f"{field}: must not be negative")
    if value.seconds > MAX_DURATION.total_seconds():
        raise InvalidField(f"{field}: longer than {MAX_DURATION.days} days")
    return timedelta(seconds=value.seconds, microseconds=value.nanos // 1000)


def optional_duration(parent: Message, name: str, *, field: str) -> timedelta | None:
    """The Duration field `name` of `parent` as a timedelta, or None when it is unset."""
    return duration(getattr(parent, name), field=field) if parent.HasField(name) else None


def timestamp(value: Timestamp, *, field: str) -> datetime:
    """`value` as an aware UTC datetime; InvalidField outside years 1 to 9999 or for bad nanos."""
    if not 0 <= value.nanos < _NANOS_PER_SECOND:
        raise InvalidField(f"{field}: {value.nanos} is not a valid number of nanoseconds")
    try:
        return datetime.fromtimestamp(value.seconds, tz=UTC) + timedelta(microseconds=value.nanos // 1000)
    except (OverflowError, OSError, ValueError):
        raise InvalidField(f"{field}: {value.seconds}s is outside the years 1 to 9999") from None


E = TypeVar("E", bound=enum.Enum)
P = TypeVar("P", bound=int)


def _prefix(pb_enum: Any) -> str:
    """`RUN_STATUS_` for the protobuf enum whose zero value is `RUN_STATUS_UNSPECIFIED`."""
    return str(pb_enum.Name(0)).removesuffix("UNSPECIFIED")


def to_pb(value: enum.Enum, pb_enum: type[P]) -> P:
    """The protobuf value of a vocabulary member: `to_pb(RunStatus.FAILED, types_pb2.RunStatus)`."""
    wrapper: Any = pb_enum
    return cast(P, wrapper.Value(_prefix(wrapper) + value.name))


def from_pb(cls: type[E], pb_enum: Any, number: int, *, field: str) -> E:
    """The vocabulary member for a protobuf number; InvalidField for unset or unknown values."""
    prefix = _prefix(pb_enum)
    try:
        name = str(pb_enum.Name(number)).removeprefix(prefix)
        return cls[name]
    except (ValueError, KeyError):
        what = "must be set" if number == 0 else f"{number} is not a known value"
        raise InvalidField(f"{field}: {what}") from None
