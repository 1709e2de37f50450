"""`python -m router` as an operator runs it: state file, env providers, dev mode, refusals, SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from router_fakes import FakeProvider
from router_support import chat, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

REPO_ROOT = Path(__file__).resolve().parents[2]
SECRET = "sk-live-DO-NOT-LOG-4242424242"


class RouterProcess:
    def __init__(self, proc: asyncio.subprocess.Process, data_dir: Path, log: Path) -> None:
        self.proc = proc
        self.data_dir = data_dir
        self.log = log
        self.state: dict[str, Any] = {}

    @property
    def api(self) -> str:
        return f"http://{self.state['http']}/v1"

    async def ready(self) -> None:
        state_file = self.data_dir / "router.json"

        def read() -> dict[str, Any] | None:
            if self.proc.returncode is not None:
                raise AssertionError(f"router exited with {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                data = json.loads(state_file.read_text())
            except (OSError, ValueError):
                return None
            return data if data.get("pid") == self.proc.pid else None

        self.state = await wait_until(read, within=30, what="the router's state file")

    async def stop(self) -> int:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 20)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        return self.proc.returncode or 0

    def log_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.startswith("{")]


@pytest.fixture
async def spawn(tmp_path: Path) -> AsyncIterator[Any]:
    started: list[RouterProcess] = []

    async def run(*argv: str, env: dict[str, str] | None = None, wait: bool = True) -> RouterProcess:
        data_dir = tmp_path / f"router-{len(started)}"
        data_dir.mkdir()
        log = data_dir / "router.log"
        environ = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), **(env or {})}
        with log.open("wb") as out:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "router", "--data-dir", str(data_dir), "--log-level", "debug", *argv,
                cwd=REPO_ROOT, env=environ, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out,
            )  # fmt: skip
        router = RouterProcess(proc, data_dir, log)
        started.append(router)
        if wait:
            await router.ready()
        return router

    try:
        yield run
    finally:
        for router in started:
            await router.stop()


async def test_serves_providers_from_env_and_stops_cleanly_on_sigterm_without_logging_the_key(
    spawn: Any, fake: FakeProvider, http: aiohttp.ClientSession
) -> None:
    router = await spawn("--listen", "127.0.0.1:0",
                         env={"OPENAI_API_KEY": SECRET, "OPENAI_BASE_URL": fake.url + "/v1"})  # fmt: skip
    assert router.state["pid"] == router.proc.pid and router.state["http"].startswith("127.0.0.1:")
    async with http.post(router.api + "/chat/completions", json=chat("over the wire", model="gpt-4o-mini")) as r:
        assert r.status == 200
        assert (await r.json())["choices"][0]["message"]["content"] == "echo: over the wire"
    assert fake.calls[0].headers["Authorization"] == f"Bearer {SECRET}"
    async with http.post(router.api + "/chat/completions", json=chat("x", model="gpt-4o", temperature=5)) as r:
        assert r.status == 400
    assert await router.stop() == 0
    assert not (router.data_dir / "router.json").exists()
    assert (router.data_dir / "router.db").exists()
    text = router.log.read_text()
    assert SECRET not in text
    entries = router.log_lines()
    assert {e["component"] for e in entries} == {"router"}
    assert [e["msg"] for e in entries if e["msg"].startswith("router ")] == ["router ready", "router stopping",
                                                                             "router stopped"]  # fmt: skip


async def test_without_a_provider_calls_say_how_to_configure_one(spawn: Any, http: aiohttp.ClientSession) -> None:
    router = await spawn("--listen", "127.0.0.1:0")
    async with http.post(router.api + "/chat/completions", json=chat()) as r:
        body = await r.json()
        assert r.status == 503
    assert body["error"]["code"] == "no_provider_configured"
    assert "OPENAI_API_KEY" in body["error"]["message"] and "--dev" in body["error"]["message"]
    assert any("no LLM provider is configured" in e["msg"] for e in router.log_lines())


async def test_dev_mode_answers_deterministically_and_says_so(spawn: Any, http: aiohttp.ClientSession) -> None:
    router = await spawn("--listen", "127.0.0.1:0", "--dev")
    answers = []
    for _ in range(2):
        async with http.post(router.api + "/chat/completions", json=chat("what is 2+2", model="gpt-4o",
                                                                        temperature=0.7)) as r:  # fmt: skip
            answers.append(await r.json())
    assert answers[0]["choices"][0]["message"]["content"] == answers[1]["choices"][0]["message"]["content"]
    assert answers[0]["choices"][0]["message"]["content"].startswith("[agentflow dev provider]")
    assert answers[0]["model"] == "dev/gpt-4o"
    assert router.state["dev"] is True
    assert any(e.get("provider") == "dev" and e["level"] == "warning" for e in router.log_lines())


async def test_a_non_loopback_listen_address_is_refused(spawn: Any) -> None:
    router = await spawn("--listen", "0.0.0.0:0", "--dev", wait=False)
    assert await asyncio.wait_for(router.proc.wait(), 30) == 2
    assert "--allow-remote" in router.log.read_text()


async def test_a_busy_port_exits_1_naming_the_address(spawn: Any) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        address = f"127.0.0.1:{holder.getsockname()[1]}"
        router = await spawn("--listen", address, "--dev", wait=False)
        assert await asyncio.wait_for(router.proc.wait(), 30) == 1
    assert f"cannot listen on {address}" in router.log.read_text()
    assert not (router.data_dir / "router.json").exists()
