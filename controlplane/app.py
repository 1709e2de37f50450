"""The control plane daemon: engine + gRPC server + metrics, until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import timedelta

from prometheus_client import CollectorRegistry

from agentflow.config import ConfigError
from agentflow.config.parsers import split_address
from agentflow.daemon import FatalError, daemon_main, on_reload, stop_on_signals, write_state_file
from agentflow.lifecycle import Component, GrpcServer, MetricsServer, Watchdog, supervise
from agentflow.sdnotify import Notifier
from agentflow.telemetry.tracing import Tracing
from agentflow.tls import ServerTLS, TLSError, TLSFiles, plaintext_problem
from controlplane.api.server import build_server
from controlplane.config import ControlPlaneConfig
from controlplane.engine import Engine
from controlplane.engine.retention import EventRetention
from controlplane.metrics import ControlPlaneMetrics
from controlplane.publish import NATS_SINK, JetStreamPublisher
from controlplane.run_spans import RunSpans

log = logging.getLogger("controlplane")

SHUTDOWN_GRACE_S = 5.0


class MetricsFollower(Component):
    """Feeds the Prometheus metrics from the committed-event bus."""

    def __init__(self, metrics: ControlPlaneMetrics, engine: Engine) -> None:
        super().__init__()
        self._metrics = metrics
        self._engine = engine

    async def _serve(self) -> None:
        async with asyncio.TaskGroup() as group:
            follow = group.create_task(self._metrics.follow(self._engine), name="metrics-follower")
            await self.stopping.wait()
            follow.cancel()


async def serve(config: ControlPlaneConfig, *, stop: asyncio.Event | None = None) -> None:
    """Serve until `stop` (or SIGTERM/SIGINT); whatever was started is stopped in reverse."""
    stop = stop or asyncio.Event()
    stop_on_signals(stop)
    tls = _server_tls(config)
    engine = await Engine.open(
        config.data_dir,
        heartbeat_interval=config.heartbeat_interval,
        node_ttl=config.node_ttl,
        max_module_bytes=config.max_module_size,
    )
    tracing = Tracing.configure("agentflow-controlplane", config.tracing)
    try:
        registry = CollectorRegistry()
        metrics = ControlPlaneMetrics(registry)
        try:
            server, port, health = await build_server(engine, config.listen, tls=tls, tracing=tracing)
        except RuntimeError:  # grpc's way of saying the bind failed
            raise FatalError(f"cannot listen on {config.listen} (address in use or not available)") from None
        await server.start()
        grpc_server = GrpcServer(server, grace=SHUTDOWN_GRACE_S, before_stop=health.enter_graceful_shutdown)
        metrics_server = MetricsServer(registry, config.metrics_listen)
        if tls is not None and (path := await engine.tokens.bootstrap(config.data_dir)) is not None:
            log.warning(
                "no admin token existed: made one for the first administrator; keep it safe",
                extra={"path": str(path)},
            )
    except BaseException:
        await engine.shutdown()
        tracing.shutdown()
        raise
    host, _ = split_address(config.listen)
    metrics_host, _ = split_address(config.metrics_listen)
    write_state_file(config.state_file, {"grpc": f"{host}:{port}", "metrics": f"{metrics_host}:{metrics_server.port}"})
    notifier = Notifier()
    try:
        log.info(
            "control plane ready",
            extra={"grpc": f"{host}:{port}", "metrics": f"{metrics_host}:{metrics_server.port}",
                   "data_dir": str(config.data_dir)},
        )  # fmt: skip

        notifier.ready(f"serving gRPC on {host}:{port}")

        async def announce() -> None:
            log.info("control plane stopping")
            notifier.stopping("stopping")

        components: list[Component] = [Watchdog(notifier), engine, MetricsFollower(metrics, engine)]
        components += _event_sinks(config, engine)
        if tracing.enabled:
            components.append(RunSpans(engine, tracing))
        components += [grpc_server, metrics_server]
        await supervise(components, stop, before_stopping=announce)
    finally:
        config.state_file.unlink(missing_ok=True)
        tracing.shutdown()  # exports what is still buffered
    log.info("control plane stopped")


def _event_sinks(config: ControlPlaneConfig, engine: Engine) -> list[Component]:
    """The NATS publisher (when configured) and the pruning of events every sink has."""
    sinks: list[Component] = []
    if config.nats_url:
        sinks.append(JetStreamPublisher(engine.core, config.nats_url))
    if config.events_retention > timedelta(0):
        sink = NATS_SINK if config.nats_url else None
        sinks.append(EventRetention(engine.core, keep=config.events_retention, sink=sink))
    return sinks


def _server_tls(config: ControlPlaneConfig) -> ServerTLS | None:
    """Mutual TLS when its files are set; without them, only a loopback listener is allowed."""
    try:
        files = TLSFiles.from_settings(config.tls_ca, config.tls_cert, config.tls_key, flag="--tls")
        if files is None:
            problem = plaintext_problem(config.listen, flags="--tls-ca, --tls-cert and --tls-key")
            if problem is not None:
                raise FatalError(f"listen: {problem}")
            return None
        tls = ServerTLS(files)
    except TLSError as exc:
        raise ConfigError(f"tls: {exc}") from None
    on_reload(tls.reload)  # SIGHUP: new handshakes use the files as they are now
    return tls


def main(argv: Sequence[str] | None = None) -> int:
    return daemon_main(
        argv, prog="agentflow controlplane", component="controlplane", load=ControlPlaneConfig.load, serve=serve
    )


__all__ = ["main", "serve"]
