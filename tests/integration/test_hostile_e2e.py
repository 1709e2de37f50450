"""The hostile suite, through a real control plane and noded: agents built from source that attack
their sandbox all at once. Each ends as a failed step, or as a refused call the agent reports,
with a precise reason; the node stays ready and a normal step afterwards succeeds."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
import wasmtime
from cluster import REPO_ROOT, cli, controlplane_metrics, http_server, nodes_ready, write_workflow

pytestmark = pytest.mark.integration

AGENTS = REPO_ROOT / "tests" / "agents"
HOSTILE = AGENTS / "hostile.wasm"
FILES = AGENTS / "files.wasm"
FETCH_CAP = 512 * 1024  # noded.egress.MAX_BODY_BYTES
STDERR_CAP = 64 * 1024  # noded.sandbox.DEFAULT_MAX_STDERR_BYTES


class _Web(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        port = self.server.server_address[1]
        if self.path == "/to-localhost":
            self._redirect(f"http://localhost:{port}/")
        elif self.path == "/to-metadata":
            self._redirect("http://169.254.169.254/latest/meta-data/")
        elif self.path == "/big":
            self._answer(b"b" * (FETCH_CAP + 100_000))
        else:
            self._answer(b'{"ok": true}')

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _answer(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def web() -> Iterator[int]:
    with http_server(_Web) as port:
        yield port


def _step(name: str, module: Path, agent_input: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": name, "module": str(module), "input": agent_input, **extra}


def _fetch(name: str, url: str, allowed: list[str] | None) -> dict[str, Any]:
    caps = {} if allowed is None else {"capabilities": {"http": {"allowedHosts": allowed}}}
    return _step(name, HOSTILE, {"attack": "fetch", "url": url}, **caps)


def _attacks(web: int, granted: Path) -> list[dict[str, Any]]:
    local = f"127.0.0.1:{web}"
    ro = {"capabilities": {"filesystem": [{"path": str(granted), "mode": "ro"}]}}
    return [
        _step("recursion", HOSTILE, {"attack": "recursion"}),
        _step("bad-pointers", HOSTILE, {"attack": "bad_pointers"}),
        # A whole core each, so that they can call faster than the rate they are allowed.
        _step("flood", HOSTILE, {"attack": "flood", "relentless": 1}, resources={"cpu": "1"}),
        _step("polite-flood", HOSTILE, {"attack": "flood"}, resources={"cpu": "1"}),
        _step("stderr", HOSTILE, {"attack": "stderr", "mib": 10}),
        _step("spin", AGENTS / "spin.wasm", {}, timeout="1s", resources={"cpu": "100m"}),
        _fetch("fetch-ungranted", f"http://{local}/", None),
        _fetch("fetch-other-host", f"http://localhost:{web}/", [local]),
        _fetch("fetch-redirect", f"http://{local}/to-localhost", [local]),
        _fetch("fetch-redirect-metadata", f"http://{local}/to-metadata", [local]),
        _fetch("fetch-loopback", f"http://{local}/", ["api.example.com"]),
        _fetch("fetch-metadata", "http://169.254.169.254/latest/meta-data/", ["api.example.com"]),
        _fetch("fetch-big", f"http://{local}/big", [local]),
        _step("symlink", FILES, {"ops": [{"op": "read", "path": f"{granted}/passwd-link"}]}, **ro),
        _step("write-ro", FILES, {"ops": [{"op": "write", "path": f"{granted}/new", "data": "x"}]}, **ro),
    ]


def _workflow(path: Path, name: str, agents: list[dict[str, Any]]) -> Path:
    doc = {"apiVersion": "agentflow/v1", "kind": "Workflow", "name": name, "version": "1", "agents": agents}
    return write_workflow(path, json.dumps(doc))  # JSON is YAML


def _normal_step_succeeds(server: str, tmp_path: Path) -> None:
    assert nodes_ready(server, 1), cli(server, "nodes").out
    wf = _workflow(tmp_path / "normal.yaml", "normal", [_step("echo", AGENTS / "echo.wasm", {"hello": 1})])
    done = cli(server, "run", str(wf), "--wait", "--json")
    assert done.code == 0, done.out + done.err
    assert done.json()["outputs"]["echo"]["input"] == {"hello": 1}


def test_every_attack_fails_alone_and_precisely(cluster, tmp_path: Path, web: int) -> None:
    granted = tmp_path / "granted"
    granted.mkdir()
    (granted / "passwd-link").symlink_to("/etc/passwd")
    wf = _workflow(tmp_path / "hostile.yaml", "hostile", _attacks(web, granted))
    done = cli(cluster.server, "run", str(wf), "--wait", "--json", timeout=180)
    assert done.code == 1, done.out + done.err + cluster.logs()
    run = done.json()
    steps = {s["name"]: s for s in run["steps"]}
    outputs = run["outputs"]

    def failed(name: str) -> dict[str, Any]:
        assert steps[name]["status"] == "failed", steps[name]
        return steps[name]

    assert failed("recursion")["error"].startswith("trap: ")
    assert outputs["bad-pointers"] == {"codes": [-3, -3, -3, -6, -3, 11, -3, -3, 11], "memory_intact": True}

    flood = failed("flood")
    assert flood["error"].startswith("host calls limit reached: 1000 calls refused as over 1000 a second")
    assert flood["usage"]["limits_hit"] == ["host calls"]
    assert flood["usage"]["host_calls"] > 1000
    assert outputs["polite-flood"]["last"] == -10  # RATE_LIMITED, and it stopped
    assert "[host] host calls throttled" in steps["polite-flood"]["stderr"]

    stderr = steps["stderr"]["stderr"]
    assert outputs["stderr"] == {"ok": True}
    assert re.match(r"\[… \d+ bytes truncated\]\n", stderr) and len(stderr) < STDERR_CAP + 100
    dropped = int(re.match(r"\[… (\d+) bytes", stderr).group(1))  # type: ignore[union-attr]
    assert dropped > 10 * 1024 * 1024 - STDERR_CAP - 1024

    spin = failed("spin")
    assert spin["error"] == "wall time limit of 1.0s reached (timed out)"
    assert spin["usage"]["limits_hit"] == ["wall time"]
    # It burned CPU until stopped, held to its 100m quota (and one period's burst) by its cgroup.
    assert 0.02 < spin["usage"]["cpu_seconds"] < 0.5

    assert outputs["fetch-ungranted"] == {"rc": -2, "response": ""}
    assert "denied host call http.fetch: capability not granted" in steps["fetch-ungranted"]["stderr"]
    for name, reason in [
        ("fetch-other-host", f"localhost:{web} is not in capabilities.http.allowedHosts"),
        ("fetch-redirect", f"localhost:{web} is not in capabilities.http.allowedHosts"),
        ("fetch-redirect-metadata", "169.254.169.254:80 is not in capabilities.http.allowedHosts"),
        ("fetch-loopback", f"127.0.0.1:{web} is not in capabilities.http.allowedHosts"),
        ("fetch-metadata", "169.254.169.254:80 is not in capabilities.http.allowedHosts"),
    ]:
        assert outputs[name] == {"rc": -2, "response": ""}, name
        assert reason in steps[name]["stderr"], (name, steps[name]["stderr"])
    big = steps["fetch-big"]
    assert outputs["fetch-big"]["rc"] > FETCH_CAP
    assert big["usage"]["fetched_bytes"] == FETCH_CAP
    assert big["usage"]["limits_hit"] == ["fetch size"]

    [link] = outputs["symlink"]
    assert link["ok"] is False and "root:" not in json.dumps(outputs["symlink"])
    [write] = outputs["write-ro"]
    assert write["ok"] is False
    assert not (granted / "new").exists()

    # Every finished attempt was measured.
    for step in steps.values():
        usage = step["usage"]
        assert usage["wall_seconds"] > 0 and usage["peak_memory_bytes"] > 0, step["name"]
        assert usage["host_calls"] >= 0

    metrics = controlplane_metrics(cluster.controlplane)
    for limit in ("host calls", "wall time", "fetch size"):
        assert f'agentflow_resource_limit_hits_total{{limit="{limit}",workflow="hostile"}} 1.0' in metrics
    assert 'agentflow_agent_resource_usage{agent="flood",resource="host_calls",workflow="hostile"}' in metrics

    _normal_step_succeeds(cluster.server, tmp_path)


UNKNOWN_IMPORT = (
    '(module (import "agentflow" "steal_keys" (func)) (memory (export "memory") 1) (func (export "_start")))'
)


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("truncated", "is not valid WebAssembly: unexpected end-of-file"),
        ("not-wasm", "not a WebAssembly module"),
        ("unknown-import", "imports agentflow.steal_keys, which the host does not provide"),
    ],
)
def test_modules_the_host_cannot_run_are_refused_before_they_reach_it(
    cluster, tmp_path: Path, kind: str, reason: str
) -> None:
    module = tmp_path / "bad.wasm"
    content = {
        "truncated": lambda: HOSTILE.read_bytes()[:200],
        "not-wasm": lambda: b"#!/bin/sh\necho hi\n",
        "unknown-import": lambda: wasmtime.wat2wasm(UNKNOWN_IMPORT),
    }[kind]()
    module.write_bytes(content)
    wf = _workflow(tmp_path / "bad.yaml", "bad", [_step("bad", module, {})])
    for command in (["validate", str(wf)], ["run", str(wf), "--wait"]):
        result = cli(cluster.server, *command)
        assert result.code == 2, result.out + result.err
        assert "agents[0].module" in result.err and str(module) in result.err, result.err
        assert reason in result.err, result.err
    assert cli(cluster.server, "runs", "--json").json() == []  # nothing was submitted
    _normal_step_succeeds(cluster.server, tmp_path)


def test_a_fan_in_over_the_input_limit_fails_with_the_reason(cluster, tmp_path: Path) -> None:
    big = tmp_path / "input.json"
    big.write_text(json.dumps("x" * 900_000))  # echoed by nine steps: ~9 MB into the tenth
    agents: list[dict[str, Any]] = [{"name": f"shard-{i}", "module": str(AGENTS / "echo.wasm")} for i in range(9)]
    agents.append({"name": "gather", "module": str(AGENTS / "echo.wasm"), "dependsOn": [a["name"] for a in agents]})
    wf = _workflow(tmp_path / "fanin.yaml", "fanin", agents)
    done = cli(cluster.server, "run", str(wf), "--input-file", str(big), "--wait", "--json", timeout=180)
    assert done.code == 1, done.out + done.err
    steps = {s["name"]: s for s in done.json()["steps"]}
    assert all(steps[f"shard-{i}"]["status"] == "succeeded" for i in range(9))
    assert steps["gather"]["status"] == "failed"
    assert re.fullmatch(
        r"input limit of 8388608 bytes reached: the step's input document \(its input and the outputs of its 9 "
        r"dependencies\) is \d+ bytes",
        steps["gather"]["error"],
    ), steps["gather"]["error"]
    _normal_step_succeeds(cluster.server, tmp_path)
