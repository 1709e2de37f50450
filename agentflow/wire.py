"""Decoding protobuf's well-known types safely: every value a peer may send maps to a result or
to `InvalidField`, never to an OverflowError deep inside a handler."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

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
