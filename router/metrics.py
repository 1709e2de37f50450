"""Prometheus metrics of the router, in a registry of its own (served on the API port at /metrics)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

MAX_CACHED_CHILDREN = 10_000
UPSTREAM_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
WAIT_BUCKETS = (0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
REQUEST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
UNMATCHED_ROUTE = "other"


@dataclass(frozen=True, slots=True, kw_only=True)
class UpstreamChildren:
    seconds: Any
    cost: Any
    input: Any
    cached_input: Any
    output: Any


class RouterMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.calls = Counter(
            "agentflow_llm_calls_total",
            "LLM calls answered, by provider, model and status",
            ["provider", "model", "status"],
            registry=registry,
        )
        self.cost = Counter("agentflow_llm_cost_usd_total", "LLM cost in USD", ["provider", "model"], registry=registry)
        self.tokens = Counter(
            "agentflow_llm_tokens_total",
            "LLM tokens by kind (input, cached_input, output)",
            ["provider", "model", "kind"],
            registry=registry,
        )
        self.cache = Counter(
            "agentflow_llm_cache_total",
            "Calls by cache result (hit, miss, replay, coalesced)",
            ["result"],
            registry=registry,
        )
        self.rate_limit_wait = Histogram(
            "agentflow_llm_rate_limit_wait_seconds",
            "Time calls waited for a deployment's RPM/TPM buckets",
            buckets=WAIT_BUCKETS,
            registry=registry,
        )
        self.breaker_state = Gauge(
            "agentflow_llm_breaker_state",
            "Circuit breaker per deployment: 0 closed, 1 half-open, 2 open",
            ["deployment"],
            registry=registry,
        )
        self.upstream_seconds = Histogram(
            "agentflow_llm_upstream_seconds",
            "Duration of upstream calls",
            ["provider", "model"],
            buckets=UPSTREAM_BUCKETS,
            registry=registry,
        )
        self.retries = Counter(
            "agentflow_llm_retries_total",
            "Upstream calls retried or passed to a fallback",
            ["deployment", "reason"],
            registry=registry,
        )
        self.requests = Histogram(
            "agentflow_router_http_request_duration_seconds",
            "HTTP requests the router answered (a stream until its last byte), by route and status code",
            ["route", "code"],
            buckets=REQUEST_BUCKETS,
            registry=registry,
        )
        self._cache_children = {r: self.cache.labels(r) for r in ("hit", "miss", "replay", "coalesced")}
        self._request_children: dict[tuple[str, int], Any] = {}
        self._call_children: dict[tuple[str, str, str], Any] = {}
        self._upstream_children: dict[tuple[str, str], UpstreamChildren] = {}

    def middleware(self) -> Middleware:
        """An aiohttp middleware timing every request; the route is its pattern (bounded), never the path."""

        @web.middleware
        async def timed(request: web.Request, handler: Handler) -> web.StreamResponse:
            started = time.perf_counter()
            code = 500
            try:
                response = await handler(request)
                code = response.status
                return response
            except web.HTTPException as exc:
                code = exc.status
                raise
            finally:
                self.request_done(_route(request), code, time.perf_counter() - started)

        return timed

    def request_done(self, route: str, code: int, seconds: float) -> None:
        key = (route, code)
        child = self._request_children.get(key)
        if child is None:
            child = self.requests.labels(route, str(code))
            if len(self._request_children) < MAX_CACHED_CHILDREN:
                self._request_children[key] = child
        child.observe(seconds)

    def cache_result(self, result: str) -> None:
        self._cache_children[result].inc()

    def upstream(self, provider: str, model: str) -> UpstreamChildren:
        """The label children of one upstream model (looked up once)."""
        key = (provider, model)
        children = self._upstream_children.get(key)
        if children is None:
            children = UpstreamChildren(
                seconds=self.upstream_seconds.labels(provider, model),
                cost=self.cost.labels(provider, model),
                input=self.tokens.labels(provider, model, "input"),
                cached_input=self.tokens.labels(provider, model, "cached_input"),
                output=self.tokens.labels(provider, model, "output"),
            )
            if len(self._upstream_children) < MAX_CACHED_CHILDREN:
                self._upstream_children[key] = children
        return children

    def call(self, provider: str, model: str, status: str) -> None:
        """Count one answered call (label children are looked up once, not per call)."""
        key = (provider, model, status)
        child = self._call_children.get(key)
        if child is None:
            child = self.calls.labels(provider, model, status)
            if len(self._call_children) < MAX_CACHED_CHILDREN:
                self._call_children[key] = child
        child.inc()


def _route(request: web.Request) -> str:
    info = request.match_info
    route = info.route if info is not None else None
    resource = route.resource if route is not None else None
    return resource.canonical if resource is not None else UNMATCHED_ROUTE
