"""Host calls: the ``agentflow`` import module of agent ABI v1.

The guest calls ``host_call(op, req)`` and gets back the length of a JSON response that
is then pending until it collects it with ``host_result(buf)``. Failures are negative
``HostCallError`` codes. Operations live in a table of ``HostOperation`` entries; a new
operation (the router's ``llm.complete``, ``http.fetch``) plugs in by adding an entry with
its handler, and capability gating, size limits, JSON parsing and error mapping stay here.

``HostCalls`` is the per-step dispatcher and is pure Python (no wasm), so noded's main process
imports it without wasmtime; ``noded.sandbox.linking.define_imports`` binds it to a linker.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from agentflow.vocabulary import Capability

IMPORT_MODULE = "agentflow"
MAX_MESSAGE_BYTES = 1024 * 1024
"""Largest request or response crossing the host-call boundary."""
MAX_OP_NAME_BYTES = 256

KNOWN_CAPABILITIES = frozenset(Capability)

LOG_LEVELS = frozenset({"debug", "info", "warn", "error"})

HOST_CALL_RATE = 1000.0
"""Host calls per second a step may make, sustained; calls beyond it fail with RATE_LIMITED."""
HOST_CALL_BURST = 1000
"""Host calls a step may make at once before `HOST_CALL_RATE` applies."""
MAX_THROTTLED_CALLS = 1000
"""Calls a step may make after being told RATE_LIMITED before it is stopped (`host calls` limit)."""
MAX_HOST_CALLS = 100_000
"""Host calls a step may attempt in all (refused ones too); the next one stops the step."""


class HostCallError(IntEnum):
    """Negative return codes of ``host_call`` and ``host_result`` (see agentflow.h)."""

    UNKNOWN_OP = -1
    DENIED = -2  # the capability (or the model asked for) is not granted
    BAD_REQUEST = -3
    UNAVAILABLE = -4  # the operation is not served here (say, no LLM router reachable)
    NO_PENDING = -5
    TOO_LARGE = -6
    INTERNAL = -7
    BUDGET_EXCEEDED = -8  # the step's or run's LLM budget would be exceeded
    UPSTREAM = -9  # the model provider failed (rate limited, errors, timed out) after retries
    RATE_LIMITED = -10  # the step makes host calls faster than HOST_CALL_RATE; slow down


class HostCallLimitReached(Exception):
    """The step made more host calls than it may, or kept calling while rate limited. Raised
    through the guest's frames: it ends the step, which fails with the `host calls` limit."""


class HostCallRefused(Exception):
    """Raised by a handler to fail a call with ``code``; ``log`` (if any) goes to the step log."""

    def __init__(self, code: HostCallError, log: str | None = None) -> None:
        super().__init__(log or code.name)
        self.code = code
        self.log = log


StepLogger = Callable[[str], None]
"""Appends one line (without newline) to the step's log."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HostCallContext:
    """What a handler may know about the calling step."""

    capabilities: frozenset[str]
    log: StepLogger


Handler = Callable[[HostCallContext, Any], Any]
"""Takes the parsed JSON request, returns a JSON-serialisable response or raises HostCallRefused."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HostOperation:
    """One entry of the dispatch table. ``capability`` None means always allowed."""

    name: str
    handler: Handler
    capability: str | None = None


def handle_log(ctx: HostCallContext, request: Any) -> Any:
    """``log``: ``{"level": "info", "message": "..."}`` → ``{"ok": true}``."""
    if not isinstance(request, dict):
        raise HostCallRefused(HostCallError.BAD_REQUEST, "bad log request: not a JSON object")
    level = request.get("level", "info")
    message = request.get("message")
    if level not in LOG_LEVELS or not isinstance(message, str):
        raise HostCallRefused(
            HostCallError.BAD_REQUEST,
            'bad log request: needs "message" (string) and "level" in debug|info|warn|error',
        )
    # One entry per line, whatever the guest put in the message.
    ctx.log(f"[{level}] " + message.replace("\r", "\\r").replace("\n", "\\n"))
    return {"ok": True}


def not_available_yet(op: str) -> Handler:
    """A handler for an operation that is allowed but not served on this node yet."""

    def handler(ctx: HostCallContext, request: Any) -> Any:
        raise HostCallRefused(HostCallError.UNAVAILABLE, f"{op} is not available on this node yet")

    return handler


Relay = Callable[[str, Any], Any]
"""Hands a host call to whoever serves it outside the sandbox (the node, over the worker pipe):
returns the JSON response or raises HostCallRefused."""


def relayed_operations(relay: Relay) -> Mapping[str, HostOperation]:
    """The default table with the operations the node serves handed to `relay`."""

    def forward(op: str) -> Handler:
        def handler(ctx: HostCallContext, request: Any) -> Any:
            return relay(op, request)

        return handler

    return {
        **DEFAULT_OPERATIONS,
        **{
            op: HostOperation(name=op, handler=forward(op), capability=op)
            for op in (Capability.LLM_COMPLETE, Capability.HTTP_FETCH)
        },
    }


DEFAULT_OPERATIONS: Mapping[str, HostOperation] = {
    op.name: op
    for op in (
        HostOperation(name="log", handler=handle_log),
        HostOperation(
            name=Capability.LLM_COMPLETE,
            handler=not_available_yet(Capability.LLM_COMPLETE),
            capability=Capability.LLM_COMPLETE,
        ),
        HostOperation(
            name=Capability.HTTP_FETCH,
            handler=not_available_yet(Capability.HTTP_FETCH),
            capability=Capability.HTTP_FETCH,
        ),
    )
}


class CallRate:
    """A token bucket: `burst` calls at once, refilled at `rate` per second of `clock`."""

    def __init__(self, *, rate: float, burst: int, clock: Callable[[], float]) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._at = clock()

    def take(self) -> bool:
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._at) * self._rate)
        self._at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


class HostCalls:
    """Per-step dispatcher: the call limits, capability checks, the pending response, counters."""

    def __init__(
        self,
        *,
        capabilities: frozenset[str],
        log: StepLogger,
        operations: Mapping[str, HostOperation] = DEFAULT_OPERATIONS,
        rate: float = HOST_CALL_RATE,
        burst: int = HOST_CALL_BURST,
        max_calls: int = MAX_HOST_CALLS,
        max_throttled: int = MAX_THROTTLED_CALLS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ctx = HostCallContext(capabilities=capabilities, log=log)
        self._operations = operations
        self._pending: bytes | None = None
        self._rate = CallRate(rate=rate, burst=burst, clock=clock)
        self._rate_per_s = rate
        self._max_calls = max_calls
        self._max_throttled = max_throttled
        self.denied = 0
        self.calls = 0
        self.throttled = 0
        self.last_refusal = ""  # why the last refused call was refused ("" when it was not)

    @property
    def pending(self) -> bytes | None:
        return self._pending

    def call(self, op: str, request: bytes) -> int:
        """Runs ``op``; returns the response length (now pending) or a negative code.

        A new call replaces a response the guest never collected. Raises `HostCallLimitReached`
        once the step has attempted more than `max_calls`, or more than `max_throttled` calls
        were refused as over the rate.
        """
        self.calls += 1
        self._pending = None
        self.last_refusal = ""
        if self.calls > self._max_calls:
            raise HostCallLimitReached(f"host calls limit of {self._max_calls} calls reached")
        if not self._rate.take():
            self.throttled += 1
            if self.throttled > self._max_throttled:
                raise HostCallLimitReached(
                    f"host calls limit reached: {self._max_throttled} calls refused as over "
                    f"{self._rate_per_s:g} a second, and the step kept calling"
                )
            if self.throttled == 1:
                self._ctx.log(f"[host] host calls throttled: more than {self._rate_per_s:g} a second")
            return HostCallError.RATE_LIMITED
        operation = self._operations.get(op)
        if operation is None:
            return HostCallError.UNKNOWN_OP
        if operation.capability is not None and operation.capability not in self._ctx.capabilities:
            self.denied += 1
            self._ctx.log(f"[host] denied host call {op}: capability not granted")
            self.last_refusal = f"{op}: capability not granted"
            return HostCallError.DENIED
        if len(request) > MAX_MESSAGE_BYTES:
            return HostCallError.TOO_LARGE
        try:
            parsed = json.loads(request)
        except (UnicodeDecodeError, ValueError, RecursionError):
            return HostCallError.BAD_REQUEST
        try:
            response = operation.handler(self._ctx, parsed)
            encoded = json.dumps(response, separators=(",", ":"), ensure_ascii=False).encode()
        except HostCallRefused as refused:
            if refused.code is HostCallError.DENIED:  # by whoever served it: counted like a missing capability
                self.denied += 1
            if refused.log:
                self._ctx.log(f"[host] {refused.log}")
                self.last_refusal = refused.log
            return refused.code
        except Exception as exc:  # a broken handler must not crash the step
            self._ctx.log(f"[host] host call {op} failed: {type(exc).__name__}: {exc}")
            return HostCallError.INTERNAL
        if len(encoded) > MAX_MESSAGE_BYTES:
            return HostCallError.TOO_LARGE
        self._pending = encoded
        return len(encoded)

    def take_result(self, capacity: int) -> bytes | HostCallError:
        """Hands out (at most ``capacity`` bytes of) the pending response and clears it."""
        if self._pending is None:
            return HostCallError.NO_PENDING
        data, self._pending = self._pending[:capacity], None
        return data
