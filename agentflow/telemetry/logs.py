"""Structured logs: one JSON object per line on stderr (journald keeps them as they are), or a
readable line per record when a person watches (stderr is a terminal, or `--log-format text`).

Every record carries the fields of the `log_context` it was made in (a step attempt's run,
step, attempt and node) and the trace and span ids of the span running, so that a log line
leads to its trace and back.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, TextIO

from opentelemetry import trace

LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("auto", "json", "text")
# Libraries whose debug output is about their own internals, not about AgentFlow.
QUIET_LIBRARIES = ("aiosqlite", "grpc", "asyncio", "httpx", "httpcore", "nats", "opentelemetry")
_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
_CONTEXT: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "log_context", default=MappingProxyType({})
)


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add `fields` to every record logged in this block (and in the tasks it starts)."""
    token = _CONTEXT.set(MappingProxyType({**_CONTEXT.get(), **fields}))
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The record's own extra fields, then its context's, then the running span's ids."""
    fields = {k: v for k, v in vars(record).items() if k not in _RESERVED and not k.startswith("_")}
    for key, value in _CONTEXT.get().items():
        fields.setdefault(key, value)
    span = trace.get_current_span().get_span_context()
    if span.is_valid:
        fields.setdefault("trace_id", f"{span.trace_id:032x}")
        fields.setdefault("span_id", f"{span.span_id:016x}")
    return fields


class JsonFormatter(logging.Formatter):
    def __init__(self, component: str) -> None:
        super().__init__()
        self._component = component

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "component": self._component,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record_fields(record).items():
            entry.setdefault(key, value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """`12:48:50.539 INFO  noded  step finished  run=r-1 step=fetch attempt=1`"""

    def __init__(self, component: str) -> None:
        super().__init__()
        self._component = component

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created).strftime("%H:%M:%S.%f")[:-3]
        fields = record_fields(record)
        fields.pop("span_id", None)  # the trace id is enough to find it; keep the line short
        details = " ".join(f"{k}={_text(v)}" for k, v in fields.items())
        line = f"{moment} {record.levelname:<7} {self._component}  {record.getMessage()}"
        line += f"  {details}" if details else ""
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return json.dumps(text) if not text or any(c.isspace() for c in text) else text


def formatter_for(component: str, log_format: str, stream: TextIO) -> logging.Formatter:
    """JSON lines, or readable text for "text" (and for "auto" on a terminal)."""
    readable = log_format == "text" or (log_format == "auto" and stream.isatty())
    return TextFormatter(component) if readable else JsonFormatter(component)


def configure_logging(component: str, level: str = "info", log_format: str = "auto") -> None:
    """Send every log record of this process to stderr, as JSON lines unless a person reads them."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter_for(component, log_format, sys.stderr))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    set_log_level(level)


def set_log_level(level: str) -> None:
    """The level of every logger of this process (chatty libraries never below info)."""
    root = logging.getLogger()
    root.setLevel(level.upper())
    for noisy in QUIET_LIBRARIES:
        logging.getLogger(noisy).setLevel(max(logging.INFO, root.level))
