"""The replay journal: a later attempt is answered what the earlier one was, in order, until it asks
something new; the node tails entries by seq and seeds entries from other nodes."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from router_fakes import FakeProvider
from router_support import Router, StartRouter

from agentflow.llm import Attribution, Grant, request_headers

pytestmark = [pytest.mark.component, pytest.mark.timeout(30)]


def sampled(text: str) -> dict[str, Any]:
    """A call the cache would never serve (temperature > 0, no seed): only the journal can replay it."""
    return {"model": "gpt-test", "messages": [{"role": "user", "content": text}], "temperature": 0.8}


def who(attempt: int, call: int | None, *, run: str = "run-7", step: str = "write") -> dict[str, str]:
    headers = {"x-agentflow-run": run, "x-agentflow-step": step, "x-agentflow-attempt": str(attempt),
               "x-agentflow-workflow": "essay"}  # fmt: skip
    if call is not None:
        headers["x-agentflow-call"] = str(call)
    return headers


async def ask(http: aiohttp.ClientSession, router: Router, text: str, headers: dict[str, str]) -> tuple[str, str, str]:
    async with http.post(router.api + "/chat/completions", json=sampled(text), headers=headers) as r:
        assert r.status == 200, await r.text()
        body = await r.json()
        text = body["choices"][0]["message"]["content"]
        return r.headers["x-agentflow-cache"], text, r.headers["x-agentflow-cost-usd"]


async def attempt(http: aiohttp.ClientSession, router: Router, n: int, texts: list[str]) -> list[str]:
    return [(await ask(http, router, t, who(n, i)))[0] for i, t in enumerate(texts)]


async def test_later_attempts_replay_in_order_until_the_first_new_question(
    router: Router, fake: FakeProvider, http: aiohttp.ClientSession
) -> None:
    assert await attempt(http, router, 1, ["plan", "draft", "polish"]) == ["miss", "miss", "miss"]
    assert await attempt(http, router, 2, ["plan", "rethink", "polish"]) == ["replay", "miss", "miss"]
    assert fake.count() == 5
    # attempt 3 replays attempt 2 (the latest earlier one), including what attempt 2 itself replayed
    assert await attempt(http, router, 3, ["plan", "rethink", "polish", "extra"]) == ["replay"] * 3 + ["miss"]
    assert fake.count() == 6
    cache, text, cost = await ask(http, router, "plan", who(4, 0))
    assert (cache, text, float(cost)) == ("replay", "echo: plan", 0.0)


async def test_a_call_at_another_index_is_not_replayed(
    router: Router, fake: FakeProvider, http: aiohttp.ClientSession
) -> None:
    await attempt(http, router, 1, ["a", "b"])
    assert await attempt(http, router, 2, ["b", "a"]) == ["miss", "miss"]
    assert await attempt(http, router, 1, ["a"]) == ["miss"]  # the same attempt again is not "later"


async def test_other_steps_and_runs_do_not_share_replays(
    router: Router, fake: FakeProvider, http: aiohttp.ClientSession
) -> None:
    await ask(http, router, "q", who(1, 0, step="one"))
    assert (await ask(http, router, "q", who(2, 0, step="two")))[0] == "miss"
    assert (await ask(http, router, "q", who(2, 0, run="other", step="one")))[0] == "miss"
    assert (await ask(http, router, "q", who(2, 0, step="one")))[0] == "replay"


async def test_calls_without_an_index_are_numbered_in_arrival_order(
    router: Router, fake: FakeProvider, http: aiohttp.ClientSession
) -> None:
    for text in ("x", "y"):
        await ask(http, router, text, who(1, None))
    assert [(await ask(http, router, t, who(2, None)))[0] for t in ("x", "y")] == ["replay", "replay"]


async def test_spend_counts_replays_as_free(router: Router, fake: FakeProvider, http: aiohttp.ClientSession) -> None:
    await attempt(http, router, 1, ["p", "q"])
    await attempt(http, router, 2, ["p", "q"])
    await router.engine.flush()
    async with http.get(router.api + "/agentflow/spend", params={"run": "run-7", "step": "write"}) as r:
        spend = await r.json()
    assert (spend["calls"], spend["replays"], spend["upstream_calls"]) == (4, 2, 2)
    async with http.get(router.api + "/agentflow/spend", params={"run": "run-7", "step": "write", "attempt": "2"}) as r:
        second = await r.json()
    assert (second["calls"], second["replays"], second["cost_usd"]) == (2, 2, 0)
    assert spend["cost_usd"] > 0


async def test_journal_is_tailed_by_seq(router: Router, fake: FakeProvider, http: aiohttp.ClientSession) -> None:
    await attempt(http, router, 1, ["one", "two", "three"])
    await router.engine.flush()
    url = router.api + "/agentflow/journal"
    async with http.get(url, params={"run": "run-7", "step": "write"}) as r:
        page = await r.json()
    seqs = [e["seq"] for e in page["entries"]]
    assert seqs == sorted(seqs) and len(seqs) == 3
    assert page["last_seq"] == seqs[-1]
    first = page["entries"][0]
    assert (first["run"], first["step"], first["attempt"], first["call_index"], first["workflow"]) == (
        "run-7", "write", 1, 0, "essay")  # fmt: skip
    assert first["response"]["text"] == "echo: one" and first["cache"] == "miss" and first["origin"] == "local"
    async with http.get(url, params={"run": "run-7", "step": "write", "after_seq": str(seqs[0])}) as r:
        assert [e["seq"] for e in (await r.json())["entries"]] == seqs[1:]
    async with http.get(url) as r:
        assert r.status == 400 and (await r.json())["error"]["param"] == "run"


async def test_entries_seeded_from_another_node_replay_here_and_seeding_is_idempotent(
    router: Router, start_router: StartRouter, fake: FakeProvider, http: aiohttp.ClientSession
) -> None:
    await attempt(http, router, 1, ["from", "afar"])
    await router.engine.flush()
    async with http.get(router.api + "/agentflow/journal", params={"run": "run-7"}) as r:
        entries = (await r.json())["entries"]
    other = await start_router()
    for expected in (2, 0):
        async with http.post(other.api + "/agentflow/journal", json={"entries": entries}) as r:
            assert (r.status, await r.json()) == (200, {"received": 2, "added": expected})
    assert await attempt(http, other, 2, ["from", "afar"]) == ["replay", "replay"]
    assert fake.count() == 2
    async with http.get(other.api + "/agentflow/journal", params={"run": "run-7", "step": "write"}) as r:
        origins = [(e["attempt"], e["origin"]) for e in (await r.json())["entries"]]
    assert origins == [(1, "seeded"), (1, "seeded"), (2, "local"), (2, "local")]


@pytest.mark.parametrize(
    "body",
    [{"entries": "nope"}, {"entries": [{"run": "r"}]}, {"entries": [{"run": "r", "step": "s", "request_hash": "h",
                                                                      "attempt": 0, "call_index": 0}]},
     {"entries": [{"run": "r", "step": "s", "request_hash": "h", "attempt": 1, "call_index": 0, "response": {}}]}],
    ids=["not-a-list", "missing-fields", "attempt-zero", "bad-response"],
)  # fmt: skip
async def test_bad_seed_entries_are_refused_whole(router: Router, http: aiohttp.ClientSession, body: Any) -> None:
    async with http.post(router.api + "/agentflow/journal", json=body) as r:
        assert r.status == 400
        assert (await r.json())["error"]["code"] == "invalid_request"
    async with http.get(router.api + "/agentflow/journal", params={"run": "r"}) as r:
        assert (await r.json())["entries"] == []


async def test_the_journal_survives_a_restart(
    start_router: StartRouter, fake: FakeProvider, http: aiohttp.ClientSession, tmp_path: Any
) -> None:
    first = await start_router(data_dir=tmp_path / "kept")
    await attempt(http, first, 1, ["remember"])
    await first.stop()
    second = await start_router(data_dir=tmp_path / "kept")
    assert await attempt(http, second, 2, ["remember"]) == ["replay"]


async def test_a_streamed_call_is_replayed_as_a_stream(
    router: Router, fake: FakeProvider, http: aiohttp.ClientSession
) -> None:
    async def stream(attempt_no: int) -> tuple[str, str]:
        body = {**sampled("stream me"), "stream": True}
        async with http.post(router.api + "/chat/completions", json=body, headers=who(attempt_no, 0)) as r:
            assert r.status == 200
            text = []
            for line in (await r.read()).splitlines():
                if line.startswith(b"data: {"):
                    text += [c["delta"].get("content") or "" for c in json.loads(line[6:])["choices"]]
            return r.headers["x-agentflow-cache"], "".join(text)

    assert await stream(1) == ("miss", "echo: stream me")
    assert await stream(2) == ("replay", "echo: stream me")
    assert fake.count() == 1


async def test_the_shared_header_builder_speaks_the_routers_contract(
    router: Router, fake: FakeProvider, http: aiohttp.ClientSession
) -> None:
    for attempt_no, expected in ((1, "miss"), (2, "replay")):
        who_ = Attribution(run="run-h", step="s", attempt=attempt_no, call=0, workflow="wf")
        headers = request_headers(who_, Grant(usd=1.0, tokens=10_000), timeout_s=30)
        assert (await ask(http, router, "built", headers))[0] == expected
    await router.engine.flush()
    async with http.get(router.api + "/agentflow/spend", params={"run": "run-h", "step": "s", "attempt": "1"}) as r:
        spend = await r.json()
    assert spend["grant"]["usd"] == 1.0 and spend["upstream_calls"] == 1
