"""Process plumbing shared by the daemons: the state file, signals and the event loop."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from agentflow.config import ConfigError

STATE_FILE_SUFFIX = ".json"


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
