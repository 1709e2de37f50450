"""llm.complete from an agent in a real worker process, relayed by the pool to noded, answered by a
real router process (its offline `dev` provider, or a provider that is down)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from jobs import digest_of, job_for
from processes import Daemon, start_router

from agentflow.attempt import AttemptKey
from agentflow.spec import Capabilities, LLMConfig
from noded.host import StepHost
from noded.llm import LLMCalls, RouterClient
from noded.messages import Assignment
from noded.sandbox import HostCallError
from noded.workers import WorkerPool

pytestmark = [pytest.mark.component, pytest.mark.timeout(90)]

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def dev_router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    router = start_router(tmp_path_factory.mktemp("router"))
    yield router
    router.stop()


@pytest.fixture
async def pool(tmp_path: Path) -> AsyncIterator[WorkerPool]:
    async with WorkerPool(tmp_path / "compiled", warm=1, max_workers=2) as pool:
        yield pool


def assignment(
    built_agents: Path, *calls: dict[str, Any], caps: Capabilities | None = None, llm: LLMConfig | None = None
) -> Assignment:
    path = built_agents / "tests" / "agents" / "llm.wasm"
    doc = {"input": {"calls": list(calls)}, "upstream": {}, "step": {"run": "r1", "name": "ask", "attempt": 1}}
    return Assignment(
        key=AttemptKey("r1", "ask", 1),
        workflow="wf",
        module_digest=digest_of(path),
        stdin_json=json.dumps(doc),
        cpu_millis=100,
        memory_bytes=64 * MiB,
        timeout=timedelta(seconds=30),
        capabilities=caps or Capabilities(llm=True),
        llm=llm,
    )


async def run(
    pool: WorkerPool, built_agents: Path, a: Assignment, router: RouterClient, tmp_path: Path
) -> tuple[Any, str]:
    scratch = tmp_path / "scratch"
    scratch.mkdir(exist_ok=True)
    job = job_for(
        built_agents / "tests" / "agents" / "llm.wasm",
        a.stdin_json.encode(),
        scratch=scratch,
        capabilities=frozenset({"llm.complete"}) if a.capabilities.llm else frozenset(),
    )
    result = await pool.run(job, host=StepHost(llm=LLMCalls(router, a)))
    assert result.ok, (result.error, result.stderr)
    return json.loads(result.output_json or "null"), result.stderr


async def spend(router: Daemon, attempt: int = 1) -> dict[str, Any]:
    url = f"http://{router.state['http']}/v1/agentflow/spend?run=r1&step=ask&attempt={attempt}"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return await response.json()


async def test_an_agent_gets_the_answer_with_the_step_defaults_and_is_attributed(
    pool, built_agents: Path, dev_router: Daemon, tmp_path: Path
) -> None:
    router = RouterClient(f"http://{dev_router.state['http']}")
    try:
        a = assignment(
            built_agents,
            {"prompt": "Say hello to the wasm world"},
            {"messages": [{"role": "user", "content": "and again"}], "model": "other-model", "max_tokens": 50},
            llm=LLMConfig(model="gpt-4o-mini", temperature=0.0, max_tokens=64),
        )
        out, _ = await run(pool, built_agents, a, router, tmp_path)
    finally:
        await router.close()
    first, second = out
    assert first["rc"] > 0 and second["rc"] > 0
    answer = first["response"]
    assert answer["content"].startswith("[agentflow dev provider]")  # labelled as dev
    assert "Say hello to the wasm world" in answer["content"]
    assert answer["model"] == "dev/gpt-4o-mini"  # the step's default model
    assert answer["cache"] in ("miss", "hit") and answer["usage"]["total_tokens"] > 0
    assert second["response"]["model"] == "dev/other-model"  # the request's own model wins
    ledger = await eventually_spend(dev_router, calls=2)
    assert ledger["calls"] == 2  # both attributed to run r1, step ask, attempt 1


async def eventually_spend(router: Daemon, *, calls: int) -> dict[str, Any]:
    async with asyncio.timeout(10):
        while True:
            data = await spend(router)
            if data.get("calls", 0) >= calls:
                return data
            await asyncio.sleep(0.05)  # the ledger is written in batches (every 50 ms)


async def test_refusals_come_back_as_codes_with_the_reason_in_the_log(
    pool, built_agents: Path, dev_router: Daemon, tmp_path: Path
) -> None:
    router = RouterClient(f"http://{dev_router.state['http']}")
    try:
        a = assignment(
            built_agents,
            {"prompt": "hi", "model": "not-allowed"},
            {"prompt": "hi", "model": "small", "temperature": 7},
            {"messages": [], "model": "small"},
            {"prompt": "hi"},  # no model anywhere: the step has no llm block
            caps=Capabilities(llm=True, llm_models=("small",)),
        )
        out, stderr = await run(pool, built_agents, a, router, tmp_path)
    finally:
        await router.close()
    assert [c["rc"] for c in out] == [
        HostCallError.DENIED, HostCallError.BAD_REQUEST, HostCallError.BAD_REQUEST, HostCallError.BAD_REQUEST
    ]  # fmt: skip
    assert 'model "not-allowed" is not allowed (allowed: small)' in stderr
    assert "temperature must be a number from 0 to 2" in stderr
    assert "messages must be a non-empty list" in stderr
    assert "no model" in stderr


async def test_without_the_capability_the_sandbox_denies_before_the_node_is_asked(
    pool, built_agents: Path, dev_router: Daemon, tmp_path: Path
) -> None:
    router = RouterClient(f"http://{dev_router.state['http']}")
    try:
        a = assignment(built_agents, {"prompt": "hi", "model": "m"}, caps=Capabilities(llm=False))
        out, stderr = await run(pool, built_agents, a, router, tmp_path)
    finally:
        await router.close()
    assert out == [{"rc": HostCallError.DENIED, "response": None}]
    assert "denied host call llm.complete: capability not granted" in stderr


async def test_no_router_is_unavailable(pool, built_agents: Path, tmp_path: Path) -> None:
    router = RouterClient("http://127.0.0.1:1")
    try:
        out, stderr = await run(
            pool, built_agents, assignment(built_agents, {"prompt": "hi", "model": "m"}), router, tmp_path
        )
    finally:
        await router.close()
    assert out == [{"rc": HostCallError.UNAVAILABLE, "response": None}]
    assert "the LLM router at http://127.0.0.1:1 is unreachable" in stderr


async def test_a_provider_that_is_down_is_an_upstream_failure(pool, built_agents: Path, tmp_path: Path) -> None:
    daemon = start_router(
        tmp_path / "router", dev=False, env={"OPENAI_BASE_URL": "http://127.0.0.1:1/v1", "OPENAI_API_KEY": "sk-x"}
    )
    router = RouterClient(f"http://{daemon.state['http']}")
    try:
        out, stderr = await run(
            pool, built_agents, assignment(built_agents, {"prompt": "hi", "model": "gpt-4o"}), router, tmp_path
        )
    finally:
        await router.close()
        daemon.stop()
    assert out == [{"rc": HostCallError.UPSTREAM, "response": None}]
    assert "upstream_unavailable" in stderr
