"""The control plane daemon: engine + gRPC server + metrics, until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from prometheus_client import CollectorRegistry

from agentflow.config.parsers import split_address
from agentflow.daemon import FatalError, daemon_main, stop_on_signals, write_state_file
from agentflow.telemetry import serve_metrics
from controlplane.api.server import build_server
from controlplane.config import ControlPlaneConfig
from controlplane.engine import Engine
from controlplane.metrics import ControlPlaneMetrics

log = logging.getLogger("controlplane")

SHUTDOWN_GRACE_S = 5.0


async def serve(config: ControlPlaneConfig, *, stop: asyncio.Event | None = None) -> None:
    """Serve until `stop` (or SIGTERM/SIGINT); whatever was started is stopped in reverse."""
    stop = stop or asyncio.Event()
    stop_on_signals(stop)
    async with contextlib.AsyncExitStack() as stack:
        engine = await Engine.open(
            config.data_dir,
            heartbeat_interval=config.heartbeat_interval,
            node_ttl=config.node_ttl,
            max_module_bytes=config.max_module_size,
        )
        stack.push_async_callback(engine.shutdown)
        registry = CollectorRegistry()
        metrics = ControlPlaneMetrics(registry)
        metrics_task = asyncio.create_task(metrics.follow(engine), name="metrics")
        stack.push_async_callback(_cancel, metrics_task)
        try:
            server, port, health = await build_server(engine, config.listen)
        except RuntimeError:  # grpc's way of saying the bind failed
            raise FatalError(f"cannot listen on {config.listen} (address in use or not available)") from None
        await server.start()
        stack.push_async_callback(server.stop, SHUTDOWN_GRACE_S)
        stack.push_async_callback(health.enter_graceful_shutdown)
        await engine.start()
        try:
            metrics_port, stop_metrics = serve_metrics(registry, config.metrics_listen)
        except OSError as exc:
            raise FatalError(f"cannot serve metrics on {config.metrics_listen}: {exc.strerror}") from None
        stack.callback(stop_metrics)
        host, _ = split_address(config.listen)
        metrics_host, _ = split_address(config.metrics_listen)
        write_state_file(config.state_file, {"grpc": f"{host}:{port}", "metrics": f"{metrics_host}:{metrics_port}"})
        stack.callback(config.state_file.unlink, missing_ok=True)
        log.info(
            "control plane ready",
            extra={"grpc": f"{host}:{port}", "metrics": f"{metrics_host}:{metrics_port}",
                   "data_dir": str(config.data_dir)},
        )  # fmt: skip
        await stop.wait()
        log.info("control plane stopping")
    log.info("control plane stopped")


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def main(argv: Sequence[str] | None = None) -> int:
    return daemon_main(
        argv, prog="agentflow controlplane", component="controlplane", load=ControlPlaneConfig.load, serve=serve
    )


__all__ = ["main", "serve"]
