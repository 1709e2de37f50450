"""What a call asks and what it is answered, independent of the API shape it came in or went out in.

The request keeps the OpenAI chat-completions body as its canonical form (`body`), plus the body the
client actually sent (`original`) so that a provider of the client's own shape gets it unchanged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


class Shape(StrEnum):
    """The two API shapes, in front (what the client speaks) and behind (what a provider speaks)."""

    OPENAI = "openai"
    ANTHROPIC = "anthropic"


@dataclass(frozen=True, slots=True, kw_only=True)
class Usage:
    input_tokens: int = 0
    cached_input_tokens: int = 0  # part of input_tokens served from the provider's prompt cache
    output_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True, slots=True, kw_only=True)
class Completion:
    """One answer. `raw` is the provider's own response body when it was not streamed, in `raw_shape`."""

    id: str
    model: str
    text: str
    finish_reason: str  # OpenAI's words: stop, length, tool_calls, content_filter
    usage: Usage
    created: int
    raw: bytes | None = None
    raw_shape: Shape | None = None

    def to_json(self) -> dict[str, Any]:
        u = self.usage
        return {
            "id": self.id,
            "model": self.model,
            "text": self.text,
            "finish_reason": self.finish_reason,
            "usage": [u.input_tokens, u.cached_input_tokens, u.output_tokens],
            "created": self.created,
            "raw": self.raw.decode() if self.raw is not None else None,
            "raw_shape": self.raw_shape.value if self.raw_shape is not None else None,
        }

    def encode(self) -> bytes:
        """The storage form (cache, journal): a JSON head line, then the raw body as it is (no escaping)."""
        u = self.usage
        shape = self.raw_shape.value if self.raw_shape is not None else None
        head = [self.id, self.model, self.text, self.finish_reason, u.input_tokens, u.cached_input_tokens,
                u.output_tokens, self.created, shape]  # fmt: skip
        return _encode(head).encode() + b"\n" + (self.raw or b"")

    @classmethod
    def decode(cls, data: bytes) -> Completion:
        head, _, raw = data.partition(b"\n")
        cid, model, text, finish, i, c, o, created, shape = json.loads(head)
        return cls(id=cid, model=model, text=text, finish_reason=finish, created=created,
                   usage=Usage(input_tokens=i, cached_input_tokens=c, output_tokens=o),
                   raw=raw if shape else None, raw_shape=Shape(shape) if shape else None)  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Completion:
        i, c, o = data["usage"]
        raw = data.get("raw")
        shape = data.get("raw_shape")
        return cls(
            id=str(data["id"]),
            model=str(data["model"]),
            text=str(data["text"]),
            finish_reason=str(data["finish_reason"]),
            usage=Usage(input_tokens=int(i), cached_input_tokens=int(c), output_tokens=int(o)),
            created=int(data["created"]),
            raw=raw.encode() if isinstance(raw, str) else None,
            raw_shape=Shape(shape) if shape else None,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatRequest:
    """A validated call. `model` is the name the client asked for (an alias or a model)."""

    model: str
    body: dict[str, Any]  # OpenAI-shaped, canonical
    original: dict[str, Any]  # as the client sent it, in `shape`
    shape: Shape
    stream: bool
    max_tokens: int | None
    prompt_chars: int
    no_store: bool = False
    deterministic: bool = False  # temperature 0, or a seed: the same request gets the same answer
    raw: bytes = b""  # the body as received, forwarded unchanged to a provider of the same shape when it can be
    extra: dict[str, Any] = field(default_factory=dict)

    def estimated_prompt_tokens(self) -> int:
        """A deliberately high estimate (3 characters a token) for budget reservations."""
        return self.prompt_chars // 3 + 8
