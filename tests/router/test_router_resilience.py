"""Retries honouring Retry-After, backoff, fallbacks, the circuit breaker, timeouts and broken upstreams.

The router runs on a manual clock: a test sees a retry waiting (a pending sleep), advances the
clock, and sees the retry go. Nothing here sleeps to let something happen.
"""

from __future__ import annotations

import asyncio
import json
import socket
from datetime import timedelta
from email.utils import formatdate
from typing import Any

import aiohttp
import pytest
from router_fakes import Drop as DropConnection
from router_fakes import FakeProvider, Hold, Malformed, Reply
from router_support import API_KEY, Router, StartRouter, chat, wait_until

from agentflow.clock import ManualClock
from router.config import (
    BreakerConfig,
    CacheConfig,
    DeploymentConfig,
    ModelConfig,
    ProviderConfig,
    RetryConfig,
    Secret,
)

pytestmark = [pytest.mark.component, pytest.mark.timeout(30)]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def routed(
    fake: FakeProvider, *, retries: int = 2, dead: bool = False, timeout: timedelta | None = None
) -> dict[str, Any]:
    """Model "smart": deployment `primary` (OpenAI shape) then `backup` (Anthropic shape)."""
    primary_url = f"http://127.0.0.1:{closed_port()}/v1" if dead else fake.url + "/v1"
    return {
        "providers": (
            ProviderConfig(name="openai", kind="openai", base_url=primary_url, api_key=Secret(API_KEY)),
            ProviderConfig(name="anthropic", kind="anthropic", base_url=fake.url, api_key=Secret(API_KEY)),
        ),
        "deployments": (
            DeploymentConfig(name="primary", provider="openai", model="gpt-a", max_retries=retries, timeout=timeout),
            DeploymentConfig(name="backup", provider="anthropic", model="claude-b", max_retries=retries),
        ),
        "models": (ModelConfig(name="smart", deployments=("primary",), fallbacks=("backup",)),),
    }


async def ask(http: aiohttp.ClientSession, router: Router, body: dict[str, Any] | None = None,
              headers: dict[str, str] | None = None) -> tuple[int, Any]:  # fmt: skip
    async with http.post(router.api + "/chat/completions", json=body or chat("hi", model="smart"),
                         headers=headers or {}) as r:  # fmt: skip
        return r.status, await r.json()


@pytest.mark.parametrize("form", ["seconds", "http-date"])
async def test_429_is_retried_after_its_retry_after(
    start_router: StartRouter, fake: FakeProvider, http: aiohttp.ClientSession, clock: ManualClock, form: str
) -> None:
    router = await start_router(clock=clock, **routed(fake))
    after = "20" if form == "seconds" else formatdate(clock.time() + 20, usegmt=True)
    fake.script(Reply(status=429, body={"error": {"message": "slow down"}}, headers={"Retry-After": after}))
    call = asyncio.create_task(ask(http, router))
    await wait_until(lambda: clock.sleepers == 1, what="the retry to wait")
    clock.tick(19)
    assert clock.sleepers == 1 and fake.count() == 1  # not yet
    clock.tick(1.5)
    status, body = await call
    assert status == 200 and body["choices"][0]["message"]["content"] == "echo: hi"
    assert [c.body["model"] for c in fake.calls] == ["gpt-a", "gpt-a"]


async def test_5xx_backs_off_exponentially_then_falls_back(
    start_router: StartRouter, fake: FakeProvider, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    retry = RetryConfig(base=timedelta(seconds=1), cap=timedelta(seconds=10))
    router = await start_router(clock=clock, retry=retry, breaker=BreakerConfig(failures=10), **routed(fake))
    fake.script(*[Reply(status=503, body={"error": {"message": "down"}}) for _ in range(3)])
    call = asyncio.create_task(ask(http, router))
    for n in (1, 2):
        await wait_until(lambda: clock.sleepers == 1, what=f"backoff {n}")
        assert fake.count() == n
        clock.tick(2.0**n)  # the delay lies in [0.5, 1] · base · 2^(n-1)
    status, body = await call
    assert status == 200
    assert [c.path for c in fake.calls] == ["/v1/chat/completions"] * 3 + ["/v1/messages"]
    assert body["choices"][0]["message"]["content"] == "echo: hi"
    assert router.metric("agentflow_llm_retries_total", deployment="primary", reason="retry") == 2
    assert router.metric("agentflow_llm_retries_total", deployment="primary", reason="fallback") == 1


async def test_a_retry_after_longer_than_max_wait_moves_to_the_fallback_at_once(
    start_router: StartRouter, fake: FakeProvider, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    router = await start_router(clock=clock, **routed(fake))
    fake.script(Reply(status=429, body={"error": {}}, headers={"Retry-After": "3600"}))
    status, _ = await ask(http, router)
    assert status == 200
    assert [c.path for c in fake.calls] == ["/v1/chat/completions", "/v1/messages"]


async def test_the_breaker_opens_skips_the_deployment_and_probes_after_its_cooldown(
    start_router: StartRouter, fake: FakeProvider, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    breaker = BreakerConfig(failures=2, cooldown=timedelta(seconds=30))
    router = await start_router(clock=clock, breaker=breaker, cache=_no_cache(), **routed(fake, retries=0))
    for _ in range(2):
        fake.script(Reply(status=500, body={}))  # the fake's script is shared by both deployments: one each call
        assert (await ask(http, router))[0] == 200  # primary fails, backup answers
    assert router.metric("agentflow_llm_breaker_state", deployment="primary") == 2  # open
    before = fake.count("/chat/completions")
    assert (await ask(http, router))[0] == 200
    assert fake.count("/chat/completions") == before  # skipped while open
    async with http.get(router.api + "/agentflow/status") as r:
        assert (await r.json())["breakers"]["primary"] == "open"
    clock.tick(30)
    assert (await ask(http, router))[0] == 200  # the probe goes to primary and succeeds
    assert fake.count("/chat/completions") == before + 1
    assert router.metric("agentflow_llm_breaker_state", deployment="primary") == 0


def _no_cache() -> CacheConfig:
    return CacheConfig(enabled=False)


async def test_a_provider_that_refuses_connections_is_skipped_without_waiting(
    start_router: StartRouter, fake: FakeProvider, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    router = await start_router(clock=clock, cache=_no_cache(), **routed(fake, dead=True))
    for _ in range(2):  # no clock advance is needed: nothing waits on a refused connection
        status, body = await ask(http, router)
        assert status == 200 and body["choices"][0]["message"]["content"] == "echo: hi"
    assert fake.count("/chat/completions") == 0 and fake.count("/v1/messages") == 2
    assert router.metric("agentflow_llm_retries_total", deployment="primary", reason="unavailable") == 1


async def test_every_deployment_down_answers_503(
    start_router: StartRouter, http: aiohttp.ClientSession, tmp_path: Any
) -> None:
    dead = ProviderConfig(name="openai", kind="openai", base_url=f"http://127.0.0.1:{closed_port()}/v1",
                          models=("*",))  # fmt: skip
    router = await start_router(providers=(dead,))
    status, body = await ask(http, router, chat("x", model="gpt-z"))
    assert status == 503 and body["error"]["code"] == "upstream_unavailable"


async def test_context_length_errors_fall_back_and_other_4xx_do_not(
    start_router: StartRouter, fake: FakeProvider, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    router = await start_router(clock=clock, cache=_no_cache(), **routed(fake))
    too_long = {"error": {"code": "context_length_exceeded", "message": "This model's maximum context length is 8k"}}
    fake.script(Reply(status=400, body=too_long))
    assert (await ask(http, router))[0] == 200
    assert [c.path for c in fake.calls] == ["/v1/chat/completions", "/v1/messages"]
    fake.script(
        Reply(status=400, body={"error": {"message": "unsupported parameter", "type": "invalid_request_error"}})
    )
    status, body = await ask(http, router)
    assert status == 400 and body["error"]["code"] == "upstream_rejected"
    assert "unsupported parameter" in body["error"]["message"]
    assert len(fake.calls) == 3


async def test_rate_limited_everywhere_answers_429(
    start_router: StartRouter, fake: FakeProvider, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    router = await start_router(clock=clock, **routed(fake, retries=0))
    fake.script(*[Reply(status=429, body={"error": {}}, headers={"Retry-After": "0"}) for _ in range(2)])
    status, body = await ask(http, router)
    assert status == 429 and body["error"]["code"] == "rate_limited"
    assert body["error"]["type"] == "rate_limit_error"


@pytest.mark.parametrize("broken", [Malformed(), DropConnection()], ids=["malformed-body", "dropped-connection"])
async def test_malformed_answers_and_dropped_connections_are_retried(
    start_router: StartRouter, fake: FakeProvider, http: aiohttp.ClientSession, clock: ManualClock, broken: Any
) -> None:
    router = await start_router(clock=clock, retry=RetryConfig(base=timedelta(0)), **routed(fake))
    fake.script(broken)
    status, body = await ask(http, router)
    assert status == 200 and body["choices"][0]["message"]["content"] == "echo: hi"
    assert [c.path for c in fake.calls] == ["/v1/chat/completions"] * 2


async def test_a_stream_that_breaks_after_its_first_delta_ends_with_an_error_event(
    start_router: StartRouter, fake: FakeProvider, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    fake.words = 6
    router = await start_router(clock=clock, **routed(fake))
    fake.script(DropConnection(after_chunks=2))
    async with http.post(router.api + "/chat/completions", json=chat("broken stream", model="smart", stream=True)) as r:
        assert r.status == 200
        events = [json.loads(line[6:]) for line in (await r.read()).splitlines()
                  if line.startswith(b"data: {")]  # fmt: skip
    text = "".join(e["choices"][0]["delta"].get("content") or "" for e in events[:-1])
    assert text and "echo: broken stream".startswith(text) and text != "echo: broken stream"
    assert events[-1]["error"]["code"] == "upstream_error"
    assert fake.count() == 1  # not retried once text went out


async def test_a_deployment_timeout_falls_back_and_a_call_timeout_answers_504(
    start_router: StartRouter, fake: FakeProvider, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    router = await start_router(clock=clock, cache=_no_cache(),
                                **routed(fake, retries=0, timeout=timedelta(milliseconds=200)))  # fmt: skip
    gate = asyncio.Event()
    fake.script(Hold(gate=gate))
    status, body = await ask(http, router)
    assert status == 200 and [c.path for c in fake.calls] == ["/v1/chat/completions", "/v1/messages"]
    fake.script(Hold(gate=gate), Hold(gate=gate))
    status, body = await ask(http, router, headers={"x-agentflow-timeout": "0.3"})
    assert status == 504 and body["error"]["code"] == "upstream_timeout"
    gate.set()


async def test_rpm_limit_makes_calls_wait_on_the_clock(
    start_router: StartRouter, fake: FakeProvider, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    limited = routed(fake)
    limited["deployments"] = (DeploymentConfig(name="primary", provider="openai", model="gpt-a", rpm=1),)
    limited["models"] = (ModelConfig(name="smart", deployments=("primary",)),)
    router = await start_router(clock=clock, cache=_no_cache(), **limited)
    assert (await ask(http, router))[0] == 200
    second = asyncio.create_task(ask(http, router))
    await wait_until(lambda: clock.sleepers == 1, what="the second call to wait for the bucket")
    assert fake.count() == 1
    clock.tick(60)
    assert (await second)[0] == 200
    assert fake.count() == 2
    assert router.metric("agentflow_llm_rate_limit_wait_seconds_count") == 1
    assert router.metric("agentflow_llm_rate_limit_wait_seconds_sum") == pytest.approx(60)
