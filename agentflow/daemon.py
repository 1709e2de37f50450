"""Process plumbing shared by the daemons: the state file, signals and the event loop."""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from agentflow.config import ConfigError

STATE_FILE_SUFFIX = ".json"
_PR_SET_PDEATHSIG = 1


def set_parent_death_signal(sig: int = signal.SIGTERM) -> bool:
    """Ask Linux to send `sig` to this process when its parent dies; False where unsupported.

    Used as a `preexec_fn` for daemons started by `agentflow up`, so that killing `up` (even
    with SIGKILL) never leaves orphaned daemons holding ports and databases.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def write_state_file(path: Path, data: dict[str, Any]) -> None:
    """Atomically write what a running daemon wants others to find (pid, bound addresses)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"pid": os.getpid(), **data}, indent=2) + "\n")
    os.replace(tmp, path)


def read_state_file(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def stop_on_signals(stop: asyncio.Event) -> None:
    """SIGTERM and SIGINT only set `stop`; the daemon shuts down in its own finally blocks."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


def run_daemon(main: Coroutine[Any, Any, None], *, prog: str) -> int:
    """Run a daemon's main coroutine on uvloop; configuration errors exit 2 with the reason."""
    try:
        import uvloop

        uvloop.run(main)
    except ConfigError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0
