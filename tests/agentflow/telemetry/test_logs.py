"""JSON-lines logging of `agentflow.telemetry.logs`."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agentflow.telemetry import LEVELS, JsonFormatter, configure_logging
from agentflow.telemetry.logs import TextFormatter, formatter_for, log_context
from agentflow.telemetry.tracing import TraceSettings, Tracing, ref_of

pytestmark = pytest.mark.unit


@pytest.fixture
def capture() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger of its own writing JSON lines into a buffer."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonFormatter("noded"))
    logger = logging.getLogger("agentflow.test.logs")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield logger, buffer
    finally:
        logger.handlers.clear()
        logger.propagate = True


def records(buffer: io.StringIO) -> list[dict[str, Any]]:
    lines = buffer.getvalue().splitlines()
    return [json.loads(line) for line in lines]


def test_one_json_object_per_line_with_the_base_fields(capture: tuple[logging.Logger, io.StringIO]) -> None:
    logger, buffer = capture
    before = datetime.now().astimezone()
    logger.info("node ready")
    logger.warning("slow heartbeat: %d ms", 1500)
    after = datetime.now().astimezone()
    assert buffer.getvalue().count("\n") == 2
    first, second = records(buffer)
    assert list(first) == ["time", "level", "component", "logger", "msg"]
    assert first["level"] == "info" and second["level"] == "warning"
    assert first["component"] == "noded"
    assert first["logger"] == "agentflow.test.logs"
    assert (first["msg"], second["msg"]) == ("node ready", "slow heartbeat: 1500 ms")
    logged = datetime.fromisoformat(first["time"])
    assert logged.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=1) <= logged <= after + timedelta(seconds=1)


def test_extra_fields_are_top_level_keys(capture: tuple[logging.Logger, io.StringIO]) -> None:
    logger, buffer = capture
    logger.info("step started", extra={"run": "run-1", "step": "fetch", "attempt": 2, "labels": {"zone": "eu"}})
    [entry] = records(buffer)
    assert entry["msg"] == "step started"
    assert (entry["run"], entry["step"], entry["attempt"], entry["labels"]) == ("run-1", "fetch", 2, {"zone": "eu"})
    internals = {"args", "levelno", "pathname", "lineno", "funcName", "created", "thread", "process", "exc_info"}
    assert internals.isdisjoint(entry)


def test_values_json_cannot_hold_are_written_as_text(capture: tuple[logging.Logger, io.StringIO]) -> None:
    logger, buffer = capture
    logger.info("paths", extra={"dir": Path("/var/lib/agentflow"), "ids": {1, 2} - {2}})
    [entry] = records(buffer)
    assert (entry["dir"], entry["ids"]) == ("/var/lib/agentflow", "{1}")


def test_message_with_newlines_stays_on_one_line(capture: tuple[logging.Logger, io.StringIO]) -> None:
    logger, buffer = capture
    logger.error("first line\nsecond line", extra={"stderr": "a\nb"})
    assert buffer.getvalue().count("\n") == 1
    [entry] = records(buffer)
    assert (entry["msg"], entry["stderr"]) == ("first line\nsecond line", "a\nb")


def test_exception_is_included(capture: tuple[logging.Logger, io.StringIO]) -> None:
    logger, buffer = capture
    try:
        raise RuntimeError("disk on fire")
    except RuntimeError:
        logger.exception("write failed", extra={"path": "/x"})
    assert buffer.getvalue().count("\n") == 1
    [entry] = records(buffer)
    assert entry["level"] == "error"
    assert entry["msg"] == "write failed"
    assert entry["path"] == "/x"
    assert entry["exception"].startswith("Traceback (most recent call last):")
    assert entry["exception"].endswith("RuntimeError: disk on fire")


def test_no_exception_key_without_an_exception(capture: tuple[logging.Logger, io.StringIO]) -> None:
    logger, buffer = capture
    logger.error("plain error")
    assert "exception" not in records(buffer)[0]


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    """The root logger; its handlers and every logger's level are restored afterwards."""
    root = logging.getLogger()
    handlers = root.handlers[:]
    loggers = [root, *(v for v in logging.root.manager.loggerDict.values() if isinstance(v, logging.Logger))]
    levels = [(logger, logger.level) for logger in loggers]
    try:
        yield root
    finally:
        root.handlers[:] = handlers
        for logger, level in levels:
            logger.setLevel(level)


@pytest.mark.parametrize("level", LEVELS)
def test_configure_logging_sets_level_and_json_handler(
    root_logger: logging.Logger, capsys: pytest.CaptureFixture[str], level: str
) -> None:
    configure_logging("controlplane", level)
    assert root_logger.level == getattr(logging, level.upper())
    assert len(root_logger.handlers) == 1
    logging.getLogger("controlplane.test").error("stopping", extra={"grace_s": 5})
    logging.getLogger("controlplane.test").debug("noise")
    lines = capsys.readouterr().err.splitlines()
    entries = [json.loads(line) for line in lines]
    assert entries[0] == {**entries[0], "level": "error", "component": "controlplane", "msg": "stopping", "grace_s": 5}
    assert len(entries) == (2 if level == "debug" else 1)


def test_a_log_context_and_the_running_span_name_every_record(
    capture: tuple[logging.Logger, io.StringIO], tmp_path: Path
) -> None:
    logger, buffer = capture
    tracing = Tracing.configure("noded", TraceSettings(file=tmp_path / "t.jsonl"))
    with log_context(run="run-1", step="fetch", attempt=2, node="n1"), tracing.span("agent.execute") as span:
        logger.info("step started", extra={"step": "explicit wins"})
    logger.info("outside")
    tracing.shutdown()
    inside, outside = records(buffer)
    ref = ref_of(span)
    assert ref is not None
    assert (inside["run"], inside["step"], inside["attempt"], inside["node"]) == ("run-1", "explicit wins", 2, "n1")
    assert (inside["trace_id"], inside["span_id"]) == (ref.trace_id, ref.span_id)
    assert not {"run", "trace_id", "span_id"} & set(outside)


def test_the_text_format_is_one_readable_line_and_auto_picks_it_on_a_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert isinstance(formatter_for("cp", "auto", Terminal()), TextFormatter)
    assert isinstance(formatter_for("cp", "auto", io.StringIO()), JsonFormatter)
    assert isinstance(formatter_for("cp", "text", io.StringIO()), TextFormatter)
    assert isinstance(formatter_for("cp", "json", Terminal()), JsonFormatter)

    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "slow step", None, None)
    record.took = "2 s"
    with log_context(run="run-1"):
        line = TextFormatter("noded").format(record)
    assert "\n" not in line
    assert line.endswith('WARNING noded  slow step  took="2 s" run=run-1'), line
