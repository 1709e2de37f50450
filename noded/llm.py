"""`llm.complete` for agents: the node answers it through the host's LLM router.

The guest asks (ABI v1, `host_call("llm.complete", req)`)::

    {"messages": [{"role": "system"|"user"|"assistant", "content": "..."}, ...]   (or "prompt": "...")
     "model": "...", "temperature": 0.2, "max_tokens": 256, "seed": 7, "stop": ["..."]}   (all optional)

and gets back::

    {"content": "...", "model": "...", "finish_reason": "stop",
     "usage": {"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21},
     "cache": "hit|miss|replay|coalesced", "cost_usd": 0.0}

The step's `llm:` block gives the defaults (model, temperature, max tokens); its
`capabilities.llm` gates the call and may name the models allowed. The node, not the guest,
attributes the call (run, step, attempt, workflow, call index) in the router's headers, so the
cache, the replay journal and the spend ledger see who asked. Failures come back as ABI codes,
with the reason in the step's log: DENIED (a model not allowed), BAD_REQUEST (a malformed
request, an unknown model), BUDGET_EXCEEDED, UPSTREAM (the provider failed after the router's
retries and fallbacks), UNAVAILABLE (no router, or no provider configured).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from agentflow import llm
from agentflow.attempt import AttemptKey
from noded.messages import Assignment, JournalEntry
from noded.sandbox import HostCallError, HostCallRefused

if TYPE_CHECKING:
    import aiohttp  # imported on first use below: an idle node does not hold it (9 MB)

log = logging.getLogger(__name__)

DEFAULT_ROUTER = "http://127.0.0.1:4000"
ROLES = frozenset({"system", "user", "assistant"})
MAX_TOKENS_LIMIT = 1_000_000
CONNECT_TIMEOUT_S = 2.0
JOURNAL_TIMEOUT_S = 5.0

_CODE_OF: Mapping[str, HostCallError] = {
    llm.ErrorCode.INVALID_REQUEST: HostCallError.BAD_REQUEST,
    llm.ErrorCode.BODY_TOO_LARGE: HostCallError.TOO_LARGE,
    llm.ErrorCode.MODEL_NOT_FOUND: HostCallError.BAD_REQUEST,
    llm.ErrorCode.CONTEXT_LENGTH: HostCallError.BAD_REQUEST,
    llm.ErrorCode.UPSTREAM_REJECTED: HostCallError.BAD_REQUEST,
    llm.ErrorCode.NO_PROVIDER: HostCallError.UNAVAILABLE,
    llm.ErrorCode.BUDGET_EXCEEDED_USD: HostCallError.BUDGET_EXCEEDED,
    llm.ErrorCode.BUDGET_EXCEEDED_TOKENS: HostCallError.BUDGET_EXCEEDED,
    llm.ErrorCode.RATE_LIMITED: HostCallError.UPSTREAM,
    llm.ErrorCode.UPSTREAM_ERROR: HostCallError.UPSTREAM,
    llm.ErrorCode.UPSTREAM_UNAVAILABLE: HostCallError.UPSTREAM,
    llm.ErrorCode.UPSTREAM_TIMEOUT: HostCallError.UPSTREAM,
}
"""The ABI code for each of the router's error codes (others: INTERNAL)."""


class RouterClient:
    """One HTTP connection pool to the host's router, shared by every step of the node."""

    def __init__(self, base_url: str = DEFAULT_ROUTER) -> None:
        self.base_url = base_url.rstrip("/")
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        import aiohttp

        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT_S)
            )
        return self._session

    async def complete(self, body: dict[str, Any], headers: Mapping[str, str], *, timeout_s: float) -> Any:
        """POST /v1/chat/completions; the parsed answer, or HostCallRefused with the reason."""
        import aiohttp

        url = f"{self.base_url}/v1/chat/completions"
        try:
            async with asyncio.timeout(timeout_s):
                async with self._client().post(url, json=body, headers=dict(headers)) as response:
                    raw = await response.read()
                    status, cache = response.status, response.headers.get(llm.HEADER_CACHE, "")
                    cost = response.headers.get(llm.HEADER_COST_USD, "0")
        except TimeoutError:
            raise HostCallRefused(HostCallError.UPSTREAM, f"llm.complete timed out after {timeout_s:.1f}s") from None
        except aiohttp.ClientError as exc:
            raise HostCallRefused(
                HostCallError.UNAVAILABLE, f"llm.complete: the LLM router at {self.base_url} is unreachable ({exc})"
            ) from None
        try:
            answer = json.loads(raw)
        except ValueError:
            raise HostCallRefused(
                HostCallError.INTERNAL, f"llm.complete: the router answered {status} without JSON"
            ) from None
        if status != 200:
            raise _refusal(answer, status)
        return _result(answer, cache=cache, cost=cost)

    async def journal(self, *, run: str, step: str, after_seq: int) -> tuple[list[dict[str, Any]], int]:
        """The router's journal entries of a step after `after_seq`, and the last seq seen."""
        import aiohttp

        url = f"{self.base_url}/v1/agentflow/journal"
        params = {"run": run, "step": step, "after_seq": str(after_seq)}
        async with asyncio.timeout(JOURNAL_TIMEOUT_S), self._client().get(url, params=params) as response:
            data = await response.json()
            if response.status != 200:
                raise aiohttp.ClientError(f"journal: HTTP {response.status}")
        return list(data.get("entries", [])), int(data.get("last_seq", after_seq))

    async def seed(self, entries: Sequence[JournalEntry]) -> None:
        """Hand the router the journal of a step's earlier attempts (from any node), so that this
        attempt replays them. Best effort: without it the calls go upstream again."""
        import aiohttp

        url = f"{self.base_url}/v1/agentflow/journal"
        try:
            body = {"entries": [json.loads(e.entry_json) for e in entries]}
            async with asyncio.timeout(JOURNAL_TIMEOUT_S), self._client().post(url, json=body) as response:
                if response.status != 200:
                    log.warning("the router refused the journal to replay", extra={"status": response.status})
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("cannot give the router the journal to replay", extra={"error": str(exc)})

    async def usage(self, key: AttemptKey) -> llm.LLMUsage | None:
        """What an attempt's calls cost, as the router's ledger has it (None if it cannot tell)."""
        import aiohttp

        url = f"{self.base_url}/v1/agentflow/spend"
        params = {"run": key.run_id, "step": key.step, "attempt": str(key.attempt)}
        try:
            async with asyncio.timeout(JOURNAL_TIMEOUT_S), self._client().get(url, params=params) as response:
                data = await response.json()
                if response.status != 200:
                    return None
            tokens = data.get("tokens") or {}
            return llm.LLMUsage(
                calls=int(data.get("calls", 0)),
                input_tokens=int(tokens.get("input", 0)),
                output_tokens=int(tokens.get("output", 0)),
                cost_usd=float(data.get("cost_usd", 0.0)),
                cache_hits=int(data.get("cache_hits", 0)),
                replays=int(data.get("replays", 0)),
                upstream_calls=int(data.get("upstream_calls", 0)),
            )
        except (aiohttp.ClientError, TimeoutError, ValueError, TypeError, AttributeError) as exc:
            log.warning("cannot read what the attempt's LLM calls cost", extra={"error": str(exc)})
            return None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


JournalSink = Callable[[list[JournalEntry]], Awaitable[None]]
"""Takes the journal entries of an attempt's calls as the router records them (to the outbox)."""


class LLMCalls:
    """The `llm.complete` calls of one attempt: defaults, the model allow-list, call numbering,
    and shipping what the router journaled for each call."""

    @property
    def calls(self) -> int:
        """How many llm.complete calls went to the router."""
        return self._calls

    def __init__(
        self,
        client: RouterClient,
        assignment: Assignment,
        *,
        journal: JournalSink | None = None,
        trace_headers: Mapping[str, str] | None = None,
    ) -> None:
        self._client = client
        self._assignment = assignment
        self._trace_headers = dict(trace_headers or {})  # traceparent of the attempt's span
        self._calls = 0
        self._journal = journal
        self._seq = 0  # the last router journal entry seen for this step

    async def complete(self, request: Any, seconds_left: float) -> Any:
        """One llm.complete call of the attempt."""
        a = self._assignment
        body = chat_request(request, a)
        who = llm.Attribution(
            run=a.key.run_id, step=a.key.step, attempt=a.key.attempt, call=self._calls, workflow=a.workflow
        )
        self._calls += 1
        headers = {**llm.request_headers(who, a.grant, timeout_s=seconds_left), **self._trace_headers}
        answer = await self._client.complete(body, headers, timeout_s=max(seconds_left, 0.001))
        if self._journal is not None:
            await self._ship()
        return answer

    async def _ship(self) -> None:
        """Send up what the router journaled for this attempt so far (it survives this host)."""
        import aiohttp

        key = self._assignment.key
        try:
            entries, self._seq = await self._client.journal(run=key.run_id, step=key.step, after_seq=self._seq)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("cannot read the router's journal", extra={"error": str(exc), "step": key.step})
            return
        mine = [
            JournalEntry(key=key, call_index=int(e["call_index"]), entry_json=json.dumps(e, separators=(",", ":")))
            for e in entries
            if e.get("attempt") == key.attempt and e.get("origin") == "local"
        ]
        if mine and self._journal is not None:
            await self._journal(mine)


def chat_request(request: Any, assignment: Assignment) -> dict[str, Any]:
    """The OpenAI chat-completions body for a guest's request, with the step's defaults filled
    in; HostCallRefused (BAD_REQUEST or DENIED) for what may not go to the router."""
    if not isinstance(request, dict):
        raise _bad("the request must be a JSON object")
    defaults = assignment.llm
    allowed = assignment.capabilities.llm_models
    model = request.get("model", defaults.model if defaults else None)
    if not isinstance(model, str) or not model:
        raise _bad('no model: name one in the request ("model") or in the step\'s llm.model')
    if allowed and model not in allowed:
        raise HostCallRefused(
            HostCallError.DENIED, f'llm.complete: model "{model}" is not allowed (allowed: {", ".join(allowed)})'
        )
    body: dict[str, Any] = {"model": model, "messages": _messages(request)}
    temperature = request.get("temperature", defaults.temperature if defaults else None)
    if temperature is not None:
        if isinstance(temperature, bool) or not isinstance(temperature, int | float) or not 0 <= temperature <= 2:
            raise _bad("temperature must be a number from 0 to 2")
        body["temperature"] = temperature
    max_tokens = request.get("max_tokens", defaults.max_tokens if defaults else None)
    if max_tokens is not None:
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or not 0 < max_tokens <= MAX_TOKENS_LIMIT:
            raise _bad(f"max_tokens must be a whole number from 1 to {MAX_TOKENS_LIMIT}")
        body["max_tokens"] = max_tokens
    if "seed" in request:
        if isinstance(request["seed"], bool) or not isinstance(request["seed"], int):
            raise _bad("seed must be a whole number")
        body["seed"] = request["seed"]
    if "stop" in request:
        stop = request["stop"]
        if not (isinstance(stop, list) and all(isinstance(s, str) for s in stop) and len(stop) <= 4):
            raise _bad("stop must be a list of at most 4 strings")
        body["stop"] = stop
    unknown = set(request) - {"model", "messages", "prompt", "temperature", "max_tokens", "seed", "stop"}
    if unknown:
        raise _bad(f"unknown field {sorted(unknown)[0]!r}")
    return body


def _messages(request: dict[str, Any]) -> list[dict[str, str]]:
    if ("messages" in request) == ("prompt" in request):
        raise _bad('give either "messages" or "prompt"')
    if "prompt" in request:
        if not isinstance(request["prompt"], str):
            raise _bad("prompt must be a string")
        return [{"role": "user", "content": request["prompt"]}]
    messages = request["messages"]
    if not isinstance(messages, list) or not messages:
        raise _bad("messages must be a non-empty list")
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            raise _bad(f'messages[{i}] must be {{"role": system|user|assistant, "content": string}}')
        out.append({"role": m["role"], "content": m["content"]})
    return out


def _bad(reason: str) -> HostCallRefused:
    return HostCallRefused(HostCallError.BAD_REQUEST, f"bad llm.complete request: {reason}")


def _refusal(answer: Any, status: int) -> HostCallRefused:
    error = answer.get("error") if isinstance(answer, dict) else None
    code = str(error.get("code", "")) if isinstance(error, dict) else ""
    message = str(error.get("message", "")) if isinstance(error, dict) else f"HTTP {status}"
    return HostCallRefused(_CODE_OF.get(code, HostCallError.INTERNAL), f"llm.complete: {message} ({code or status})")


def _result(answer: Any, *, cache: str, cost: str) -> dict[str, Any]:
    try:
        choice = answer["choices"][0]
        usage = answer.get("usage") or {}
        return {
            "content": choice["message"].get("content") or "",
            "model": answer.get("model", ""),
            "finish_reason": choice.get("finish_reason"),
            "usage": {k: int(usage.get(k, 0)) for k in ("prompt_tokens", "completion_tokens", "total_tokens")},
            "cache": cache,
            "cost_usd": float(cost or 0),
        }
    except (KeyError, IndexError, TypeError, ValueError, AttributeError):
        raise HostCallRefused(HostCallError.INTERNAL, "llm.complete: the router's answer has no choices") from None
