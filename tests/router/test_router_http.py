"""The HTTP front against a fake provider: answers, headers, and bad input that never goes upstream."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from router_fakes import COMPLETION_TOKENS, PROMPT_TOKENS, FakeProvider
from router_support import Router, chat, message

from agentflow.llm import ERROR_STATUS, HEADER_CACHE, HEADER_OVERHEAD_MS, ErrorCode

pytestmark = [pytest.mark.component, pytest.mark.timeout(30)]


async def post(http: aiohttp.ClientSession, url: str, body: Any, **kw: Any) -> tuple[int, dict[str, Any], Any]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with http.post(url, data=data, headers={"Content-Type": "application/json", **kw.pop("headers", {})}) as r:
        text = await r.read()
        return r.status, dict(r.headers), json.loads(text) if text else None


async def test_chat_completion_goes_upstream_once_then_hits_the_cache(
    router: Router, fake: FakeProvider, http: aiohttp.ClientSession
) -> None:
    status, headers, body = await post(http, router.api + "/chat/completions", chat("hi there"))
    assert status == 200, body
    assert body["choices"][0]["message"]["content"] == "echo: hi there"
    assert body["usage"]["prompt_tokens"] == PROMPT_TOKENS
    assert headers[HEADER_CACHE] == "miss"
    assert float(headers[HEADER_OVERHEAD_MS]) >= 0
    assert fake.calls[0].body["model"] == "gpt-test"
    assert fake.calls[0].headers["Authorization"] == "Bearer sk-test-0123456789abcdef-SECRET"

    status, headers, again = await post(http, router.api + "/chat/completions", chat("hi there"))
    assert (status, headers[HEADER_CACHE]) == (200, "hit")
    assert again["choices"][0]["message"]["content"] == "echo: hi there"
    assert fake.count() == 1
    assert router.metric("agentflow_llm_cache_total", result="hit") == 1
    assert router.metric("agentflow_llm_cache_total", result="miss") == 1


async def test_messages_endpoint_answers_in_anthropic_shape(
    router: Router, fake: FakeProvider, http: aiohttp.ClientSession
) -> None:
    status, headers, body = await post(http, router.api + "/messages", message("bonjour"))
    assert status == 200, body
    assert body["type"] == "message"
    assert body["content"] == [{"type": "text", "text": "echo: bonjour"}]
    assert body["usage"]["output_tokens"] == COMPLETION_TOKENS
    assert headers[HEADER_CACHE] == "miss"
    assert fake.calls[0].path == "/v1/messages"
    assert fake.calls[0].headers["x-api-key"] == "sk-test-0123456789abcdef-SECRET"


@pytest.mark.parametrize(
    ("path", "body", "model"),
    [("/chat/completions", chat("cross", model="claude-test"), "claude"),
     ("/messages", message("cross", model="gpt-test"), "gpt")],
    ids=["openai-front-anthropic-provider", "anthropic-front-openai-provider"],
)  # fmt: skip
async def test_either_shape_is_served_by_either_provider(
    router: Router, fake: FakeProvider, http: aiohttp.ClientSession, path: str, body: dict[str, Any], model: str
) -> None:
    status, _, answer = await post(http, router.api + path, body)
    assert status == 200, answer
    upstream = fake.calls[0]
    if model == "claude":
        assert upstream.path == "/v1/messages"
        assert upstream.body["max_tokens"] > 0
        assert answer["choices"][0]["message"]["content"] == "echo: cross"
        assert answer["choices"][0]["finish_reason"] == "stop"
    else:
        assert upstream.path == "/v1/chat/completions"
        assert answer["content"][0]["text"] == "echo: cross"
        assert answer["stop_reason"] == "end_turn"


async def test_system_prompt_and_stop_sequences_cross_over(
    router: Router, fake: FakeProvider, http: aiohttp.ClientSession
) -> None:
    body = chat("q", model="claude-test", stop=["END"], max_tokens=32)
    body["messages"].insert(0, {"role": "system", "content": "be brief"})
    status, _, _ = await post(http, router.api + "/chat/completions", body)
    assert status == 200
    sent = fake.calls[0].body
    assert sent["system"] == "be brief"
    assert sent["stop_sequences"] == ["END"]
    assert sent["max_tokens"] == 32
    assert [m["role"] for m in sent["messages"]] == ["user"]


BAD_OPENAI = [
    ("malformed-json", b"{not json", ErrorCode.INVALID_REQUEST, None),
    ("not-an-object", [1, 2], ErrorCode.INVALID_REQUEST, None),
    ("empty-body", b"", ErrorCode.INVALID_REQUEST, None),
    ("missing-model", {"messages": [{"role": "user", "content": "x"}]}, ErrorCode.INVALID_REQUEST, "model"),
    ("missing-messages", {"model": "gpt-test"}, ErrorCode.INVALID_REQUEST, "messages"),
    ("empty-messages", {"model": "gpt-test", "messages": []}, ErrorCode.INVALID_REQUEST, "messages"),
    ("model-wrong-type", {"model": 4, "messages": [{"role": "user", "content": "x"}]}, ErrorCode.INVALID_REQUEST,
     "model"),
    ("bad-role", {"model": "gpt-test", "messages": [{"role": "robot", "content": "x"}]}, ErrorCode.INVALID_REQUEST,
     "messages[0].role"),
    ("content-wrong-type", {"model": "gpt-test", "messages": [{"role": "user", "content": 5}]},
     ErrorCode.INVALID_REQUEST, "messages[0].content"),
    ("temperature-string", chat(temperature="hot"), ErrorCode.INVALID_REQUEST, "temperature"),
    ("temperature-range", chat(temperature=9), ErrorCode.INVALID_REQUEST, "temperature"),
    ("max-tokens-zero", chat(max_tokens=0), ErrorCode.INVALID_REQUEST, "max_tokens"),
    ("stream-not-bool", chat(stream="yes"), ErrorCode.INVALID_REQUEST, "stream"),
    ("n-above-one", chat(n=3), ErrorCode.INVALID_REQUEST, "n"),
    ("unknown-model", chat(model="mystery-model"), ErrorCode.MODEL_NOT_FOUND, "model"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "code", "param"), [c[1:] for c in BAD_OPENAI], ids=[c[0] for c in BAD_OPENAI])
async def test_bad_chat_requests_get_openai_errors_and_never_reach_upstream(
    router: Router, fake: FakeProvider, http: aiohttp.ClientSession, body: Any, code: ErrorCode, param: str | None
) -> None:
    status, headers, answer = await post(http, router.api + "/chat/completions", body)
    assert status == ERROR_STATUS[code]
    assert answer["error"]["code"] == code.value
    assert answer["error"]["type"]
    assert answer["error"]["message"]
    assert answer["error"]["param"] == param
    assert headers[HEADER_CACHE] == "miss" and HEADER_OVERHEAD_MS in headers
    assert fake.calls == []


BAD_ANTHROPIC = [
    ("missing-max-tokens", {"model": "claude-test", "messages": [{"role": "user", "content": "x"}]}, 400),
    ("system-role-in-messages", {"model": "claude-test", "max_tokens": 5,
                                 "messages": [{"role": "system", "content": "x"}]}, 400),
    ("temperature-above-one", message(temperature=1.5), 400),
    ("stop-sequences-not-strings", message(stop_sequences=[1]), 400),
    ("unknown-model", message(model="nobody"), 404),
]  # fmt: skip


@pytest.mark.parametrize(("body", "status"), [c[1:] for c in BAD_ANTHROPIC], ids=[c[0] for c in BAD_ANTHROPIC])
async def test_bad_messages_requests_get_anthropic_errors(
    router: Router, fake: FakeProvider, http: aiohttp.ClientSession, body: Any, status: int
) -> None:
    got, _, answer = await post(http, router.api + "/messages", body)
    assert got == status
    assert answer["type"] == "error"
    assert answer["error"]["type"] in ("invalid_request_error", "not_found_error")
    assert answer["error"]["message"]
    assert fake.calls == []


async def test_oversized_body_is_refused_with_413(
    start_router: Any, fake: FakeProvider, http: aiohttp.ClientSession
) -> None:
    router = await start_router(max_body_size=2048)
    status, _, answer = await post(http, router.api + "/chat/completions", chat("x" * 4096))
    assert status == 413
    assert answer["error"]["code"] == ErrorCode.BODY_TOO_LARGE.value
    assert fake.calls == []


@pytest.mark.parametrize(
    "headers",
    [{"x-agentflow-attempt": "two", "x-agentflow-run": "r", "x-agentflow-step": "s"},
     {"x-agentflow-run": "r"},
     {"x-agentflow-run": "r", "x-agentflow-step": "s", "x-agentflow-attempt": "0"},
     {"x-agentflow-budget-usd": "lots"},
     {"x-agentflow-budget-tokens": "-5"}],
    ids=["attempt-not-int", "run-without-step", "attempt-zero", "budget-not-number", "budget-negative"],
)  # fmt: skip
async def test_bad_attribution_headers_are_refused(
    router: Router, fake: FakeProvider, http: aiohttp.ClientSession, headers: dict[str, str]
) -> None:
    status, _, answer = await post(http, router.api + "/chat/completions", chat(), headers=headers)
    assert status == 400
    assert answer["error"]["code"] == "invalid_request"
    assert fake.calls == []


async def test_models_health_status_metrics_and_unknown_routes(router: Router, http: aiohttp.ClientSession) -> None:
    async with http.get(router.url + "/health") as r:
        assert (r.status, await r.json()) == (200, {"status": "ok"})
        assert r.headers[HEADER_CACHE] == "miss" and float(r.headers[HEADER_OVERHEAD_MS]) >= 0
    async with http.get(router.api + "/models") as r:
        models = await r.json()
        assert models["object"] == "list"
    async with http.get(router.api + "/agentflow/status") as r:
        status = await r.json()
        assert [p["name"] for p in status["providers"]] == ["openai", "anthropic"]
        assert status["cache"] == {"enabled": True, "entries": 0, "bytes": 0, "evictions": 0}
        assert status["spend_today_usd"] == 0
    async with http.get(router.url + "/metrics") as r:
        text = await r.text()
        assert r.status == 200
        assert "agentflow_llm_calls_total" in text
    async with http.get(router.api + "/nothing-here") as r:
        assert r.status == 404 and HEADER_OVERHEAD_MS in r.headers
        assert (await r.json())["error"]["code"] == "not_found"
    async with http.get(router.api + "/chat/completions") as r:
        assert r.status == 405
        assert (await r.json())["error"]["type"] == "invalid_request_error"


async def test_no_store_header_and_body_field_skip_the_cache(
    router: Router, fake: FakeProvider, http: aiohttp.ClientSession
) -> None:
    url = router.api + "/chat/completions"
    for _ in range(2):
        _, headers, _ = await post(http, url, chat("fresh"), headers={"Cache-Control": "no-store"})
        assert headers[HEADER_CACHE] == "miss"
    for _ in range(2):
        _, headers, _ = await post(http, url, chat("fresh2", agentflow={"cache": False}))
        assert headers[HEADER_CACHE] == "miss"
    assert fake.count() == 4
    assert fake.calls[2].body.get("agentflow") is None  # the router's own field stays home


async def test_sampled_calls_without_a_seed_are_not_cached(
    router: Router, fake: FakeProvider, http: aiohttp.ClientSession
) -> None:
    url = router.api + "/chat/completions"
    sampled = {"model": "gpt-test", "messages": [{"role": "user", "content": "poem"}], "temperature": 0.9}
    for _ in range(2):
        _, headers, _ = await post(http, url, sampled)
        assert headers[HEADER_CACHE] == "miss"
    seeded = {**sampled, "seed": 42}
    _, first, _ = await post(http, url, seeded)
    _, second, _ = await post(http, url, seeded)
    assert (first[HEADER_CACHE], second[HEADER_CACHE]) == ("miss", "hit")
    assert fake.count() == 3


async def test_stream_only_fields_do_not_change_the_request_hash(
    router: Router, fake: FakeProvider, http: aiohttp.ClientSession
) -> None:
    url = router.api + "/chat/completions"
    _, a, _ = await post(http, url, chat("same", user="alice"))
    _, b, _ = await post(http, url, chat("same", user="bob", metadata={"k": "v"}))
    _, c, _ = await post(http, url, chat("same", max_tokens=7))
    assert a["x-agentflow-request-hash"] == b["x-agentflow-request-hash"] != c["x-agentflow-request-hash"]
    assert (b[HEADER_CACHE], c[HEADER_CACHE]) == ("hit", "miss")


async def test_metrics_expose_every_router_family(
    router: Router, fake: FakeProvider, http: aiohttp.ClientSession
) -> None:
    await post(http, router.api + "/chat/completions", chat("counted"))
    await post(http, router.api + "/chat/completions", chat("counted"))
    async with http.get(router.url + "/metrics") as r:
        text = await r.text()
    for family in (
        'agentflow_llm_calls_total{model="gpt-test",provider="openai",status="ok"} 1.0',
        'agentflow_llm_calls_total{model="gpt-test",provider="cache",status="ok"} 1.0',
        'agentflow_llm_cost_usd_total{model="gpt-test",provider="openai"}',
        'agentflow_llm_tokens_total{kind="output",model="gpt-test",provider="openai"} 5.0',
        'agentflow_llm_cache_total{result="hit"} 1.0',
        'agentflow_llm_cache_total{result="miss"} 1.0',
        "agentflow_llm_rate_limit_wait_seconds_count",
        'agentflow_llm_breaker_state{deployment="openai/gpt-test"} 0.0',
        'agentflow_llm_upstream_seconds_count{model="gpt-test",provider="openai"} 1.0',
    ):
        assert family in text
