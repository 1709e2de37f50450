"""Helpers of the router tests (fixtures are in conftest.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry
from router_fakes import FakeProvider

from agentflow.clock import Clock
from router.config import Price, ProviderConfig, RouterConfig, Secret
from router.engine import Engine

API_KEY = "sk-test-0123456789abcdef-SECRET"
PRICING = {"gpt-*": Price(input=1.0, cached_input=0.5, output=2.0), "claude-*": Price(input=3.0, output=15.0)}


def base_config(data_dir: Path, fake: FakeProvider, **overrides: Any) -> RouterConfig:
    providers = (
        ProviderConfig(name="openai", kind="openai", base_url=fake.url + "/v1", api_key=Secret(API_KEY),
                       models=("gpt-*",)),
        ProviderConfig(name="anthropic", kind="anthropic", base_url=fake.url, api_key=Secret(API_KEY),
                       models=("claude-*",)),
    )  # fmt: skip
    config = RouterConfig(data_dir=data_dir, listen="127.0.0.1:0", providers=providers, pricing=PRICING)
    return replace(config, **overrides)


@dataclass
class Router:
    url: str
    engine: Engine
    clock: Clock
    registry: CollectorRegistry
    runner: web.AppRunner

    @property
    def api(self) -> str:
        return self.url + "/v1"

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0

    stopped: bool = False

    async def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            await self.runner.cleanup()
            await self.engine.close()


StartRouter = Callable[..., Awaitable[Router]]
"""The `start_router` fixture: `await start_router(clock=..., data_dir=..., **config_overrides)`."""


async def wait_until(predicate: Callable[[], Any], *, within: float = 10.0, what: str = "the condition") -> Any:
    """Poll `predicate` on the loop until it is truthy; fail after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.002)


def chat(content: str = "hello", *, model: str = "gpt-test", **extra: Any) -> dict[str, Any]:
    """A deterministic (temperature 0) chat-completions body."""
    return {"model": model, "messages": [{"role": "user", "content": content}], "temperature": 0, **extra}


def message(content: str = "hello", *, model: str = "claude-test", **extra: Any) -> dict[str, Any]:
    """A deterministic Anthropic Messages body."""
    return {"model": model, "max_tokens": 64, "messages": [{"role": "user", "content": content}], "temperature": 0,
            **extra}  # fmt: skip
