"""Real control-plane and noded processes for integration tests, and a CLI runner."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from processes import REPO_ROOT, Daemon, free_port, start_router, wait_for

__all__ = ["REPO_ROOT", "Daemon", "free_port", "start_router", "wait_for"]


def start_controlplane(
    data_dir: Path,
    *,
    listen: str = "127.0.0.1:0",
    heartbeat: str = "200ms",
    ttl: str = "2s",
    env: Mapping[str, str] | None = None,
    extra: Sequence[str] = (),
) -> Daemon:
    daemon = Daemon(
        "control plane",
        [sys.executable, "-m", "controlplane", "--data-dir", str(data_dir), "--listen", listen,
         "--metrics-listen", "127.0.0.1:0", "--heartbeat-interval", heartbeat, "--node-ttl", ttl,
         "--log-level", "debug", *extra],
        state_file=data_dir / "controlplane.json",
        log_file=data_dir / "controlplane.log",
        env=env,
    )  # fmt: skip
    daemon.wait_ready()
    return daemon


def start_noded(
    data_dir: Path,
    server: str,
    *,
    name: str,
    labels: str = "",
    slots: int = 4,
    extra: Sequence[str] = (),
    prefix: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> Daemon:
    """`prefix` runs the daemon through another command, e.g. `ip netns exec NS`."""
    argv = [*prefix, sys.executable, "-m", "noded", "--server", server, "--data-dir", str(data_dir), "--name", name,
            "--metrics-listen", "127.0.0.1:0", "--slots", str(slots), "--warm-workers", "1",
            "--log-level", "debug", "--shutdown-grace", "0s", *extra]  # fmt: skip
    # No grace by default: tests stop nodes with steps still running, and need not wait for them.
    if labels:
        argv += ["--labels", labels]
    daemon = Daemon("noded " + name, argv, state_file=data_dir / "noded.json", log_file=data_dir / "noded.log", env=env)
    daemon.wait_ready()
    return daemon


@dataclass
class AICluster:
    """A control plane, the host's LLM router (offline dev provider) and one node using it
    (the `ai_cluster` fixture)."""

    server: str
    router: Daemon
    node: Daemon


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def cli(server: str, *args: str, timeout: float = 90.0, cwd: Path = REPO_ROOT) -> CliResult:
    proc = subprocess.run(
        [sys.executable, "-m", "agentflow.cli.main", "--server", server, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def nodes_ready(server: str, count: int) -> bool:
    result = cli(server, "nodes", "--json", timeout=15)
    if result.code != 0:
        return False
    return sum(n["status"] == "ready" for n in result.json()) >= count


def write_workflow(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def sleep_workflow(path: Path, *, ms: int, name: str = "nap") -> Path:
    """One step, `nap`, that sleeps `ms` milliseconds (tests/agents/sleep) and outputs {"slept": ms}."""
    return write_workflow(
        path,
        f"apiVersion: agentflow/v1\nkind: Workflow\nname: {name}\nversion: '1'\n"
        f"agents:\n  - name: nap\n    module: {REPO_ROOT / 'tests' / 'agents' / 'sleep.wasm'}\n"
        f"    input: {{ms: {ms}}}\n",
    )


def controlplane_metrics(controlplane: Daemon) -> str:
    """The control plane's /metrics page."""
    import httpx

    return httpx.get(f"http://{controlplane.state['metrics']}/metrics", timeout=10).text


class EchoRequest(BaseHTTPRequestHandler):
    """Answers every GET with 200 and `{"path", "host"}` of the request, as JSON."""

    def do_GET(self) -> None:
        body = json.dumps({"path": self.path, "host": self.headers["Host"]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def http_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[int]:
    """A threaded HTTP server on 127.0.0.1 answering with `handler`; yields its port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def make_pki(root: Path, *, server_sans: Sequence[str], nodes: Sequence[str], admin: str = "ops") -> Path:
    """A CA in `root` with the control plane's certificate ("cp", for `server_sans`), one per node
    and one admin client certificate."""
    from agentflow.certs import Kind, init_ca, issue

    init_ca(root)
    issue(root, Kind.SERVER, "cp", sans=tuple(server_sans))
    for node in nodes:
        issue(root, Kind.NODE, node)
    issue(root, Kind.ADMIN, admin)
    return root


def server_tls_flags(root: Path) -> list[str]:
    return ["--tls-ca", str(root / "ca.pem"), "--tls-cert", str(root / "server-cp.pem"),
            "--tls-key", str(root / "server-cp-key.pem")]  # fmt: skip


def client_tls_flags(root: Path, who: str) -> list[str]:
    """`who`: "node-NAME" or "admin-NAME"."""
    return ["--tls-ca", str(root / "ca.pem"), "--tls-cert", str(root / f"{who}.pem"),
            "--tls-key", str(root / f"{who}-key.pem")]  # fmt: skip
