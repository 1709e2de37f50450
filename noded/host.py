"""The node's side of an attempt's host calls.

A worker relays the calls it cannot answer inside the sandbox (`llm.complete`,
`http.fetch`) to noded; `StepHost` is the pool `HostHandler` that dispatches
each to the service granted for the attempt. An operation the step was not
granted never gets here: the worker refuses it with DENIED first, so reaching
the fallback means the node itself lacks the service (no router configured).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agentflow.vocabulary import Capability
from noded.llm import LLMCalls
from noded.sandbox import HostCallError, HostCallRefused

if TYPE_CHECKING:
    from noded.egress import Egress  # made (and aiohttp loaded) only for a step that fetches


@dataclass(frozen=True, slots=True)
class StepHost:
    """Answers one attempt's relayed host calls."""

    llm: LLMCalls | None = None
    egress: Egress | None = None

    async def __call__(self, op: str, request: Any, seconds_left: float) -> Any:
        if op == Capability.LLM_COMPLETE and self.llm is not None:
            return await self.llm.complete(request, seconds_left)
        if op == Capability.HTTP_FETCH and self.egress is not None:
            return await self.egress.fetch(request, seconds_left)
        raise HostCallRefused(HostCallError.UNAVAILABLE, f"{op} is not served on this node")
