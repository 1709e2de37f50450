"""The contract every long-lived component of the daemons follows.

- `run()` serves until `shutdown()` is called (or it fails), and returns only once the component
  has stopped and released what it holds;
- `shutdown()` is idempotent and may be called before, during or after `run()`;
- `async with component:` runs it in the background and shuts it down on exit, re-raising what
  made `run()` fail.

Daemons run their components as children of one `asyncio.TaskGroup` (see `supervise`): when one
fails, the others are shut down and the error reaches the log and the exit code.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from types import TracebackType

import grpc
from prometheus_client import CollectorRegistry

from agentflow.clock import Clock, SystemClock, wait
from agentflow.daemon import FatalError
from agentflow.sdnotify import Notifier
from agentflow.telemetry import serve_metrics

log = logging.getLogger(__name__)


class Component:
    """Base class: subclasses implement `_serve()` (return once `self.stopping` is set)."""

    def __init__(self) -> None:
        self._lc_stopping = asyncio.Event()
        self._lc_stopped = asyncio.Event()
        self._lc_started = False
        self._lc_background: asyncio.Task[None] | None = None

    @property
    def stopping(self) -> asyncio.Event:
        """Set once `shutdown()` was asked for."""
        return self._lc_stopping

    async def _serve(self) -> None:
        raise NotImplementedError

    async def run(self) -> None:
        if self._lc_started or self._lc_stopped.is_set():
            raise RuntimeError(f"{type(self).__name__} runs only once")
        self._lc_started = True
        try:
            await self._serve()
        finally:
            self._lc_stopping.set()
            self._lc_stopped.set()

    async def shutdown(self) -> None:
        self._lc_stopping.set()
        if self._lc_started:
            await self._lc_stopped.wait()

    async def __aenter__(self) -> Component:
        self._lc_background = asyncio.create_task(self.run(), name=type(self).__name__)
        await asyncio.sleep(0)  # let run() begin, so that shutdown() waits for it
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.shutdown()
        if self._lc_background is not None:
            await self._lc_background


async def supervise(
    components: Sequence[Component],
    stop: asyncio.Event,
    *,
    before_stopping: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Run `components` until `stop` is set or one of them fails; then (after `before_stopping`,
    say a graceful drain) shut all of them down, the last started first. A failure cancels the
    others and propagates, in an ExceptionGroup, once all have stopped."""

    async def stop_all() -> None:
        await stop.wait()
        if before_stopping is not None:
            await before_stopping()
        for component in reversed(components):
            await component.shutdown()

    async with asyncio.TaskGroup() as group:
        for component in components:
            group.create_task(_run_then_stop(component, stop), name=type(component).__name__)
        group.create_task(stop_all(), name="shutdown")


async def _run_then_stop(component: Component, stop: asyncio.Event) -> None:
    try:
        await component.run()
    finally:
        if not stop.is_set():
            log.error(
                "a component stopped on its own; stopping the daemon", extra={"component": type(component).__name__}
            )
            stop.set()


class GrpcServer(Component):
    """A started `grpc.aio.Server` as a component: `shutdown()` stops it, letting calls in
    progress finish for up to `grace` seconds."""

    def __init__(
        self, server: grpc.aio.Server, *, grace: float, before_stop: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        super().__init__()
        self.server = server
        self._grace = grace
        self._before_stop = before_stop

    async def _serve(self) -> None:
        try:
            await self.stopping.wait()
        finally:
            if self._before_stop is not None:
                await self._before_stop()  # e.g. health checks answer NOT_SERVING from now on
            await self.server.stop(self._grace)


class MetricsServer(Component):
    """Prometheus `/metrics` of `registry` on `listen` (port 0 picks one), from construction on."""

    def __init__(self, registry: CollectorRegistry, listen: str) -> None:
        super().__init__()
        try:
            self.port, self._stop_serving = serve_metrics(registry, listen)
        except OSError as exc:
            raise FatalError(f"cannot serve metrics on {listen}: {exc.strerror}") from None

    async def _serve(self) -> None:
        try:
            await self.stopping.wait()
        finally:
            await asyncio.to_thread(self._stop_serving)


class Watchdog(Component):
    """Sends `WATCHDOG=1` every `notifier.watchdog_interval_s` until shut down (idle without one)."""

    def __init__(self, notifier: Notifier, *, clock: Clock | None = None) -> None:
        super().__init__()
        self._notifier = notifier
        self._clock = clock or SystemClock()

    async def _serve(self) -> None:
        interval = self._notifier.watchdog_interval_s
        if interval is None or not self._notifier.enabled:
            await self.stopping.wait()
            return
        every = timedelta(seconds=interval)
        while not self.stopping.is_set():
            self._notifier.send(WATCHDOG="1")
            await wait(self.stopping, every, clock=self._clock)
