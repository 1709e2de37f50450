"""The control plane daemon: engine + gRPC server + metrics, until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from prometheus_client import CollectorRegistry

from agentflow.config.parsers import split_address
from agentflow.daemon import daemon_main, stop_on_signals, write_state_file
from agentflow.telemetry import serve_metrics
from controlplane.api.server import build_server
from controlplane.config import ControlPlaneConfig
from controlplane.engine import Engine
from controlplane.metrics import ControlPlaneMetrics

log = logging.getLogger("controlplane")

SHUTDOWN_GRACE_S = 5.0


async def serve(config: ControlPlaneConfig, *, stop: asyncio.Event | None = None) -> None:
    stop = stop or asyncio.Event()
    stop_on_signals(stop)
    engine = await Engine.open(
        config.data_dir,
        heartbeat_interval=config.heartbeat_interval,
        node_ttl=config.node_ttl,
        max_module_bytes=config.max_module_size,
    )
    registry = CollectorRegistry()
    metrics = ControlPlaneMetrics(registry)
    metrics_task = asyncio.create_task(metrics.follow(engine), name="metrics")
    server, port, health = await build_server(engine, config.listen)
    stop_metrics = None
    try:
        await server.start()
        await engine.start()
        metrics_port, stop_metrics = serve_metrics(registry, config.metrics_listen)
        host, _ = split_address(config.listen)
        metrics_host, _ = split_address(config.metrics_listen)
        write_state_file(
            config.state_file,
            {"grpc": f"{host}:{port}", "metrics": f"{metrics_host}:{metrics_port}"},
        )
        log.info(
            "control plane ready",
            extra={"grpc": f"{host}:{port}", "metrics": f"{metrics_host}:{metrics_port}",
                   "data_dir": str(config.data_dir)},
        )  # fmt: skip
        await stop.wait()
        log.info("control plane stopping")
    finally:
        await health.enter_graceful_shutdown()
        await server.stop(SHUTDOWN_GRACE_S)
        metrics_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await metrics_task
        await engine.shutdown()
        if stop_metrics is not None:
            stop_metrics()
        config.state_file.unlink(missing_ok=True)
        log.info("control plane stopped")


def main(argv: Sequence[str] | None = None) -> int:
    return daemon_main(
        argv, prog="agentflow controlplane", component="controlplane", load=ControlPlaneConfig.load, serve=serve
    )


__all__ = ["main", "serve"]
