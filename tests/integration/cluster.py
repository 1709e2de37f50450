"""Real control-plane and noded processes for integration tests, and a CLI runner."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: Any, *, timeout: float, what: str, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Daemon:
    """A daemon child process with its log file and its state file."""

    def __init__(self, name: str, argv: list[str], *, state_file: Path, log_file: Path) -> None:
        self.name = name
        self.state_file = state_file
        self.log_file = log_file
        state_file.unlink(missing_ok=True)
        log_file.parent.mkdir(parents=True, exist_ok=True)
        self._log = log_file.open("ab")
        self.proc = subprocess.Popen(
            argv, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log, start_new_session=True
        )
        self.state: dict[str, Any] = {}

    def wait_ready(self) -> dict[str, Any]:
        def ready() -> dict[str, Any] | None:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                data = json.loads(self.state_file.read_text())
            except (OSError, ValueError):
                return None
            return data if data.get("pid") == self.proc.pid else None

        self.state = wait_for(ready, timeout=START_TIMEOUT_S, what=f"{self.name} to start")
        return self.state

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL the daemon and everything in its process group (its workers)."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self._log.close()


def start_controlplane(
    data_dir: Path, *, listen: str = "127.0.0.1:0", heartbeat: str = "200ms", ttl: str = "2s"
) -> Daemon:
    daemon = Daemon(
        "control plane",
        [sys.executable, "-m", "controlplane", "--data-dir", str(data_dir), "--listen", listen,
         "--metrics-listen", "127.0.0.1:0", "--heartbeat-interval", heartbeat, "--node-ttl", ttl,
         "--log-level", "debug"],
        state_file=data_dir / "controlplane.json",
        log_file=data_dir / "controlplane.log",
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
) -> Daemon:
    """`prefix` runs the daemon through another command, e.g. `ip netns exec NS`."""
    argv = [*prefix, sys.executable, "-m", "noded", "--server", server, "--data-dir", str(data_dir), "--name", name,
            "--metrics-listen", "127.0.0.1:0", "--slots", str(slots), "--warm-workers", "1",
            "--log-level", "debug", "--shutdown-grace", "0s", *extra]  # fmt: skip
    # No grace by default: tests stop nodes with steps still running, and need not wait for them.
    if labels:
        argv += ["--labels", labels]
    daemon = Daemon("noded " + name, argv, state_file=data_dir / "noded.json", log_file=data_dir / "noded.log")
    daemon.wait_ready()
    return daemon


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
