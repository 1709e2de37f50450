"""The host-call dispatcher on its own (no wasm)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from noded.sandbox import (
    DEFAULT_OPERATIONS,
    MAX_MESSAGE_BYTES,
    HostCallContext,
    HostCallError,
    HostCallRefused,
    HostCalls,
    HostOperation,
)
from noded.sandbox.hostcalls import HostCallLimitReached

pytestmark = pytest.mark.unit

HEADER = Path(__file__).resolve().parents[3] / "examples/agents/include/agentflow.h"


def make_calls(*caps: str, operations: Any = DEFAULT_OPERATIONS) -> tuple[HostCalls, list[str]]:
    lines: list[str] = []
    return HostCalls(capabilities=frozenset(caps), log=lines.append, operations=operations), lines


def test_error_codes_match_the_c_header() -> None:
    defines = dict(re.findall(r"#define AF_ERR_(\w+) \((-\d+)\)", HEADER.read_text()))
    assert {name: int(value) for name, value in defines.items()} == {e.name: e.value for e in HostCallError}


def test_log_appends_a_line_and_answers_ok() -> None:
    calls, lines = make_calls()
    n = calls.call("log", b'{"level": "warn", "message": "two\\nlines"}')
    assert calls.take_result(1000) == b'{"ok":true}'
    assert n == len(b'{"ok":true}')
    assert lines == ["[warn] two\\nlines"]


@pytest.mark.parametrize(
    "request_body",
    [b'{"level": "loud", "message": "x"}', b'{"message": 3}', b"[1]", b"{nope", b"\xff"],
    ids=["bad-level", "bad-message", "not-object", "not-json", "not-utf8"],
)
def test_log_bad_requests(request_body: bytes) -> None:
    calls, _ = make_calls()
    assert calls.call("log", request_body) == HostCallError.BAD_REQUEST
    assert calls.pending is None


@pytest.mark.parametrize("op", ["llm.complete", "http.fetch"])
def test_gated_operations_are_denied_and_counted(op: str) -> None:
    calls, lines = make_calls()
    assert calls.call(op, b"{}") == HostCallError.DENIED
    assert calls.call(op, b"not even json") == HostCallError.DENIED
    assert calls.denied == 2
    assert lines == [f"[host] denied host call {op}: capability not granted"] * 2


@pytest.mark.parametrize("op", ["llm.complete", "http.fetch"])
def test_granted_operations_are_unavailable_for_now(op: str) -> None:
    calls, lines = make_calls(op)
    assert calls.call(op, b"{}") == HostCallError.UNAVAILABLE
    assert calls.denied == 0
    assert lines == [f"[host] {op} is not available on this node yet"]


def test_unknown_op() -> None:
    calls, lines = make_calls()
    assert calls.call("fs.delete", b"{}") == HostCallError.UNKNOWN_OP
    assert lines == []


def test_request_too_large() -> None:
    calls, _ = make_calls()
    big = json.dumps({"message": "x" * MAX_MESSAGE_BYTES}).encode()
    assert calls.call("log", big) == HostCallError.TOO_LARGE


def test_pending_result_lifecycle() -> None:
    calls, _ = make_calls()
    assert calls.take_result(10) == HostCallError.NO_PENDING
    calls.call("log", b'{"message": "a"}')
    assert calls.take_result(4) == b'{"ok'  # truncated to the buffer, then cleared
    assert calls.take_result(10) == HostCallError.NO_PENDING
    calls.call("log", b'{"message": "a"}')
    calls.call("nope", b"{}")  # a new call drops the uncollected response
    assert calls.pending is None


def test_new_operations_plug_into_the_table() -> None:
    def echo(ctx: HostCallContext, request: Any) -> Any:
        if request == "refuse":
            raise HostCallRefused(HostCallError.UNAVAILABLE, "refused on purpose")
        return {"echo": request, "caps": sorted(ctx.capabilities)}

    def broken(ctx: HostCallContext, request: Any) -> Any:
        raise KeyError("bug")

    table = dict(DEFAULT_OPERATIONS) | {
        "test.echo": HostOperation(name="test.echo", handler=echo, capability="llm.complete"),
        "test.broken": HostOperation(name="test.broken", handler=broken),
    }
    calls, lines = make_calls("llm.complete", operations=table)
    n = calls.call("test.echo", b"[1, 2]")
    assert calls.take_result(n) == b'{"echo":[1,2],"caps":["llm.complete"]}'
    assert calls.call("test.echo", b'"refuse"') == HostCallError.UNAVAILABLE
    assert calls.call("test.broken", b"{}") == HostCallError.INTERNAL
    assert lines == ["[host] refused on purpose", "[host] host call test.broken failed: KeyError: 'bug'"]


def test_oversized_response_is_refused() -> None:
    table = {"big": HostOperation(name="big", handler=lambda ctx, req: "x" * MAX_MESSAGE_BYTES)}
    calls, _ = make_calls(operations=table)
    assert calls.call("big", b"{}") == HostCallError.TOO_LARGE


class ManualClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


LOG = b'{"message": "x"}'


def test_calls_over_the_rate_are_refused_until_the_bucket_refills() -> None:
    clock, lines = ManualClock(), []
    calls = HostCalls(capabilities=frozenset(), log=lines.append, rate=4, burst=3, clock=clock)
    assert [calls.call("log", LOG) > 0 for _ in range(3)] == [True] * 3
    assert calls.call("log", LOG) == HostCallError.RATE_LIMITED
    assert calls.call("log", LOG) == HostCallError.RATE_LIMITED
    assert (calls.throttled, calls.calls) == (2, 5)
    assert lines.count("[host] host calls throttled: more than 4 a second") == 1  # said once
    clock.now += 0.25  # one call's worth at 4 a second
    assert calls.call("log", LOG) > 0
    assert calls.call("log", LOG) == HostCallError.RATE_LIMITED
    clock.now += 60  # a long pause refills only up to the burst
    assert [calls.call("log", LOG) > 0 for _ in range(4)] == [True, True, True, False]


def test_a_step_that_keeps_calling_while_throttled_is_stopped() -> None:
    clock = ManualClock()
    calls = HostCalls(capabilities=frozenset(), log=lambda _: None, rate=1, burst=1, max_throttled=2, clock=clock)
    assert calls.call("log", LOG) > 0
    assert calls.call("log", LOG) == calls.call("log", LOG) == HostCallError.RATE_LIMITED
    with pytest.raises(HostCallLimitReached, match="2 calls refused as over 1 a second, and the step kept calling"):
        calls.call("log", LOG)


def test_the_total_number_of_calls_is_capped() -> None:
    clock = ManualClock()
    calls = HostCalls(capabilities=frozenset(), log=lambda _: None, max_calls=3, clock=clock)
    for _ in range(3):
        calls.call("no.such.op", b"{}")  # refused calls count too
    with pytest.raises(HostCallLimitReached, match="host calls limit of 3 calls reached"):
        calls.call("log", LOG)
