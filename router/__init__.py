"""The node-local caching LLM router: OpenAI- and Anthropic-compatible HTTP on loopback.

Exact cache, request coalescing, a replay journal for retried step attempts, cost ledger and
budgets, RPM/TPM limits, circuit breakers, retries and ordered fallbacks. Run it with
`python -m router` (later `agentflow router`); the HTTP contract is described in `agentflow.llm`
and in the README's Router section.
"""

from router.app import main, serve, start
from router.config import RouterConfig
from router.engine import CallOptions, Engine, Ticket

__all__ = ["CallOptions", "Engine", "RouterConfig", "Ticket", "main", "serve", "start"]
