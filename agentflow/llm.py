"""The HTTP contract between an LLM caller (noded's `llm.complete`, an agent's SDK) and the router.

Request headers (all optional; names are case-insensitive on the wire):

- `x-agentflow-run`, `x-agentflow-step`, `x-agentflow-attempt` (1-based), `x-agentflow-workflow`:
  who is calling. A call carrying run, step and attempt is *attributed*: it is recorded in the
  replay journal and the spend ledger under that attempt.
- `x-agentflow-call`: the index of this call within the attempt, 0-based. The router replays the
  latest earlier attempt's answer at the same index while the attempt asks what that one asked.
- `x-agentflow-budget-usd`, `x-agentflow-budget-tokens`: the attempt's grant, i.e. what the whole
  attempt may still spend when it starts (send the same value on every call of the attempt; the
  router tracks what the attempt has spent and reserved since). A call whose estimate would take
  the attempt past its grant is refused with HTTP 402 before anything goes upstream.
- `x-agentflow-timeout`: seconds this call may take end to end, retries and fallbacks included.
- `cache-control: no-store`: neither read nor write the exact cache for this call (the body field
  `"agentflow": {"cache": false}` does the same). Replay and coalescing still apply.

Response headers (on every response, errors included):

- `x-agentflow-cache`: `hit` (exact cache), `miss` (went upstream), `replay` (answered from the
  journal, free), `coalesced` (shared an identical in-flight upstream call).
- `x-agentflow-overhead-ms`: the router's own added time in milliseconds, upstream time excluded.
- `x-agentflow-cost-usd`: what this call cost (0 for hits and replays).
- `x-agentflow-request-hash`: the canonical request hash the cache and the journal key on.

Errors are OpenAI-style objects `{"error": {"message", "type", "code", "param"}}` on the OpenAI
routes and Anthropic-style `{"type": "error", "error": {"type", "message"}}` on `/v1/messages`;
`ErrorCode` lists the `code` values (the Anthropic shape carries it as `error.code` too).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

HEADER_RUN = "x-agentflow-run"
HEADER_STEP = "x-agentflow-step"
HEADER_ATTEMPT = "x-agentflow-attempt"
HEADER_WORKFLOW = "x-agentflow-workflow"
HEADER_CALL = "x-agentflow-call"
HEADER_BUDGET_USD = "x-agentflow-budget-usd"
HEADER_BUDGET_TOKENS = "x-agentflow-budget-tokens"
HEADER_TIMEOUT = "x-agentflow-timeout"

HEADER_CACHE = "x-agentflow-cache"
HEADER_OVERHEAD_MS = "x-agentflow-overhead-ms"
HEADER_COST_USD = "x-agentflow-cost-usd"
HEADER_REQUEST_HASH = "x-agentflow-request-hash"


class CacheResult(StrEnum):
    """Values of the `x-agentflow-cache` response header."""

    HIT = "hit"
    MISS = "miss"
    REPLAY = "replay"
    COALESCED = "coalesced"


class ErrorCode(StrEnum):
    """`error.code` of the router's error objects; the HTTP status is `ERROR_STATUS[code]`."""

    INVALID_REQUEST = "invalid_request"  # malformed JSON, missing or mistyped field
    BODY_TOO_LARGE = "body_too_large"
    MODEL_NOT_FOUND = "model_not_found"
    NO_PROVIDER = "no_provider_configured"
    BUDGET_EXCEEDED_USD = "budget_exceeded_usd"
    BUDGET_EXCEEDED_TOKENS = "budget_exceeded_tokens"
    RATE_LIMITED = "rate_limited"  # every deployment answered 429 (after retries)
    CONTEXT_LENGTH = "context_length_exceeded"
    UPSTREAM_ERROR = "upstream_error"  # 5xx, malformed answer or dropped connection upstream
    UPSTREAM_UNAVAILABLE = "upstream_unavailable"  # connection refused, or every breaker open
    UPSTREAM_TIMEOUT = "upstream_timeout"
    UPSTREAM_REJECTED = "upstream_rejected"  # the provider refused the request (4xx other than 429)
    NOT_FOUND = "not_found"  # unknown route
    INTERNAL = "internal_error"


ERROR_STATUS: dict[ErrorCode, int] = {
    ErrorCode.INVALID_REQUEST: 400,
    ErrorCode.BODY_TOO_LARGE: 413,
    ErrorCode.MODEL_NOT_FOUND: 404,
    ErrorCode.NO_PROVIDER: 503,
    ErrorCode.BUDGET_EXCEEDED_USD: 402,
    ErrorCode.BUDGET_EXCEEDED_TOKENS: 402,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.CONTEXT_LENGTH: 400,
    ErrorCode.UPSTREAM_ERROR: 502,
    ErrorCode.UPSTREAM_UNAVAILABLE: 503,
    ErrorCode.UPSTREAM_TIMEOUT: 504,
    ErrorCode.UPSTREAM_REJECTED: 400,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.INTERNAL: 500,
}

ERROR_TYPE: dict[ErrorCode, str] = {
    ErrorCode.INVALID_REQUEST: "invalid_request_error",
    ErrorCode.BODY_TOO_LARGE: "invalid_request_error",
    ErrorCode.MODEL_NOT_FOUND: "invalid_request_error",
    ErrorCode.NO_PROVIDER: "configuration_error",
    ErrorCode.BUDGET_EXCEEDED_USD: "budget_exceeded",
    ErrorCode.BUDGET_EXCEEDED_TOKENS: "budget_exceeded",
    ErrorCode.RATE_LIMITED: "rate_limit_error",
    ErrorCode.CONTEXT_LENGTH: "invalid_request_error",
    ErrorCode.UPSTREAM_ERROR: "upstream_error",
    ErrorCode.UPSTREAM_UNAVAILABLE: "upstream_error",
    ErrorCode.UPSTREAM_TIMEOUT: "timeout_error",
    ErrorCode.UPSTREAM_REJECTED: "invalid_request_error",
    ErrorCode.NOT_FOUND: "not_found_error",
    ErrorCode.INTERNAL: "api_error",
}
"""`error.type` of the OpenAI-shaped error object for each code."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Attribution:
    """Who makes a call: the attempt of a step of a run, and the call's index within it."""

    run: str
    step: str
    attempt: int
    call: int | None = None
    workflow: str = ""

    def __post_init__(self) -> None:
        if not self.run or not self.step:
            raise ValueError("run and step must not be empty")
        if self.attempt < 1:
            raise ValueError(f"attempt must be at least 1, got {self.attempt}")
        if self.call is not None and self.call < 0:
            raise ValueError(f"call index must not be negative, got {self.call}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Grant:
    """What an attempt may spend in total; None means no limit of that kind."""

    usd: float | None = None
    tokens: int | None = None

    def __post_init__(self) -> None:
        if self.usd is not None and self.usd < 0:
            raise ValueError(f"budget in USD must not be negative, got {self.usd}")
        if self.tokens is not None and self.tokens < 0:
            raise ValueError(f"budget in tokens must not be negative, got {self.tokens}")

    @property
    def limited(self) -> bool:
        return self.usd is not None or self.tokens is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class LLMUsage:
    """What LLM calls cost: an attempt's, a step's across its attempts, or a run's."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    cache_hits: int = 0
    replays: int = 0
    upstream_calls: int = 0

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: LLMUsage) -> LLMUsage:
        return LLMUsage(
            calls=self.calls + other.calls,
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cost_usd=self.cost_usd + other.cost_usd,
            cache_hits=self.cache_hits + other.cache_hits,
            replays=self.replays + other.replays,
            upstream_calls=self.upstream_calls + other.upstream_calls,
        )


NO_LLM_USAGE = LLMUsage()


def request_headers(who: Attribution | None = None, grant: Grant | None = None, *, timeout_s: float | None = None,
                    no_store: bool = False) -> dict[str, str]:  # fmt: skip
    """The router request headers for a call (what noded's `llm.complete` sends)."""
    headers: dict[str, str] = {}
    if who is not None:
        headers[HEADER_RUN] = who.run
        headers[HEADER_STEP] = who.step
        headers[HEADER_ATTEMPT] = str(who.attempt)
        if who.workflow:
            headers[HEADER_WORKFLOW] = who.workflow
        if who.call is not None:
            headers[HEADER_CALL] = str(who.call)
    if grant is not None:
        if grant.usd is not None:
            headers[HEADER_BUDGET_USD] = repr(grant.usd)
        if grant.tokens is not None:
            headers[HEADER_BUDGET_TOKENS] = str(grant.tokens)
    if timeout_s is not None:
        headers[HEADER_TIMEOUT] = repr(float(timeout_s))
    if no_store:
        headers["Cache-Control"] = "no-store"
    return headers


__all__ = [
    "ERROR_STATUS",
    "ERROR_TYPE",
    "HEADER_ATTEMPT",
    "HEADER_BUDGET_TOKENS",
    "HEADER_BUDGET_USD",
    "HEADER_CACHE",
    "HEADER_CALL",
    "HEADER_COST_USD",
    "HEADER_OVERHEAD_MS",
    "HEADER_REQUEST_HASH",
    "HEADER_RUN",
    "HEADER_STEP",
    "HEADER_TIMEOUT",
    "HEADER_WORKFLOW",
    "NO_LLM_USAGE",
    "Attribution",
    "CacheResult",
    "ErrorCode",
    "Grant",
    "LLMUsage",
    "request_headers",
]
