"""The router daemon: engine + HTTP front, until SIGTERM/SIGINT (`python -m router`, `agentflow router`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from aiohttp import web
from prometheus_client import CollectorRegistry

from agentflow.config.parsers import split_address
from agentflow.daemon import FatalError, daemon_main, stop_on_signals, write_state_file
from agentflow.lifecycle import MetricsServer, Watchdog
from agentflow.sdnotify import Notifier
from agentflow.telemetry.tracing import Tracing
from router.config import RouterConfig
from router.engine import Engine
from router.http import Front
from router.metrics import RouterMetrics

log = logging.getLogger("router")

SHUTDOWN_GRACE_S = 5.0


async def start(
    config: RouterConfig, *, engine: Engine | None = None, tracing: Tracing | None = None
) -> tuple[web.AppRunner, Engine, str]:
    """Open the engine and serve its HTTP front; answer the runner, the engine and the bound host:port."""
    if engine is None:
        engine = await Engine.open(config, metrics=RouterMetrics(CollectorRegistry()))
    app = Front(engine, tracing=tracing).app()
    app.middlewares.append(engine.metrics.middleware())
    # handler_cancellation=False (aiohttp's default, stated here because the engine relies on it): a
    # client that goes away does not cancel its handler, so the upstream call it drives completes.
    runner = web.AppRunner(
        app,
        access_log=None,
        handle_signals=False,
        shutdown_timeout=SHUTDOWN_GRACE_S,
        handler_cancellation=False,
    )
    await runner.setup()
    host, port = split_address(config.listen)
    site = web.TCPSite(runner, host, port, backlog=1024, reuse_address=True)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        await engine.close()
        raise FatalError(f"cannot listen on {config.listen}: {exc.strerror or exc}") from None
    server = site._server
    sockets = getattr(server, "sockets", None) or []
    bound = sockets[0].getsockname()[1] if sockets else port
    shown = f"[{host}]" if ":" in host else host
    return runner, engine, f"{shown}:{bound}"


async def serve(config: RouterConfig, *, stop: asyncio.Event | None = None) -> None:
    stop = stop or asyncio.Event()
    stop_on_signals(stop)
    async with contextlib.AsyncExitStack() as stack:
        tracing = Tracing.configure("agentflow-router", config.tracing)
        stack.callback(tracing.shutdown)  # last: exports what is still buffered
        runner, engine, address = await start(config, tracing=tracing)
        stack.push_async_callback(engine.close)
        stack.push_async_callback(runner.cleanup)
        state: dict[str, object] = {"http": address, "url": f"http://{address}/v1", "dev": config.dev}
        metrics_server: MetricsServer | None = None
        if config.metrics_listen:  # metrics for the fleet's Prometheus, without opening the API to it
            metrics_server = MetricsServer(engine.metrics.registry, config.metrics_listen)
            metrics_host, _ = split_address(config.metrics_listen)
            state["metrics"] = f"{metrics_host}:{metrics_server.port}"
        write_state_file(config.state_file, state)
        stack.callback(config.state_file.unlink, missing_ok=True)
        providers = [{"name": p.name, "kind": p.kind, "base_url": p.base_url} for p in config.providers]
        log.info(
            "router ready",
            extra={"http": address, "providers": providers, "dev": config.dev, "data_dir": str(config.data_dir)},
        )
        if config.dev:
            log.warning(
                "the dev provider is enabled: its answers are deterministic fakes labelled [agentflow dev "
                "provider], from provider dev",
                extra={"provider": "dev"},
            )
        if not config.providers and not config.dev:
            log.warning(
                "no LLM provider is configured; calls will be refused until one is",
                extra={"hint": "set OPENAI_API_KEY or ANTHROPIC_API_KEY, use --config, or --dev"},
            )
        notifier = Notifier()
        notifier.ready(f"serving on {address}")
        async with Watchdog(notifier), contextlib.AsyncExitStack() as serving:
            if metrics_server is not None:
                await serving.enter_async_context(metrics_server)
            await stop.wait()
            log.info("router stopping")
            notifier.stopping("stopping")
    log.info("router stopped")


def main(argv: Sequence[str] | None = None) -> int:
    return daemon_main(argv, prog="agentflow router", component="router", load=RouterConfig.load, serve=serve)


__all__ = ["main", "serve", "start"]
