"""Daemons as real child processes for the tests that need them: each with its log file and the
state file it writes once ready (that is how a test learns the ports it picked)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
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

    def __init__(
        self, name: str, argv: list[str], *, state_file: Path, log_file: Path, env: Mapping[str, str] | None = None
    ) -> None:
        self.name = name
        self.state_file = state_file
        self.log_file = log_file
        state_file.unlink(missing_ok=True)
        log_file.parent.mkdir(parents=True, exist_ok=True)
        self._log = log_file.open("ab")
        self.proc = subprocess.Popen(
            argv,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
            start_new_session=True,
            env=None if env is None else {**os.environ, **env},
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


def start_router(
    data_dir: Path, *, dev: bool = True, extra: Sequence[str] = (), env: Mapping[str, str] | None = None
) -> Daemon:
    """`python -m router` on 127.0.0.1:0 (with the offline `dev` provider unless `dev=False`);
    its state holds "http" (host:port) and "url" (the OpenAI base URL)."""
    argv = [sys.executable, "-m", "router", "--data-dir", str(data_dir), "--listen", "127.0.0.1:0",
            "--log-level", "debug", *(["--dev"] if dev else []), *extra]  # fmt: skip
    daemon = Daemon("router", argv, state_file=data_dir / "router.json", log_file=data_dir / "router.log", env=env)
    daemon.wait_ready()
    return daemon
