"""http.fetch: checked against the step's allowedHosts on the URL and on every redirect, with the
address pinned between the check and the connection, against real HTTP servers on loopback."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from jobs import job_for

from agentflow.attempt import AttemptKey
from agentflow.spec import Capabilities
from noded.egress import MAX_BODY_BYTES, Egress
from noded.host import StepHost
from noded.messages import Assignment
from noded.sandbox import HostCallError, HostCallRefused
from noded.workers import WorkerPool

pytestmark = [pytest.mark.component, pytest.mark.timeout(60)]


class Server:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []  # method, path, Host header
        self.port = 0
        self.redirect_to = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append((request.method, request.path, request.headers.get("Host", "")))
        if request.path == "/redirect":
            raise web.HTTPFound(self.redirect_to)
        if request.path == "/big":
            return web.Response(body=b"x" * (MAX_BODY_BYTES + 100))
        if request.path == "/bytes":
            return web.Response(body=bytes(range(256)))
        body = await request.text()
        return web.json_response({"path": request.path, "echo": body}, headers={"X-Served": "yes"})


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    s = Server()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", s.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    s.port = runner.addresses[0][1]
    yield s
    await runner.cleanup()


async def refused(egress: Egress, request: dict[str, Any]) -> HostCallRefused:
    with pytest.raises(HostCallRefused) as info:
        await egress.fetch(request, 10)
    return info.value


async def test_an_allowed_host_is_fetched(server: Server) -> None:
    egress = Egress([f"127.0.0.1:{server.port}"])  # loopback, named exactly
    out = await egress.fetch({"url": f"http://127.0.0.1:{server.port}/hello", "method": "POST", "body": "hi"}, 10)
    assert out["status"] == 200 and out["headers"]["x-served"] == "yes" and out["truncated"] is False
    assert json.loads(out["body"]) == {"path": "/hello", "echo": "hi"}
    assert server.seen == [("POST", "/hello", f"127.0.0.1:{server.port}")]
    assert egress.fetched_bytes == len(out["body"])


@pytest.mark.parametrize(
    ("allowed", "url", "reason"),
    [
        (["api.example.com"], "http://127.0.0.1:{port}/", "127.0.0.1:{port} is not in capabilities.http.allowedHosts"),
        (["127.0.0.1:1"], "http://127.0.0.1:{port}/", "127.0.0.1:{port} is not in capabilities.http.allowedHosts"),
        (["127.0.0.1:{port}"], "file:///etc/passwd", 'only http and https URLs may be fetched, not "file"'),
        (["*.test"], "http://svc.test:{port}/", "svc.test resolves to 127.0.0.1, a loopback address"),
        (["*.test"], "http://meta.test/", "meta.test resolves to 169.254.169.254, a link-local address"),
        (["*.test"], "http://lan.test/", "lan.test resolves to 10.1.2.3, a private address"),
    ],
    ids=["not-listed", "other-port", "file-scheme", "wildcard-to-loopback", "metadata", "private"],
)
async def test_what_the_manifest_does_not_allow_is_denied(server: Server, allowed, url, reason) -> None:
    names = {"svc.test": "127.0.0.1", "meta.test": "169.254.169.254", "lan.test": "10.1.2.3"}

    async def resolve(host: str, port: int) -> list[str]:
        return [names.get(host, host)]

    egress = Egress([a.format(port=server.port) for a in allowed], resolve=resolve)
    error = await refused(egress, {"url": url.format(port=server.port)})
    assert error.code is HostCallError.DENIED
    assert reason.format(port=server.port) in str(error.log)
    assert server.seen == [] and egress.denied == 1


async def test_an_exactly_named_host_connects_to_the_address_that_was_checked(server: Server) -> None:
    lookups: list[str] = []

    async def rebinding(host: str, port: int) -> list[str]:
        lookups.append(host)  # a second lookup would answer somewhere else
        return ["127.0.0.1"] if len(lookups) == 1 else ["203.0.113.9"]

    egress = Egress([f"svc.test:{server.port}"], resolve=rebinding)
    out = await egress.fetch({"url": f"http://svc.test:{server.port}/pinned"}, 10)
    assert out["status"] == 200 and lookups == ["svc.test"]  # resolved once; connected to what was checked
    assert server.seen == [("GET", "/pinned", f"svc.test:{server.port}")]  # the Host is the name asked for


async def test_every_redirect_is_checked_again(server: Server) -> None:
    egress = Egress([f"127.0.0.1:{server.port}"])
    server.redirect_to = "http://169.254.169.254/latest/meta-data/"
    error = await refused(egress, {"url": f"http://127.0.0.1:{server.port}/redirect"})
    assert error.code is HostCallError.DENIED and "169.254.169.254:80 is not in" in str(error.log)

    server.redirect_to = f"http://127.0.0.1:{server.port}/landed"
    out = await egress.fetch({"url": f"http://127.0.0.1:{server.port}/redirect"}, 10)
    assert (out["status"], out["url"]) == (200, f"http://127.0.0.1:{server.port}/landed")


async def test_the_agent_cannot_set_the_host_header(server: Server) -> None:
    egress = Egress([f"127.0.0.1:{server.port}"])
    error = await refused(egress, {"url": f"http://127.0.0.1:{server.port}/", "headers": {"Host": "evil.example"}})
    assert error.code is HostCallError.DENIED and "'Host' is set by the node" in str(error.log)


async def test_bodies_are_capped_and_binary_ones_come_base64(server: Server) -> None:
    egress = Egress([f"127.0.0.1:{server.port}"])
    big = await egress.fetch({"url": f"http://127.0.0.1:{server.port}/big"}, 10)
    assert big["truncated"] is True and len(big["body"]) == MAX_BODY_BYTES
    raw = await egress.fetch({"url": f"http://127.0.0.1:{server.port}/bytes"}, 10)
    assert "body" not in raw and len(raw["body_base64"]) > 256
    too_big = await refused(egress, {"url": f"http://127.0.0.1:{server.port}/", "body": "y" * (MAX_BODY_BYTES + 1)})
    assert too_big.code is HostCallError.TOO_LARGE


async def test_an_agent_fetches_through_its_worker_and_the_node(
    server: Server, built_agents: Path, tmp_path: Path
) -> None:
    agent = built_agents / "tests" / "agents" / "llm.wasm"
    calls = [{"url": f"http://127.0.0.1:{server.port}/from-wasm"}, {"url": "http://169.254.169.254/"}]
    stdin = json.dumps({"input": {"op": "http.fetch", "calls": calls}, "upstream": {}, "step": {}}).encode()
    caps = Capabilities(http_allowed_hosts=(f"127.0.0.1:{server.port}",))
    assignment = Assignment(
        key=AttemptKey("r", "s", 1), workflow="wf", module_digest="sha256:" + "0" * 64, stdin_json="{}",
        cpu_millis=100, memory_bytes=64 << 20, timeout=timedelta(seconds=30), capabilities=caps,
    )  # fmt: skip
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    async with WorkerPool(tmp_path / "compiled", warm=1, max_workers=1) as pool:
        job = job_for(agent, stdin, scratch=scratch, capabilities=frozenset({"http.fetch"}))
        host = StepHost(llm=None, egress=Egress(assignment.capabilities.http_allowed_hosts))
        result = await pool.run(job, host=host)
        denied_by_sandbox = await pool.run(job_for(agent, stdin, scratch=scratch), host=host)
    first, second = json.loads(result.output_json or "[]")
    assert first["rc"] > 0 and first["response"]["status"] == 200
    assert json.loads(first["response"]["body"])["path"] == "/from-wasm"
    assert second == {"rc": HostCallError.DENIED, "response": None}
    assert "http.fetch denied: 169.254.169.254:80 is not in capabilities.http.allowedHosts" in result.stderr
    assert result.denied_host_calls == 1  # counted with the step
    assert [c["rc"] for c in json.loads(denied_by_sandbox.output_json or "[]")] == [HostCallError.DENIED] * 2
