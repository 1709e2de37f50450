"""Process plumbing shared by the daemons: the state file, signals and the event loop."""

from __future__ import annotations

import asyncio
import contextvars
import ctypes
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

from agentflow.config import ConfigError
from agentflow.sdnotify import Notifier
from agentflow.telemetry import configure_logging
from agentflow.telemetry.logs import set_log_level

STATE_FILE_SUFFIX = ".json"
_RELOAD_HOOKS: contextvars.ContextVar[list[Callable[[], None]]] = contextvars.ContextVar("reload_hooks")
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


def stop_on_signals(stop: asyncio.Event, *, again: asyncio.Event | None = None) -> None:
    """SIGTERM and SIGINT only set `stop`; the daemon shuts down in its own finally blocks.

    Once `stop` is set, another signal sets `again` (say, to cut a grace period short).
    """
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if stop.is_set() and again is not None:
            again.set()
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)


class FatalError(Exception):
    """A condition the daemon cannot run past (e.g. the control plane refused the node)."""


class HasLogLevel(Protocol):
    @property
    def log_level(self) -> str: ...

    @property
    def log_format(self) -> str: ...


C = TypeVar("C", bound=HasLogLevel)


def daemon_main(
    argv: Sequence[str] | None,
    *,
    prog: str,
    component: str,
    load: Callable[[Sequence[str] | None], C],
    serve: Callable[[C], Coroutine[Any, Any, None]],
) -> int:
    """Load settings, set up JSON logging and serve on uvloop until stopped; SIGHUP loads the
    settings again and applies the log level (flags given on the command line stay as they are).

    Exit codes: 0 after a clean stop, 1 on a fatal error, 2 for bad settings.
    """
    try:
        config = load(argv)
        configure_logging(component, config.log_level, config.log_format)
        import uvloop

        uvloop.run(_reloading_on_hangup(serve(config), lambda: load(argv), component))
    except BaseException as exc:  # what stopped serve(), often in an ExceptionGroup of its components
        match _leaf(exc):
            case ConfigError() as error:
                print(f"{prog}: {error}", file=sys.stderr)
                return 2
            case FatalError() as error:
                print(f"{prog}: {error}", file=sys.stderr)
                return 1
            case KeyboardInterrupt():
                return 130
            case SystemExit():
                raise
        logging.getLogger(component).critical("stopped by an unexpected error", exc_info=exc)
        return 1
    return 0


async def _reloading_on_hangup(
    main: Coroutine[Any, Any, None], load_again: Callable[[], HasLogLevel], component: str
) -> None:
    hooks: list[Callable[[], None]] = []
    _RELOAD_HOOKS.set(hooks)  # this task's context: serve() and what it starts see the list
    asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, _reload, load_again, component, hooks)
    await main


def on_reload(hook: Callable[[], None]) -> None:
    """Run `hook` on SIGHUP too (say, read certificates again), after the settings are reloaded.
    Outside `daemon_main` (a test serving in-process) there is no SIGHUP handling, and no hook."""
    hooks = _RELOAD_HOOKS.get(None)
    if hooks is not None:
        hooks.append(hook)


def _reload(load_again: Callable[[], HasLogLevel], component: str, hooks: list[Callable[[], None]]) -> None:
    log = logging.getLogger(component)
    notifier = Notifier()
    notifier.reloading()
    try:
        config = load_again()
    except (ConfigError, SystemExit) as exc:  # argparse exits on what it refuses
        log.error("cannot reload settings; the ones in force stay", extra={"error": str(exc)})
    else:
        set_log_level(config.log_level)
        log.info("settings reloaded", extra={"log_level": config.log_level})
    for hook in hooks:
        hook()
    notifier.ready("settings reloaded")


def _leaf(exc: BaseException) -> BaseException:
    """The first error that is not a group: what a TaskGroup of components failed with."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc
