"""Identical calls in flight share one upstream call, streamed or not; a client that leaves does not stop it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
from router_fakes import FakeProvider, Hold
from router_support import Router, chat, wait_until

pytestmark = [pytest.mark.component, pytest.mark.timeout(30)]


async def complete(http: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> tuple[str, str]:
    async with http.post(url, json=body) as r:
        assert r.status == 200, await r.text()
        data = await r.json()
        return r.headers["x-agentflow-cache"], data["choices"][0]["message"]["content"]


async def stream_text(http: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> tuple[str, str, bool]:
    async with http.post(url, json={**body, "stream": True}) as r:
        assert r.status == 200, await r.text()
        text, done = [], False
        async for line in r.content:
            if not line.startswith(b"data: "):
                continue
            payload = line[6:].strip()
            if payload == b"[DONE]":
                done = True
                break
            for choice in json.loads(payload)["choices"]:
                text.append(choice["delta"].get("content") or "")
        return r.headers["x-agentflow-cache"], "".join(text), done


async def test_concurrent_identical_calls_share_one_upstream_call(
    router: Router, fake: FakeProvider, http: aiohttp.ClientSession
) -> None:
    gate = asyncio.Event()
    fake.script(Hold(gate=gate))
    url = router.api + "/chat/completions"
    calls = [asyncio.create_task(complete(http, url, chat("together"))) for _ in range(8)]
    await wait_until(lambda: fake.calls and len(router.engine.inflight) == 1, what="the first call upstream")
    leader = router.engine.inflight.get(next(iter(router.engine.inflight._calls)))
    assert leader is not None
    await wait_until(lambda: len(leader.tickets) == 8, what="all eight calls to join")
    gate.set()
    results = await asyncio.gather(*calls)
    assert fake.count() == 1
    assert sorted(r[0] for r in results) == ["coalesced"] * 7 + ["miss"]
    assert {r[1] for r in results} == {"echo: together"}
    assert router.metric("agentflow_llm_cache_total", result="coalesced") == 7


async def test_streams_coalesce_and_each_follower_gets_the_whole_stream(
    router: Router, fake: FakeProvider, http: aiohttp.ClientSession
) -> None:
    gate = asyncio.Event()
    fake.script(Hold(gate=gate))
    url = router.api + "/chat/completions"
    first = asyncio.create_task(stream_text(http, url, chat("streamed together")))
    await wait_until(lambda: fake.calls, what="the first stream upstream")
    followers = [asyncio.create_task(stream_text(http, url, chat("streamed together"))) for _ in range(4)]
    non_stream = asyncio.create_task(complete(http, url, chat("streamed together")))
    await wait_until(lambda: sum(len(c.tickets) for c in router.engine.inflight._calls.values()) == 6,
                     what="the followers to join")  # fmt: skip
    gate.set()
    results = [await first, *await asyncio.gather(*followers)]
    assert fake.count() == 1
    assert [r[0] for r in results] == ["miss", "coalesced", "coalesced", "coalesced", "coalesced"]
    assert all(r[1] == "echo: streamed together" and r[2] for r in results)
    assert await non_stream == ("coalesced", "echo: streamed together")


async def test_different_calls_do_not_coalesce(router: Router, fake: FakeProvider, http: aiohttp.ClientSession) -> None:
    gate = asyncio.Event()
    fake.script(Hold(gate=gate), Hold(gate=gate))
    url = router.api + "/chat/completions"
    calls = [asyncio.create_task(complete(http, url, chat(text))) for text in ("one", "two")]
    await wait_until(lambda: fake.count() == 2, what="both calls upstream")
    gate.set()
    assert sorted(await asyncio.gather(*calls)) == [("miss", "echo: one"), ("miss", "echo: two")]


async def test_a_client_that_disconnects_mid_call_still_gets_its_call_completed_and_journaled(
    router: Router, fake: FakeProvider, http: aiohttp.ClientSession
) -> None:
    gate = asyncio.Event()
    fake.script(Hold(gate=gate))
    headers = {"x-agentflow-run": "run-1", "x-agentflow-step": "draft", "x-agentflow-attempt": "1",
               "x-agentflow-call": "0"}  # fmt: skip

    async def leave_early() -> None:
        async with http.post(router.api + "/chat/completions", json=chat("left behind"), headers=headers) as r:
            await r.read()

    client = asyncio.create_task(leave_early())
    await wait_until(lambda: fake.calls, what="the call to reach upstream")
    client.cancel()  # the client goes away while the upstream call is held
    with pytest.raises(asyncio.CancelledError):
        await client
    gate.set()
    await wait_until(lambda: router.engine.busy == 0, what="the upstream call to finish")
    await router.engine.flush()
    async with http.get(router.api + "/agentflow/journal", params={"run": "run-1", "step": "draft"}) as r:
        entries = (await r.json())["entries"]
    assert [(e["attempt"], e["call_index"], e["response"]["text"]) for e in entries] == [(1, 0, "echo: left behind")]
    # and it was cached: asking again costs nothing upstream
    assert (await complete(http, router.api + "/chat/completions", chat("left behind")))[0] == "hit"
    assert fake.count() == 1


async def test_a_stream_whose_client_disconnects_is_still_completed(
    router: Router, fake: FakeProvider, http: aiohttp.ClientSession
) -> None:
    gate = asyncio.Event()
    fake.script(Hold(gate=gate))

    async def read_a_little() -> None:
        async with http.post(router.api + "/chat/completions", json=chat("half read", stream=True)) as r:
            await r.content.readline()

    client = asyncio.create_task(read_a_little())
    await wait_until(lambda: fake.calls, what="the stream upstream")
    client.cancel()
    with pytest.raises(asyncio.CancelledError):
        await client
    gate.set()
    await wait_until(lambda: router.engine.busy == 0, what="the stream to finish upstream")
    assert router.engine.cache.entries == 1
