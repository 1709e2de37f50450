"""Fixtures of the router tests: a fake provider, routers in-process on 127.0.0.1:0, an HTTP client."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client import CollectorRegistry
from router_fakes import FakeProvider
from router_support import Router, StartRouter, base_config

from agentflow.clock import Clock, ManualClock
from router.app import start
from router.config import RouterConfig
from router.engine import Engine
from router.metrics import RouterMetrics


@pytest.fixture
async def fake() -> AsyncIterator[FakeProvider]:
    provider = await FakeProvider().start()
    try:
        yield provider
    finally:
        await provider.stop()


@pytest.fixture
async def start_router(tmp_path: Path, fake: FakeProvider) -> AsyncIterator[StartRouter]:
    """`await start_router(clock=..., **config_overrides)`; each router gets its own data dir."""
    started: list[Router] = []

    async def starter(
        *,
        clock: Clock | None = None,
        config: RouterConfig | None = None,
        data_dir: Path | None = None,
        **overrides: Any,
    ) -> Router:
        cfg = config or base_config(data_dir or tmp_path / f"router-{len(started)}", fake, **overrides)
        registry = CollectorRegistry()
        engine = await Engine.open(cfg, metrics=RouterMetrics(registry), clock=clock, rng=random.Random(7))
        runner, engine, address = await start(cfg, engine=engine)
        router = Router(url=f"http://{address}", engine=engine, clock=engine.clock, registry=registry, runner=runner)
        started.append(router)
        return router

    try:
        yield starter
    finally:
        for router in reversed(started):
            await router.stop()


@pytest.fixture
async def router(start_router: StartRouter) -> Router:
    return await start_router()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session
