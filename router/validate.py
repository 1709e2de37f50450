"""Turn a client's JSON body into a `ChatRequest`, or an `InvalidRequest` naming the field and the reason."""

from __future__ import annotations

import json
from typing import Any

from router.completion import ChatRequest, Shape
from router.errors import InvalidRequest
from router.translate import anthropic_to_openai_request

OPENAI_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
ANTHROPIC_ROLES = frozenset({"user", "assistant"})
_loads = json.loads


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "an object",
    }.get(type(value), type(value).__name__)


def parse_json(raw: bytes) -> dict[str, Any]:
    if not raw:
        raise InvalidRequest("the request body is empty; send a JSON object")
    try:
        body = _loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidRequest(f"the request body must be a JSON object, got {_kind(body)}")
    return body


def _number(body: dict[str, Any], key: str, low: float, high: float) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRequest(f"{key} must be a number, got {_kind(value)}", param=key)
    if not low <= value <= high:
        raise InvalidRequest(f"{key} must be between {low:g} and {high:g}, got {value}", param=key)
    return float(value)


def _positive_int(body: dict[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"{key} must be an integer, got {_kind(value)}", param=key)
    if value < 1:
        raise InvalidRequest(f"{key} must be at least 1, got {value}", param=key)
    return value


def _common(body: dict[str, Any], roles: frozenset[str]) -> tuple[str, list[Any], bool]:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest(
            "model is required (a non-empty string)"
            if model is None
            else f"model must be a string, got {_kind(model)}",
            param="model",
        )
    messages = body.get("messages")
    if not isinstance(messages, list):
        what = "messages is required" if messages is None else f"messages must be an array, got {_kind(messages)}"
        raise InvalidRequest(what, param="messages")
    if not messages:
        raise InvalidRequest("messages must hold at least one message", param="messages")
    for i, m in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(m, dict):
            raise InvalidRequest(f"{where} must be an object, got {_kind(m)}", param=where)
        role = m.get("role")
        if role not in roles:
            raise InvalidRequest(
                f"{where}.role must be one of {', '.join(sorted(roles))}, got {role!r}", param=f"{where}.role"
            )
        content = m.get("content")
        if content is not None and not isinstance(content, str | list):
            raise InvalidRequest(
                f"{where}.content must be a string or an array, got {_kind(content)}", param=f"{where}.content"
            )
    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise InvalidRequest(f"stream must be a boolean, got {_kind(stream)}", param="stream")
    return model, messages, stream


def _opt_out(body: dict[str, Any], no_store_header: bool) -> bool:
    extra = body.get("agentflow")
    if extra is None:
        return no_store_header
    if not isinstance(extra, dict):
        raise InvalidRequest(f"agentflow must be an object, got {_kind(extra)}", param="agentflow")
    cache = extra.get("cache", True)
    if not isinstance(cache, bool):
        raise InvalidRequest(f"agentflow.cache must be a boolean, got {_kind(cache)}", param="agentflow.cache")
    return no_store_header or not cache


def _deterministic(body: dict[str, Any]) -> bool:
    temperature = body.get("temperature")
    return (temperature is not None and temperature == 0) or body.get("seed") is not None


def openai_request(body: dict[str, Any], *, no_store: bool = False, raw: bytes = b"") -> ChatRequest:
    model, messages, stream = _common(body, OPENAI_ROLES)
    _number(body, "temperature", 0, 2)
    _number(body, "top_p", 0, 1)
    max_tokens = _positive_int(body, "max_tokens") or _positive_int(body, "max_completion_tokens")
    n = _positive_int(body, "n")
    if n is not None and n != 1:
        raise InvalidRequest("n must be 1 (the router answers one choice per call)", param="n")
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise InvalidRequest(f"seed must be an integer, got {_kind(seed)}", param="seed")
    stop = body.get("stop")
    if stop is not None and not isinstance(stop, str | list):
        raise InvalidRequest(f"stop must be a string or an array, got {_kind(stop)}", param="stop")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise InvalidRequest(f"stream_options must be an object, got {_kind(options)}", param="stream_options")
    return ChatRequest(
        model=model,
        body=body,
        original=body,
        shape=Shape.OPENAI,
        stream=stream,
        max_tokens=max_tokens,
        prompt_chars=sum(_content_chars(m.get("content")) for m in messages),
        no_store=_opt_out(body, no_store),
        deterministic=_deterministic(body),
        raw=raw,
    )


def anthropic_request(body: dict[str, Any], *, no_store: bool = False) -> ChatRequest:
    model, _, stream = _common(body, ANTHROPIC_ROLES)
    max_tokens = _positive_int(body, "max_tokens")
    if max_tokens is None:
        raise InvalidRequest("max_tokens is required (a positive integer)", param="max_tokens")
    _number(body, "temperature", 0, 1)
    _number(body, "top_p", 0, 1)
    _positive_int(body, "top_k")
    system = body.get("system")
    if system is not None and not isinstance(system, str | list):
        raise InvalidRequest(f"system must be a string or an array, got {_kind(system)}", param="system")
    stops = body.get("stop_sequences")
    if stops is not None and (not isinstance(stops, list) or not all(isinstance(s, str) for s in stops)):
        raise InvalidRequest("stop_sequences must be an array of strings", param="stop_sequences")
    canonical = anthropic_to_openai_request(body)
    return ChatRequest(
        model=model,
        body=canonical,
        original=body,
        shape=Shape.ANTHROPIC,
        stream=stream,
        max_tokens=max_tokens,
        prompt_chars=sum(_content_chars(m.get("content")) for m in canonical["messages"]),
        no_store=_opt_out(body, no_store),
        deterministic=_deterministic(body),
    )


def _content_chars(content: Any) -> int:
    if isinstance(content, str):
        return len(content)
    if isinstance(content, list):
        return sum(len(str(p.get("text", ""))) if isinstance(p, dict) else 0 for p in content)
    return 0
