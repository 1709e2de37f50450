"""The daemons speak systemd's notify protocol to a real datagram socket, as under `Type=notify`:
READY once serving, WATCHDOG pings at half of WATCHDOG_USEC, STOPPING on SIGTERM; and SIGHUP
reloads the log level from their settings without a restart."""

from __future__ import annotations

import signal
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cluster import Daemon, start_controlplane, start_noded, start_router, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "notify.sock")
    sock.bind(path)
    sock.settimeout(30)
    try:
        yield sock, path
    finally:
        sock.close()


def receive_until(sock: socket.socket, key: str) -> list[dict[str, str]]:
    """Messages up to and including the first that sets `key`."""
    seen: list[dict[str, str]] = []
    while not seen or key not in seen[-1]:
        datagram = sock.recv(4096).decode()
        seen.append(dict(line.split("=", 1) for line in datagram.split("\n")))
    return seen


Starter = Callable[[Path, dict[str, str]], list[Daemon]]


def _controlplane(root: Path, env: dict[str, str]) -> list[Daemon]:
    return [start_controlplane(root / "cp", env=env)]


def _router(root: Path, env: dict[str, str]) -> list[Daemon]:
    return [start_router(root / "router", env=env)]


def _noded(root: Path, env: dict[str, str]) -> list[Daemon]:
    cp = start_controlplane(root / "cp")
    return [start_noded(root / "node", cp.state["grpc"], name="n1", env=env), cp]


@pytest.mark.parametrize("start", [_controlplane, _noded, _router], ids=["controlplane", "noded", "router"])
def test_ready_watchdog_and_stopping(tmp_path: Path, built_agents: Path, notify_socket, start: Starter) -> None:
    sock, path = notify_socket
    daemons = start(tmp_path, {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"})
    main = daemons[0]
    try:
        [ready] = [m for m in receive_until(sock, "READY") if "READY" in m]
        assert ready["READY"] == "1" and ready["MAINPID"] == str(main.proc.pid) and ready["STATUS"]
        pings = receive_until(sock, "WATCHDOG") + receive_until(sock, "WATCHDOG")
        assert [m for m in pings if "WATCHDOG" in m] == [{"WATCHDOG": "1"}] * 2
        main.proc.send_signal(signal.SIGTERM)
        stopping = [m for m in receive_until(sock, "STOPPING") if "STOPPING" in m]
        assert stopping[0]["STOPPING"] == "1"
        assert main.proc.wait(30) == 0
    finally:
        for daemon in daemons:
            daemon.stop()


def test_sighup_reloads_the_log_level_without_a_restart(tmp_path: Path) -> None:
    config = tmp_path / "router.toml"
    config.write_text('log_level = "warning"\n')
    data = tmp_path / "router"
    argv = [sys.executable, "-m", "router", "--data-dir", str(data), "--listen", "127.0.0.1:0", "--dev",
            "--config", str(config)]  # fmt: skip
    router = Daemon("router", argv, state_file=data / "router.json", log_file=data / "router.log")
    router.wait_ready()
    try:
        assert "router ready" not in router.log_file.read_text()  # an info line, below warning
        config.write_text('log_level = "info"\n')
        router.proc.send_signal(signal.SIGHUP)
        # Logged at info, after the new level took effect: seen only because it did.
        wait_for(lambda: "settings reloaded" in router.log_file.read_text(), timeout=15, what="the reload")
        config.write_text('log_level = "loud"\n')  # bad settings: the old ones stay, and it says why
        router.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "cannot reload settings" in router.log_file.read_text(), timeout=15, what="the refusal")
        assert router.proc.poll() is None
        assert "log_level" in router.log_file.read_text().split("cannot reload settings", 1)[1]
    finally:
        router.stop()
