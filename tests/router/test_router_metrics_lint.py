"""The router's metrics: request latency by route pattern and status code (never the path), and
an exposition `promtool check metrics` accepts once every family has samples."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from prometheus_support import lint
from router_support import Router, chat, message

pytestmark = [pytest.mark.component, pytest.mark.timeout(30)]

REQUESTS = "agentflow_router_http_request_duration_seconds"


async def call(http: aiohttp.ClientSession, method: str, url: str, body: Any = None) -> int:
    data = None if body is None else json.dumps(body).encode()
    async with http.request(method, url, data=data, headers={"Content-Type": "application/json"}) as response:
        await response.read()
        return response.status


async def test_requests_are_timed_by_route_and_code(router: Router, http: aiohttp.ClientSession) -> None:
    assert await call(http, "POST", router.api + "/chat/completions", chat("timed")) == 200
    assert await call(http, "POST", router.api + "/chat/completions", chat("timed")) == 200  # a cache hit
    assert await call(http, "POST", router.api + "/chat/completions", {"model": "gpt-test"}) == 400
    assert await call(http, "GET", router.url + "/no/such/path-4711") == 404
    assert await call(http, "GET", router.url + "/health") == 200

    assert router.metric(REQUESTS + "_count", route="/v1/chat/completions", code="200") == 2
    assert router.metric(REQUESTS + "_count", route="/v1/chat/completions", code="400") == 1
    assert router.metric(REQUESTS + "_count", route="/{tail}", code="404") == 1
    assert router.metric(REQUESTS + "_count", route="/health", code="200") == 1
    assert router.metric(REQUESTS + "_sum", route="/v1/chat/completions", code="200") > 0
    async with http.get(router.url + "/metrics") as response:
        text = await response.text()
    assert "path-4711" not in text
    assert f'{REQUESTS}_count{{code="200",route="/health"}} 1.0' in text


async def test_exposition_passes_promtool_check_metrics(router: Router, http: aiohttp.ClientSession) -> None:
    assert await call(http, "POST", router.api + "/chat/completions", chat("lint")) == 200
    assert await call(http, "POST", router.api + "/messages", message("lint")) == 200
    metrics = router.engine.metrics
    metrics.breaker_state.labels("openai-gpt").set(0)
    metrics.retries.labels("openai-gpt", "retry").inc()
    metrics.rate_limit_wait.observe(0.01)
    assert router.metric("agentflow_llm_calls_total", provider="openai", model="gpt-test", status="ok") == 1
    result = lint(router.registry)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", ""), result.stdout + result.stderr
