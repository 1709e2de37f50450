"""OpenTelemetry traces: one provider per daemon, exported over OTLP or to a JSON-lines file.

A run is one trace. The control plane keeps each run's trace id and `workflow.execute` span id
in its store, sends them to the node with each assignment (a W3C `traceparent`), and the node
sends its own span's context on to the router in the HTTP `traceparent` header. Context is
passed explicitly (`TraceRef`, `Context`), never through a process-global provider.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import random
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.util import ns_to_iso_str
from opentelemetry.trace import NonRecordingSpan, Span, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from agentflow.tracecontext import TraceRef

log = logging.getLogger(__name__)

OTLP_PROTOCOLS = ("grpc", "http")
TRACE_FILE_MAX_BYTES = 64 * 1024 * 1024  # then it is renamed to <name>.1 and a new one begun
EXPORT_DELAY_MS = 500
_PROPAGATOR = TraceContextTextMapPropagator()

Attributes = Mapping[str, str | bool | int | float]


def context_of(ref: TraceRef) -> Context:
    """An OpenTelemetry context whose (remote) parent span is `ref`."""
    parent = SpanContext(
        trace_id=int(ref.trace_id, 16),
        span_id=int(ref.span_id, 16),
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    return trace.set_span_in_context(NonRecordingSpan(parent))


def ref_of(span: Span) -> TraceRef | None:
    """Where `span` is (None for a span that records nothing)."""
    ctx = span.get_span_context()
    if not ctx.is_valid:
        return None
    return TraceRef(trace_id=f"{ctx.trace_id:032x}", span_id=f"{ctx.span_id:016x}")


def current_ref() -> TraceRef | None:
    """Where the span of the running task is, if any."""
    return ref_of(trace.get_current_span())


def parent_context(traceparent: str) -> Context | None:
    ref = TraceRef.parse(traceparent) if traceparent else None
    return None if ref is None else context_of(ref)


def inject(span: Span) -> dict[str, str]:
    """The `traceparent` header that makes the receiver's spans children of `span`."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span))
    return carrier


def current_headers() -> dict[str, str]:
    """The `traceparent` of the running task's span ({} outside one)."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier


def extract(headers: Mapping[str, str]) -> Context | None:
    """The parent context a request carries (W3C trace context), or None."""
    value = headers.get("traceparent")
    return parent_context(value) if value else None


# The ids the next span of this task must have (a span recorded after the fact, e.g. a run's
# workflow.execute, whose ids were handed out when it began).
_PRESET: contextvars.ContextVar[tuple[int, int] | None] = contextvars.ContextVar("preset_span_ids", default=None)


class PresetIds(IdGenerator):
    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def generate_span_id(self) -> int:
        preset = _PRESET.get()
        return preset[1] if preset else self._rng.getrandbits(64) or 1

    def generate_trace_id(self) -> int:
        preset = _PRESET.get()
        return preset[0] if preset else self._rng.getrandbits(128) or 1


class JsonLinesExporter(SpanExporter):
    """Finished spans, one JSON object per line (`ReadableSpan.to_json` fields), in `path`;
    past TRACE_FILE_MAX_BYTES the file is renamed to `path.1` (replacing the older one)."""

    def __init__(self, path: Path, *, max_bytes: int = TRACE_FILE_MAX_BYTES) -> None:
        self.path = path
        self._max_bytes = max_bytes
        self._lock = threading.Lock()
        self._resource: tuple[Resource, Any] | None = None  # the last resource, and as to_json has it
        path.parent.mkdir(parents=True, exist_ok=True)

    def span_json(self, span: ReadableSpan) -> str:
        """`span.to_json(indent=None)`, with the resource encoded once rather than for each span
        (to_json encodes and decodes it again every time: half its cost, a span a step)."""
        resource = self._resource
        if resource is None or resource[0] is not span.resource:  # a provider has one resource
            resource = self._resource = (span.resource, json.loads(span.resource.to_json()))
        context, parent, status = span.context, span.parent, span.status
        state: dict[str, Any] = {"status_code": status.status_code.name}
        if status.description:
            state["description"] = status.description
        return json.dumps({
            "name": span.name,
            "context": _context_json(context) if context else None,
            "kind": str(span.kind),
            "parent_id": f"0x{trace.format_span_id(parent.span_id)}" if parent is not None else None,
            "start_time": ns_to_iso_str(span.start_time) if span.start_time else None,
            "end_time": ns_to_iso_str(span.end_time) if span.end_time else None,
            "status": state,
            "attributes": _attributes_json(span.attributes),
            "events": [
                {"name": e.name, "timestamp": ns_to_iso_str(e.timestamp), "attributes": _attributes_json(e.attributes)}
                for e in span.events
            ],
            "links": [{"context": _context_json(k.context), "attributes": _attributes_json(k.attributes)}
                      for k in span.links],
            "resource": resource[1],
        })  # fmt: skip

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = "".join(self.span_json(s) + "\n" for s in spans)  # one line: newlines in strings are escaped
        try:
            with self._lock:
                if self.path.exists() and self.path.stat().st_size + len(lines) > self._max_bytes:
                    self.path.replace(self.path.with_name(self.path.name + ".1"))
                with self.path.open("a") as out:
                    out.write(lines)
        except OSError as exc:
            log.warning("cannot write spans", extra={"path": str(self.path), "error": str(exc)})
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


@dataclass(frozen=True, slots=True, kw_only=True)
class TraceSettings:
    """Where a daemon's spans go: OTLP when `otlp_endpoint` is set, else `file` (None: nowhere)."""

    otlp_endpoint: str = ""
    otlp_protocol: str = "grpc"
    file: Path | None = None


def span_exporter(settings: TraceSettings) -> SpanExporter | None:
    if settings.otlp_endpoint:
        if settings.otlp_protocol == "http":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HTTPExporter

            endpoint = settings.otlp_endpoint.rstrip("/")
            return HTTPExporter(endpoint=endpoint if endpoint.endswith("/v1/traces") else endpoint + "/v1/traces")
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GRPCExporter

        endpoint = settings.otlp_endpoint
        return GRPCExporter(endpoint=endpoint, insecure=not endpoint.startswith("https://"))
    if settings.file is not None:
        return JsonLinesExporter(settings.file)
    return None


class Tracing:
    """A daemon's tracer. `Tracing.disabled()` records nothing (tests, tools)."""

    def __init__(self, provider: TracerProvider | None, *, rng: random.Random | None = None) -> None:
        self._provider = provider
        self.rng = rng or random.Random()
        self.tracer: trace.Tracer = provider.get_tracer("agentflow") if provider is not None else trace.NoOpTracer()

    @classmethod
    def configure(cls, service: str, settings: TraceSettings, *, rng: random.Random | None = None) -> Tracing:
        exporter = span_exporter(settings)
        if exporter is None:
            return cls.disabled()
        rng = rng or random.Random()
        provider = TracerProvider(
            resource=Resource.create({"service.name": service}),
            id_generator=PresetIds(rng),
            shutdown_on_exit=False,
        )
        provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=EXPORT_DELAY_MS))
        return cls(provider, rng=rng)

    @classmethod
    def disabled(cls) -> Tracing:
        return cls(None)

    @property
    def enabled(self) -> bool:
        return self._provider is not None

    @contextlib.contextmanager
    def span(
        self,
        name: str,
        *,
        parent: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes | None = None,
    ) -> Iterator[Span]:
        """A span around the block (an exception escaping it marks the span as an error)."""
        with self.tracer.start_as_current_span(
            name, context=parent, kind=kind, attributes=attributes, record_exception=True
        ) as span:
            yield span

    def record(
        self,
        name: str,
        ref: TraceRef,
        *,
        parent: TraceRef | None,
        start: datetime,
        end: datetime,
        attributes: Attributes | None = None,
        error: str = "",
        kind: SpanKind = SpanKind.INTERNAL,
    ) -> None:
        """A span that already happened, with the ids it was given when it began."""
        token = _PRESET.set((int(ref.trace_id, 16), int(ref.span_id, 16)))
        try:
            span = self.tracer.start_span(
                name,
                context=context_of(parent) if parent is not None else Context(),
                kind=kind,
                attributes=attributes,
                start_time=_nanos(start),
            )
        finally:
            _PRESET.reset(token)
        if error:
            span.set_status(Status(StatusCode.ERROR, error))
        span.end(end_time=_nanos(end))

    def flush(self, timeout_s: float = 5.0) -> None:
        if self._provider is not None:
            self._provider.force_flush(int(timeout_s * 1000))

    def shutdown(self) -> None:
        if self._provider is not None:
            self._provider.shutdown()


def _context_json(context: SpanContext) -> dict[str, str]:
    return {
        "trace_id": f"0x{trace.format_trace_id(context.trace_id)}",
        "span_id": f"0x{trace.format_span_id(context.span_id)}",
        "trace_state": repr(context.trace_state),
    }


def _attributes_json(attributes: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return dict(attributes) if attributes is not None and not isinstance(attributes, dict) else attributes


def set_error(span: Span, message: str) -> None:
    span.set_status(Status(StatusCode.ERROR, message))


def span_attributes(values: Mapping[str, Any]) -> dict[str, str | bool | int | float]:
    """The values OpenTelemetry takes as attributes (None and empty strings dropped)."""
    return {k: v for k, v in values.items() if isinstance(v, str | bool | int | float) and v != ""}


def _nanos(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000_000)
