"""Budgets: a grant is reserved before the upstream call and settled after; over-budget calls get 402."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from router_fakes import COMPLETION_TOKENS, PROMPT_TOKENS, FakeProvider, Hold
from router_support import Router, StartRouter, wait_until

from agentflow.vocabulary import EventType
from router.config import Price

pytestmark = [pytest.mark.component, pytest.mark.timeout(60)]

REAL_TOKENS = PROMPT_TOKENS + COMPLETION_TOKENS


def body(text: str, max_tokens: int = 5) -> dict[str, Any]:
    return {"model": "gpt-test", "messages": [{"role": "user", "content": text}], "temperature": 0,
            "max_tokens": max_tokens}  # fmt: skip


def grant(*, usd: float | None = None, tokens: int | None = None, attempt: int = 1) -> dict[str, str]:
    headers = {"x-agentflow-run": "run-b", "x-agentflow-step": "s", "x-agentflow-attempt": str(attempt)}
    if usd is not None:
        headers["x-agentflow-budget-usd"] = str(usd)
    if tokens is not None:
        headers["x-agentflow-budget-tokens"] = str(tokens)
    return headers


async def call(http: aiohttp.ClientSession, router: Router, payload: dict[str, Any], headers: dict[str, str]) -> Any:
    async with http.post(router.api + "/chat/completions", json=payload, headers=headers) as r:
        return r.status, await r.json()


async def test_a_hundred_concurrent_calls_never_exceed_one_grant(
    router: Router, fake: FakeProvider, http: aiohttp.ClientSession
) -> None:
    estimate = 4 // 3 + 8 + 5  # prompt "q000" → chars // 3 + 8, plus max_tokens
    allowed = 7
    gate = asyncio.Event()
    fake.script(*[Hold(gate=gate) for _ in range(100)])
    headers = grant(tokens=allowed * estimate)
    calls = [asyncio.create_task(call(http, router, body(f"q{i:03d}"), headers)) for i in range(100)]
    refused = await wait_until(lambda: [c for c in calls if c.done()] if sum(c.done() for c in calls) == 100 - allowed
                               else None, what="the over-budget calls to be refused")  # fmt: skip
    assert all(c.result()[0] == 402 for c in refused)
    await wait_until(lambda: fake.count() == allowed, what="the granted calls to reach upstream")
    assert router.engine.busy == allowed  # the refused ones never went upstream
    gate.set()
    results = await asyncio.gather(*calls)
    assert sorted(s for s, _ in results) == [200] * allowed + [402] * (100 - allowed)
    error = next(b for s, b in results if s == 402)["error"]
    assert (error["type"], error["code"]) == ("budget_exceeded", "budget_exceeded_tokens")
    await router.engine.flush()
    async with http.get(router.api + "/agentflow/spend", params={"run": "run-b", "step": "s", "attempt": "1"}) as r:
        spend = await r.json()
    assert spend["upstream_calls"] == allowed
    assert spend["tokens"]["total"] == allowed * REAL_TOKENS


async def test_usd_grant_refuses_with_402_before_anything_goes_upstream(
    start_router: StartRouter, fake: FakeProvider, http: aiohttp.ClientSession
) -> None:
    router = await start_router(pricing={"gpt-*": Price(input=1000.0, output=2000.0)})
    # estimate: (1 // 3 + 8) input, 5 output tokens → 0.009 + 0.01 = $0.018; a call spends 12·1e-3 + 5·2e-3 = $0.022
    status, answer = await call(http, router, body("x"), grant(usd=0.01))
    assert status == 402
    assert (answer["error"]["type"], answer["error"]["code"]) == ("budget_exceeded", "budget_exceeded_usd")
    assert "USD budget exceeded" in answer["error"]["message"]
    assert fake.calls == []
    status, _ = await call(http, router, body("x"), grant(usd=0.05))
    assert status == 200
    status, _ = await call(http, router, body("y"), grant(usd=0.05))  # 0.022 spent + 0.018 estimate ≤ 0.05
    assert status == 200
    status, answer = await call(http, router, body("z"), grant(usd=0.05))  # 0.044 + 0.018 > 0.05
    assert status == 402
    assert fake.count() == 2


async def test_crossed_thresholds_are_in_the_spend_data(
    router: Router, fake: FakeProvider, http: aiohttp.ClientSession
) -> None:
    codes = [(await call(http, router, body(t), grant(tokens=60)))[0] for t in ("a", "b", "c", "d")]
    assert codes == [200, 200, 200, 402]  # spent 17, 34, 51; then 51 + 13 > 60
    await router.engine.flush()
    async with http.get(router.api + "/agentflow/spend", params={"run": "run-b", "step": "s", "attempt": "1"}) as r:
        spend = await r.json()
    crossed = [(t["event"], t["kind"], t["fraction"]) for t in spend["thresholds"]]
    assert crossed == [(EventType.COST_THRESHOLD_MET, "tokens", 0.5), (EventType.COST_THRESHOLD_MET, "tokens", 0.8)]
    assert spend["grant"]["tokens"] == 60 and spend["grant"]["reserved_tokens"] == 0


async def test_cache_hits_and_replays_do_not_spend_the_grant(
    router: Router, fake: FakeProvider, http: aiohttp.ClientSession
) -> None:
    assert (await call(http, router, body("same"), grant(tokens=30)))[0] == 200
    for _ in range(3):  # hits: free, so the grant of 30 (17 spent) is not touched
        assert (await call(http, router, body("same"), grant(tokens=30)))[0] == 200
    assert fake.count() == 1


async def test_a_grant_without_attribution_bounds_the_single_call(
    router: Router, fake: FakeProvider, http: aiohttp.ClientSession
) -> None:
    status, answer = await call(http, router, body("solo", max_tokens=500), {"x-agentflow-budget-tokens": "100"})
    assert (status, answer["error"]["code"]) == (402, "budget_exceeded_tokens")
    status, _ = await call(http, router, body("solo", max_tokens=5), {"x-agentflow-budget-tokens": "100"})
    assert status == 200


async def test_spend_sums_cost_by_model(router: Router, fake: FakeProvider, http: aiohttp.ClientSession) -> None:
    await call(http, router, body("one"), grant())
    await call(http, router, {"model": "claude-test", "max_tokens": 5, "temperature": 0,
                              "messages": [{"role": "user", "content": "two"}]}, grant())  # fmt: skip
    await router.engine.flush()
    async with http.get(router.api + "/agentflow/spend", params={"run": "run-b"}) as r:
        spend = await r.json()
    gpt = (PROMPT_TOKENS * 1.0 + COMPLETION_TOKENS * 2.0) / 1e6
    claude = (PROMPT_TOKENS * 3.0 + COMPLETION_TOKENS * 15.0) / 1e6
    assert spend["cost_usd"] == pytest.approx(gpt + claude)
    assert [(m["provider"], m["model"]) for m in spend["by_model"]] == [("anthropic", "claude-test"),
                                                                         ("openai", "gpt-test")]  # fmt: skip
    assert router.metric("agentflow_llm_cost_usd_total", provider="openai", model="gpt-test") == pytest.approx(gpt)
    assert router.metric("agentflow_llm_tokens_total", provider="anthropic", model="claude-test",
                         kind="output") == COMPLETION_TOKENS  # fmt: skip
    async with http.get(router.api + "/agentflow/status") as r:
        assert (await r.json())["spend_today_usd"] == pytest.approx(gpt + claude)
