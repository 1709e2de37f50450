"""Translation between the OpenAI chat-completions and Anthropic Messages shapes, both ways.

Covered across shapes: system prompts, user/assistant turns with text content (strings or text
blocks/parts), max_tokens, temperature, top_p, stop sequences, and the answer's text, finish reason
and usage, streamed or not. Anything else (tools, images, logprobs) passes through only when the
client and the provider speak the same shape.
"""

from __future__ import annotations

import json
from typing import Any

from router.completion import Completion, Shape, Usage

DEFAULT_ANTHROPIC_MAX_TOKENS = 4096

_FINISH_FROM_ANTHROPIC = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    "pause_turn": "stop",
}
_FINISH_TO_ANTHROPIC = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def dumps(value: Any) -> bytes:
    return _dumps(value).encode()


def text_of(content: Any) -> str:
    """The text of an OpenAI or Anthropic message content: a string, or a list of text parts/blocks."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = [p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"]
    return "\n".join(str(p) for p in parts)


# --- requests --------------------------------------------------------------------------------


def anthropic_to_openai_request(body: dict[str, Any]) -> dict[str, Any]:
    """The canonical (OpenAI) form of a validated Anthropic Messages request."""
    messages: list[dict[str, Any]] = []
    system = body.get("system")
    if system:
        messages.append({"role": "system", "content": text_of(system)})
    for m in body["messages"]:
        messages.append({"role": m["role"], "content": text_of(m.get("content"))})
    out: dict[str, Any] = {"model": body["model"], "messages": messages, "max_tokens": body["max_tokens"]}
    for key in ("temperature", "top_p"):
        if key in body:
            out[key] = body[key]
    if body.get("stop_sequences"):
        out["stop"] = list(body["stop_sequences"])
    if "top_k" in body:
        out["top_k"] = body["top_k"]  # not an OpenAI field; kept so that it changes the request hash
    return out


def openai_to_anthropic_request(body: dict[str, Any], model: str) -> dict[str, Any]:
    """An Anthropic Messages request for a canonical (OpenAI) body, for `model` upstream."""
    system: list[str] = []
    messages: list[dict[str, Any]] = []
    for m in body["messages"]:
        role = m.get("role")
        text = text_of(m.get("content"))
        if role in ("system", "developer"):
            system.append(text)
        elif role == "assistant":
            messages.append({"role": "assistant", "content": text})
        else:
            messages.append({"role": "user", "content": text})
    max_tokens = body.get("max_tokens") or body.get("max_completion_tokens") or DEFAULT_ANTHROPIC_MAX_TOKENS
    out: dict[str, Any] = {"model": model, "messages": messages, "max_tokens": max_tokens}
    if system:
        out["system"] = "\n\n".join(system)
    for key in ("temperature", "top_p", "top_k"):
        if key in body and body[key] is not None:
            out[key] = body[key]
    stop = body.get("stop")
    if stop:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    return out


# --- responses -------------------------------------------------------------------------------


def completion_from_openai(data: Any, raw: bytes | None, *, now: int) -> Completion:
    """Raises ValueError (or KeyError/TypeError) when the body is not a chat completion."""
    choice = data["choices"][0]
    message = choice.get("message") or {}
    usage = data.get("usage") or {}
    details = usage.get("prompt_tokens_details") or {}
    return Completion(
        id=str(data.get("id") or "chatcmpl-router"),
        model=str(data.get("model") or ""),
        text=text_of(message.get("content")),
        finish_reason=str(choice.get("finish_reason") or "stop"),
        usage=Usage(
            input_tokens=int(usage.get("prompt_tokens") or 0),
            cached_input_tokens=int(details.get("cached_tokens") or 0),
            output_tokens=int(usage.get("completion_tokens") or 0),
        ),
        created=int(data.get("created") or now),
        raw=raw,
        raw_shape=Shape.OPENAI if raw is not None else None,
    )


def anthropic_usage(usage: dict[str, Any]) -> Usage:
    cache_read = int(usage.get("cache_read_input_tokens") or 0)
    cache_write = int(usage.get("cache_creation_input_tokens") or 0)
    return Usage(
        input_tokens=int(usage.get("input_tokens") or 0) + cache_read + cache_write,
        cached_input_tokens=cache_read,
        output_tokens=int(usage.get("output_tokens") or 0),
    )


def completion_from_anthropic(data: Any, raw: bytes | None, *, now: int) -> Completion:
    if data.get("type") != "message" or not isinstance(data.get("content"), list):
        raise ValueError("not an Anthropic message")
    return Completion(
        id=str(data.get("id") or "msg_router"),
        model=str(data.get("model") or ""),
        text=text_of(data["content"]),
        finish_reason=_FINISH_FROM_ANTHROPIC.get(str(data.get("stop_reason")), "stop"),
        usage=anthropic_usage(data.get("usage") or {}),
        created=now,
        raw=raw,
        raw_shape=Shape.ANTHROPIC if raw is not None else None,
    )


def finish_from_anthropic(stop_reason: Any) -> str:
    return _FINISH_FROM_ANTHROPIC.get(str(stop_reason), "stop")


def render(completion: Completion, shape: Shape) -> bytes:
    """The non-streamed response body in `shape`: the provider's own bytes when the shapes match."""
    if completion.raw is not None and completion.raw_shape is shape:
        return completion.raw
    return dumps(openai_body(completion) if shape is Shape.OPENAI else anthropic_body(completion))


def _openai_usage(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_input_tokens},
    }


def openai_body(c: Completion) -> dict[str, Any]:
    return {
        "id": c.id if c.id.startswith("chatcmpl") else "chatcmpl-" + c.id,
        "object": "chat.completion",
        "created": c.created,
        "model": c.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": c.text},
                "finish_reason": c.finish_reason,
                "logprobs": None,
            }
        ],
        "usage": _openai_usage(c.usage),
    }


def _anthropic_usage(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.input_tokens - usage.cached_input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_read_input_tokens": usage.cached_input_tokens,
        "cache_creation_input_tokens": 0,
    }


def _anthropic_id(c: Completion) -> str:
    return c.id if c.id.startswith("msg_") else "msg_" + c.id


def anthropic_body(c: Completion) -> dict[str, Any]:
    return {
        "id": _anthropic_id(c),
        "type": "message",
        "role": "assistant",
        "model": c.model,
        "content": [{"type": "text", "text": c.text}],
        "stop_reason": _FINISH_TO_ANTHROPIC.get(c.finish_reason, "end_turn"),
        "stop_sequence": None,
        "usage": _anthropic_usage(c.usage),
    }


# --- streams ---------------------------------------------------------------------------------


class OpenAIStream:
    """Server-sent events of a chat-completions stream. Usage is always sent, on the last chunk
    before `data: [DONE]` (a chunk with empty `choices`, as OpenAI sends with include_usage)."""

    def __init__(self, *, id: str, model: str, created: int) -> None:
        self._head = {"id": id, "object": "chat.completion.chunk", "created": created, "model": model}
        self._started = False

    def _chunk(self, delta: dict[str, Any], finish: str | None) -> bytes:
        body = {**self._head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]}
        return b"data: " + dumps(body) + b"\n\n"

    def delta(self, text: str) -> bytes:
        if not self._started:
            self._started = True
            return self._chunk({"role": "assistant", "content": text}, None)
        return self._chunk({"content": text}, None)

    def finish(self, c: Completion) -> bytes:
        out = b"" if self._started else self.delta("")
        out += self._chunk({}, c.finish_reason)
        usage = {**self._head, "choices": [], "usage": _openai_usage(c.usage)}
        return out + b"data: " + dumps(usage) + b"\n\ndata: [DONE]\n\n"

    @staticmethod
    def error(payload: dict[str, Any]) -> bytes:
        return b"data: " + dumps(payload) + b"\n\ndata: [DONE]\n\n"


def _event(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + dumps(data) + b"\n\n"


class AnthropicStream:
    """The Messages streaming sequence: message_start, content_block_start, content_block_delta…,
    content_block_stop, message_delta (stop reason, output tokens), message_stop."""

    def __init__(self, *, id: str, model: str, input_tokens: int = 0) -> None:
        self._id = id if id.startswith("msg_") else "msg_" + id
        self._model = model
        self._input_tokens = input_tokens
        self._started = False

    def _start(self) -> bytes:
        self._started = True
        message: dict[str, Any] = {
            "id": self._id,
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": self._input_tokens, "output_tokens": 0},
        }
        return _event("message_start", {"type": "message_start", "message": message}) + _event(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        )

    def delta(self, text: str) -> bytes:
        head = b"" if self._started else self._start()
        return head + _event(
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}},
        )

    def finish(self, c: Completion) -> bytes:
        if not self._started:
            self._input_tokens = c.usage.input_tokens - c.usage.cached_input_tokens
        out = b"" if self._started else self._start()
        usage = _anthropic_usage(c.usage)
        return (
            out
            + _event("content_block_stop", {"type": "content_block_stop", "index": 0})
            + _event(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {
                        "stop_reason": _FINISH_TO_ANTHROPIC.get(c.finish_reason, "end_turn"),
                        "stop_sequence": None,
                    },
                    "usage": usage,
                },
            )
            + _event("message_stop", {"type": "message_stop"})
        )

    @staticmethod
    def error(payload: dict[str, Any]) -> bytes:
        return _event("error", payload)
