"""The deterministic offline provider for demos and tests without keys.

Its answer is derived from a hash of the prompt, so the same question always gets the same answer,
and it says what it is: the text starts with "[agentflow dev provider]", the model is
"dev/<requested model>", and the router logs the provider as "dev".
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator

from router.completion import ChatRequest, Completion, Usage
from router.config import DeploymentConfig
from router.translate import dumps, text_of

LABEL = "[agentflow dev provider]"


class DevProvider:
    name = "dev"
    shape = None

    def answer(self, request: ChatRequest) -> Completion:
        digest = hashlib.sha256(dumps(request.body["messages"])).hexdigest()
        last = next(
            (text_of(m.get("content")) for m in reversed(request.body["messages"]) if m.get("role") == "user"), ""
        )
        words = last.split()
        echo = " ".join(words[:12]) + (" …" if len(words) > 12 else "")
        text = f"{LABEL} deterministic answer {digest[:12]} to: {echo}"
        limit = request.max_tokens
        out_words = text.split(" ")
        finish = "stop"
        if limit is not None and len(out_words) > limit:
            text, finish = " ".join(out_words[:limit]), "length"
        return Completion(
            id="dev-" + digest[:24],
            model="dev/" + request.model,
            text=text,
            finish_reason=finish,
            usage=Usage(input_tokens=max(1, request.prompt_chars // 4), output_tokens=len(text.split(" "))),
            created=int(time.time()),
        )

    async def complete(self, deployment: DeploymentConfig, request: ChatRequest, *, limit_s: float) -> Completion:
        return self.answer(request)

    async def stream(
        self, deployment: DeploymentConfig, request: ChatRequest, *, limit_s: float
    ) -> AsyncIterator[str | Completion]:
        completion = self.answer(request)
        words = completion.text.split(" ")
        for i, word in enumerate(words):
            yield word if i == 0 else " " + word
        yield completion

    async def close(self) -> None:
        return None
