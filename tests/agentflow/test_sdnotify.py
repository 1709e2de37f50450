"""The notify protocol against a real Unix datagram socket, as systemd listens on one."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from agentflow.clock import ManualClock
from agentflow.lifecycle import Watchdog
from agentflow.sdnotify import Notifier

pytestmark = pytest.mark.unit


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "notify")
    sock.bind(path)
    sock.settimeout(5)
    try:
        yield sock, path
    finally:
        sock.close()


def fields(datagram: bytes) -> dict[str, str]:
    return dict(line.split("=", 1) for line in datagram.decode().split("\n"))


def test_ready_stopping_and_status_are_datagrams_of_key_value_lines(listener) -> None:
    sock, path = listener
    notifier = Notifier({"NOTIFY_SOCKET": path})
    assert notifier.enabled
    notifier.ready("serving on 127.0.0.1:7070")
    assert fields(sock.recv(4096)) == {"READY": "1", "STATUS": "serving on 127.0.0.1:7070", "MAINPID": str(os.getpid())}
    notifier.stopping("draining")
    assert fields(sock.recv(4096)) == {"STOPPING": "1", "STATUS": "draining"}


def test_the_abstract_namespace_is_spelled_with_an_at_sign() -> None:
    name = f"agentflow-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(b"\0" + name.encode())
        sock.settimeout(5)
        Notifier({"NOTIFY_SOCKET": "@" + name}).status("hello")
        assert sock.recv(4096) == b"STATUS=hello"


def test_without_a_socket_nothing_is_sent_and_nothing_fails(tmp_path: Path) -> None:
    assert not Notifier({}).enabled
    Notifier({}).ready("x")
    gone = Notifier({"NOTIFY_SOCKET": str(tmp_path / "nobody-listens")})
    gone.ready("x")  # logged once, not raised
    gone.stopping("x")


@pytest.mark.parametrize(
    ("env", "interval"),
    [
        ({"WATCHDOG_USEC": "10000000"}, 5.0),
        ({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": str(os.getpid())}, 5.0),
        ({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": "1"}, None),  # meant for another process
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({}, None),
    ],
)
def test_the_watchdog_interval_is_half_of_watchdog_usec(env: dict[str, str], interval: float | None) -> None:
    assert Notifier({"NOTIFY_SOCKET": "/x", **env}).watchdog_interval_s == interval


async def test_the_watchdog_pings_at_its_interval_until_shut_down(listener) -> None:
    sock, path = listener
    sock.setblocking(False)
    clock = ManualClock()
    watchdog = Watchdog(Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "4000000"}), clock=clock)

    def pings() -> int:
        count = 0
        while True:
            try:
                assert sock.recv(64) == b"WATCHDOG=1"
            except BlockingIOError:
                return count
            count += 1

    async with watchdog:
        await clock.wait_for_sleepers(1)
        assert pings() == 1  # at once
        await clock.advance(timedelta(seconds=1.9))
        assert pings() == 0
        await clock.advance(timedelta(seconds=0.1))
        await clock.wait_for_sleepers(1)
        assert pings() == 1
    await clock.advance(timedelta(seconds=10))
    assert pings() == 0  # stopped
