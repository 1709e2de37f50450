"""The canonical request hash: over exactly what changes the answer.

It covers the requested model name and the canonical (OpenAI-shaped) body with keys sorted, minus
what only changes how the answer is delivered or billed: `stream`, `stream_options`, `user`,
`metadata`, `store`, `service_tier` and the router's own `agentflow` field. The same question asked
on `/v1/chat/completions` and on `/v1/messages` therefore hashes alike.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from router.completion import ChatRequest

EXCLUDED_KEYS = frozenset(
    {"model", "stream", "stream_options", "user", "metadata", "store", "service_tier", "agentflow"}
)
_encode = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode


def request_hash(request: ChatRequest) -> str:
    body = request.body
    canonical: dict[str, Any] = {k: v for k, v in body.items() if k not in EXCLUDED_KEYS}
    if canonical.get("max_completion_tokens") is not None and canonical.get("max_tokens") is None:
        canonical["max_tokens"] = canonical.pop("max_completion_tokens")
    canonical["model"] = request.model
    return hashlib.sha256(_encode(canonical).encode()).hexdigest()
