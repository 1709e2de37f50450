"""W3C trace context (`traceparent`) as a plain value, without the OpenTelemetry SDK, so that
stored records and wire messages can carry it."""

from __future__ import annotations

import secrets
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TraceRef:
    """A span's place in a trace: 32 and 16 lower-case hex digits."""

    trace_id: str
    span_id: str

    @classmethod
    def new(cls, *, trace_id: str | None = None) -> TraceRef:
        """A new span id, in a new trace unless `trace_id` is given."""
        return cls(trace_id=trace_id or _nonzero_hex(16), span_id=new_span_id())

    @classmethod
    def parse(cls, traceparent: str) -> TraceRef | None:
        """The trace and parent span of a `traceparent` header; None if it is not one."""
        parts = traceparent.strip().split("-")
        if len(parts) != 4 or len(parts[0]) != 2 or len(parts[1]) != 32 or len(parts[2]) != 16:
            return None
        try:
            trace_id, span_id = int(parts[1], 16), int(parts[2], 16)
        except ValueError:
            return None
        if not trace_id or not span_id:
            return None
        return cls(trace_id=parts[1].lower(), span_id=parts[2].lower())

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-01"


def new_span_id() -> str:
    return _nonzero_hex(8)


def _nonzero_hex(nbytes: int) -> str:
    while True:
        value = secrets.token_hex(nbytes)
        if int(value, 16):
            return value
