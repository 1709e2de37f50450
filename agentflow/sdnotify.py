"""The systemd notify protocol for `Type=notify` units: READY, STOPPING, STATUS and WATCHDOG.

systemd passes `$NOTIFY_SOCKET`, a Unix datagram socket (a path, or `@name` in the abstract
namespace); each message is one datagram of newline-separated `KEY=value` lines. With
`WatchdogSec=`, it also passes `$WATCHDOG_USEC` (and `$WATCHDOG_PID`, the process meant): the
service must send `WATCHDOG=1` more often than that, or it is restarted. We ping at half the
interval from the event loop, so a wedged loop stops the pings and systemd notices.

Outside systemd (`$NOTIFY_SOCKET` unset) every call is a no-op. A send that fails is logged
once and never stops the daemon: the protocol is advisory.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger(__name__)

NOTIFY_SOCKET = "NOTIFY_SOCKET"
WATCHDOG_USEC = "WATCHDOG_USEC"
WATCHDOG_PID = "WATCHDOG_PID"


def without_notify(environ: Mapping[str, str]) -> dict[str, str]:
    """`environ` without systemd's notify variables: for children that must not speak for us."""
    return {k: v for k, v in environ.items() if k not in (NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID)}


class Notifier:
    """Sends state changes to the service manager; `Notifier({})` (no socket) sends nothing."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        raw = env.get(NOTIFY_SOCKET, "")
        self._address: str | bytes | None = None
        if raw.startswith("@"):
            self._address = b"\0" + raw[1:].encode()  # the abstract namespace
        elif raw.startswith("/"):
            self._address = raw
        self.watchdog_interval_s = _watchdog_interval(env)
        self._warned = False

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def send(self, **fields: str) -> None:
        """One datagram of `KEY=value` lines, e.g. `send(READY="1", STATUS="serving")`."""
        if self._address is None:
            return
        message = "\n".join(f"{key}={value}" for key, value in fields.items()).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto(message, self._address)
        except OSError as exc:
            if not self._warned:
                log.warning("cannot notify the service manager", extra={"error": str(exc)})
                self._warned = True

    def ready(self, status: str) -> None:
        self.send(READY="1", STATUS=status, MAINPID=str(os.getpid()))

    def stopping(self, status: str) -> None:
        self.send(STOPPING="1", STATUS=status)

    def reloading(self) -> None:
        self.send(RELOADING="1")

    def status(self, status: str) -> None:
        self.send(STATUS=status)


def _watchdog_interval(env: Mapping[str, str]) -> float | None:
    """Seconds between pings (half of `$WATCHDOG_USEC`), or None without a watchdog for us."""
    pid = env.get(WATCHDOG_PID)
    if pid is not None and pid.strip() != str(os.getpid()):
        return None
    try:
        usec = int(env.get(WATCHDOG_USEC, ""))
    except ValueError:
        return None
    return usec / 2_000_000 if usec > 0 else None
