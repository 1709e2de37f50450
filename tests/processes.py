"""Daemons as real child processes for the tests that need them: each with its log file and the
state file it writes once ready (that is how a test learns the ports it picked)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
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


class NatsServer:
    """A real `nats-server -js` (Debian's nats-server package) on a fixed port and store
    directory, so that a test can stop it and start it again where it was."""

    def __init__(self, store_dir: Path, *, port: int | None = None) -> None:
        binary = shutil.which("nats-server")
        if binary is None:
            raise AssertionError("nats-server is not installed: apt-get install nats-server (.ci/run does)")
        self.binary = binary
        self.store_dir = store_dir
        self.port = port or free_port()
        self.log_file = store_dir.parent / f"{store_dir.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> NatsServer:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            self.proc = subprocess.Popen(
                [self.binary, "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", str(self.store_dir)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
            )  # fmt: skip
        wait_for(self._accepting, timeout=START_TIMEOUT_S, what="nats-server to accept connections")
        return self

    def _accepting(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"nats-server exited with {self.proc.returncode}:\n{self.log_file.read_text()}")
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
