"""The telemetry settings every daemon takes: where its spans go, how its logs look."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from agentflow.config import Option, parsers
from agentflow.telemetry.logs import LOG_FORMATS
from agentflow.telemetry.tracing import OTLP_PROTOCOLS, TraceSettings

TRACE_FILE_NAME = "traces.jsonl"


def otlp_endpoint(value: Any) -> str:
    """An OTLP collector: `http(s)://host:port` or `host:port`; "" for none."""
    text = str(value).strip()
    if not text:
        return ""
    bare = text.partition("://")[2] if "://" in text else text
    scheme = text.partition("://")[0] if "://" in text else ""
    if scheme not in ("", "http", "https"):
        raise ValueError(f'"{text}" is not an OTLP endpoint (expected http://host:port, https://… or host:port)')
    parsers.address(bare.split("/", 1)[0])  # raises with the reason
    return text


def trace_file(value: Any) -> Path:
    """A path, or "off" (no spans written when no OTLP endpoint is set)."""
    text = str(value).strip()
    return Path(os.devnull) if text == "off" else parsers.path(text)


TELEMETRY_OPTIONS: tuple[Option, ...] = (
    Option(name="otlp_endpoint", parse=otlp_endpoint, default="",
           help="send spans to this OpenTelemetry collector (OTLP)", metavar="URL"),
    Option(name="otlp_protocol", parse=parsers.choice(*OTLP_PROTOCOLS), default="grpc",
           help="OTLP over grpc (port 4317) or http (port 4318)"),
    Option(name="trace_file", parse=trace_file, default=None,
           help=f"without an OTLP endpoint, spans as JSON lines here (default <data-dir>/{TRACE_FILE_NAME}; off: none)",
           metavar="FILE"),
    Option(name="log_format", parse=parsers.choice(*LOG_FORMATS), default="auto",
           help="json lines, readable text, or auto: text when stderr is a terminal"),
)  # fmt: skip


def trace_settings(*, otlp_endpoint: str, otlp_protocol: str, trace_file: Path | None, data_dir: Path) -> TraceSettings:
    if trace_file is not None and trace_file == Path(os.devnull):
        return TraceSettings(otlp_endpoint=otlp_endpoint, otlp_protocol=otlp_protocol, file=None)
    return TraceSettings(
        otlp_endpoint=otlp_endpoint, otlp_protocol=otlp_protocol, file=trace_file or data_dir / TRACE_FILE_NAME
    )
