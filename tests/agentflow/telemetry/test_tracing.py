"""`agentflow.telemetry.tracing` and `agentflow.tracecontext`: trace context values, spans
recorded after the fact with the ids they were given, and the JSON-lines exporter."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult

from agentflow.telemetry.options import otlp_endpoint, trace_settings
from agentflow.telemetry.tracing import (
    JsonLinesExporter,
    TraceSettings,
    Tracing,
    context_of,
    current_headers,
    inject,
    parent_context,
    ref_of,
)
from agentflow.tracecontext import TraceRef

pytestmark = pytest.mark.unit

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_traceparent_round_trips_and_bad_ones_are_refused() -> None:
    ref = TraceRef.new()
    assert len(ref.trace_id) == 32 and len(ref.span_id) == 16
    assert TraceRef.parse(ref.traceparent) == ref
    assert TraceRef.new(trace_id=ref.trace_id).trace_id == ref.trace_id
    zeros, gs, ones, span = "0" * 32, "g" * 32, "1" * 32, "1" * 16
    for bad in ("", "00-abc-def-01", f"00-{zeros}-{span}-01", f"00-{gs}-{span}-01", f"00-{ones}-{'0' * 16}-01",
                f"00-{ones}-{span}"):  # fmt: skip
        assert TraceRef.parse(bad) is None, bad
    assert parent_context("not a traceparent") is None


def test_a_recorded_span_keeps_its_preset_ids_parent_and_times(tmp_path: Path) -> None:
    tracing = Tracing.configure("svc", TraceSettings(file=tmp_path / "t.jsonl"))
    root, parent = TraceRef.new(), TraceRef.new()
    tracing.record("workflow.execute", root, parent=None, start=T0, end=T0 + timedelta(seconds=3),
                   attributes={"workflow.name": "w"}, error="it failed")  # fmt: skip
    child = TraceRef.new(trace_id=parent.trace_id)
    tracing.record("x", child, parent=parent, start=T0, end=T0 + timedelta(seconds=1))
    tracing.shutdown()
    first, second = read(tmp_path / "t.jsonl")
    assert first["context"]["trace_id"] == "0x" + root.trace_id and first["context"]["span_id"] == "0x" + root.span_id
    assert first["parent_id"] is None and first["attributes"] == {"workflow.name": "w"}
    assert first["start_time"] == "2026-01-02T03:04:05.000000Z" and first["end_time"] == "2026-01-02T03:04:08.000000Z"
    assert first["status"] == {"status_code": "ERROR", "description": "it failed"}
    assert first["resource"]["attributes"]["service.name"] == "svc"
    assert second["parent_id"] == "0x" + parent.span_id and second["context"]["trace_id"] == "0x" + parent.trace_id


def test_spans_nest_and_carry_their_context_on(tmp_path: Path) -> None:
    tracing = Tracing.configure("svc", TraceSettings(file=tmp_path / "t.jsonl"))
    remote = TraceRef.new()
    with tracing.span("outer", parent=context_of(remote)) as outer:
        with tracing.span("inner") as inner:
            inner_ref = ref_of(inner)
            assert inner_ref is not None
            assert current_headers() == {"traceparent": f"00-{remote.trace_id}-{inner_ref.span_id}-01"}
        header = inject(outer)["traceparent"]
    assert current_headers() == {}
    tracing.shutdown()
    inner_span, outer_span = read(tmp_path / "t.jsonl")
    assert outer_span["parent_id"] == "0x" + remote.span_id
    assert inner_span["parent_id"] == outer_span["context"]["span_id"]
    assert TraceRef.parse(header) == TraceRef(trace_id=remote.trace_id, span_id=outer_span["context"]["span_id"][2:])


def test_an_exception_marks_its_span_as_an_error(tmp_path: Path) -> None:
    tracing = Tracing.configure("svc", TraceSettings(file=tmp_path / "t.jsonl"))
    with pytest.raises(ValueError), tracing.span("boom"):
        raise ValueError("bad input")
    tracing.shutdown()
    (span,) = read(tmp_path / "t.jsonl")
    assert span["status"]["status_code"] == "ERROR" and "bad input" in span["status"]["description"]
    assert span["events"][0]["name"] == "exception"


def test_disabled_tracing_records_nothing_and_propagates_nothing() -> None:
    tracing = Tracing.disabled()
    assert not tracing.enabled
    with tracing.span("x") as span:
        assert ref_of(span) is None
        assert current_headers() == {}


def exporting_to(exporter: JsonLinesExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def test_the_file_is_rotated_past_its_size(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    tracer = exporting_to(JsonLinesExporter(path, max_bytes=1500)).get_tracer("t")
    for name in ("a", "b", "c"):  # each line is some 600 bytes: the third does not fit
        tracer.start_span(name).end()
    assert [s["name"] for s in read(path.with_name("t.jsonl.1"))] == ["a", "b"]
    assert [s["name"] for s in read(path)] == ["c"]


def test_each_line_is_what_to_json_makes_of_the_span(tmp_path: Path) -> None:
    """The exporter encodes the resource once; every line must still equal `to_json`."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.trace import Link, SpanKind, Status, StatusCode

    exporter = JsonLinesExporter(tmp_path / "t.jsonl")
    tracer = TracerProvider(resource=Resource.create({"service.name": "noded", "n": 3})).get_tracer("t")
    with tracer.start_as_current_span("parent", attributes={"a": "x", "b": 2}) as parent:
        child = tracer.start_span("child", kind=SpanKind.CLIENT, links=[Link(parent.get_span_context(), {"l": 1})])
        child.add_event("retry", {"attempt": 2, "why": "line\nbreak \u00e9"})
        child.set_status(Status(StatusCode.ERROR, "it failed"))
        child.end()
    bare = tracer.start_span("bare")
    bare.end()
    for span in (parent, child, bare):
        assert isinstance(span, ReadableSpan)
        assert exporter.span_json(span) == span.to_json(indent=None)
        assert exporter.span_json(span) == span.to_json(indent=None)  # again, from what was kept


def test_an_unwritable_file_fails_the_export_without_raising(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    exporter = JsonLinesExporter(tmp_path / "dir")  # a directory: cannot be opened for appending
    span = TracerProvider().get_tracer("t").start_span("x")
    span.end()
    assert exporter.export([span]) is SpanExportResult.FAILURE  # type: ignore[list-item]


def test_settings_pick_otlp_then_the_file_and_off_means_none(tmp_path: Path) -> None:
    assert trace_settings(otlp_endpoint="", otlp_protocol="grpc", trace_file=None, data_dir=tmp_path).file == (
        tmp_path / "traces.jsonl"
    )
    off = trace_settings(otlp_endpoint="", otlp_protocol="grpc", trace_file=Path(os.devnull), data_dir=tmp_path)
    assert off.file is None and not Tracing.configure("svc", off).enabled
    assert otlp_endpoint("collector:4317") == "collector:4317"
    assert otlp_endpoint("https://otel.example:4318/") == "https://otel.example:4318/"
    for bad in ("ftp://x:1", "http://x:70000", "nohost"):
        with pytest.raises(ValueError):
            otlp_endpoint(bad)
