"""The node daemon: worker pool, step runner, metrics, local admin API and the control-plane
link, supervised together: when one fails the others stop, and the error reaches the exit code."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Sequence
from importlib.metadata import PackageNotFoundError, version

import grpc
from prometheus_client import CollectorRegistry

from agentflow.config import ConfigError
from agentflow.config.parsers import split_address
from agentflow.daemon import FatalError, daemon_main, stop_on_signals, write_state_file
from agentflow.lifecycle import Component, GrpcServer, MetricsServer, Watchdog, supervise
from agentflow.rpc.tracing import ClientTracingInterceptor
from agentflow.sdnotify import Notifier, without_notify
from agentflow.telemetry.tracing import Tracing
from agentflow.tls import TLSError, TLSFiles
from agentflow.transport import MESSAGE_SIZE_OPTIONS
from agentflow.vocabulary import Isolation
from noded import capacity, isolation
from noded.admin import NodeAdminServicer, NodeFacts, claim_socket, serve_admin
from noded.cgroups import CgroupDriver, CgroupError, node_subtree, open_driver
from noded.config import NodedConfig
from noded.drain import DrainState
from noded.link import ControlPlaneLink
from noded.llm import RouterClient
from noded.messages import Capacity, Registration
from noded.metrics import NodeMetrics
from noded.modules import ModuleStore
from noded.precompile import Precompiler
from noded.runner import StepRunner
from noded.sandbox import confine
from noded.sandbox.confine import Confinement, WorkerConfinement
from noded.shutdown import wind_down
from noded.state import SqliteNodeState
from noded.workers import WorkerPool

log = logging.getLogger("noded")

CHANNEL_OPTIONS = (
    *MESSAGE_SIZE_OPTIONS,
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", 10_000),
)
ADMIN_STOP_GRACE_S = 0.5


def _version() -> str:
    try:
        return version("agentflow")
    except PackageNotFoundError:
        return "dev"


class PoolService(Component):
    """The warm worker pool as a component: started in `run()`, its workers stopped on shutdown."""

    def __init__(self, pool: WorkerPool) -> None:
        super().__init__()
        self.pool = pool

    async def _serve(self) -> None:
        try:
            await self.pool.start()
            await self.stopping.wait()
        finally:
            await self.pool.shutdown()


async def serve(config: NodedConfig, *, stop: asyncio.Event | None = None) -> None:
    stop = stop or asyncio.Event()
    force = asyncio.Event()  # a second signal: skip the rest of the grace period
    stop_on_signals(stop, again=force)
    data_dir = config.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    claim_socket(config.admin_socket_path)  # first: a second noded on this data dir stops here
    cgroups = _cgroup_driver(config)
    walls = await _confinement(config)
    slots = config.slots or capacity.default_slots()
    registration = Registration(
        name=config.name,
        node_id="",
        labels=config.labels,
        capacity=Capacity(
            cpu_millis=config.cpu or capacity.host_cpu_millis(),
            memory_bytes=config.memory or capacity.host_memory_bytes(),
            slots=slots,
        ),
        isolation=cgroups.mode,
        version=_version(),
        sandbox_layers=walls.layers,
        join_token=_join_token(config),
    )
    registry = CollectorRegistry()
    metrics = NodeMetrics(registry)
    metrics.describe(name=config.name, capacity=registration.capacity, isolation=cgroups.mode,
                     version=registration.version)  # fmt: skip
    drain = DrainState(metrics)
    tracing = Tracing.configure("agentflow-noded", config.tracing)
    async with contextlib.AsyncExitStack() as stack:
        stack.callback(tracing.shutdown)  # last: exports what is still buffered
        stack.callback(cgroups.teardown)
        state = await SqliteNodeState.open(data_dir / "noded.db")
        stack.push_async_callback(state.close)
        channel = _channel(config, tracing)
        stack.push_async_callback(channel.close)
        pool = WorkerPool(
            data_dir / "compiled",
            warm=min(config.warm_workers, slots),
            max_workers=slots,
            confinement=walls.mode,
            env=without_notify(os.environ),  # workers do not speak for the service
        )
        metrics.watch_workers(pool)
        router = RouterClient(f"http://{config.router}")
        stack.push_async_callback(router.close)
        link: ControlPlaneLink | None = None

        async def fetch(digest: str) -> AsyncIterator[bytes]:
            assert link is not None
            async for chunk in link.fetch_module(digest):
                yield chunk.data

        runner = StepRunner(
            pool=pool,
            modules=ModuleStore(data_dir / "modules", fetch),
            state=state,
            scratch_root=data_dir / "scratch",
            send=lambda message: link.send(message) if link is not None else False,
            metrics=metrics,
            cgroups=cgroups,
            drain=drain,
            router=router,
            tracing=tracing,
            node_name=config.name,
            precompiler=Precompiler(data_dir / "compiled"),
        )
        link = ControlPlaneLink(
            channel,
            registration=registration,
            state=state,
            handlers=runner,
            on_connection=lambda up: metrics.connected.set(1 if up else 0),
            on_heartbeat=metrics.heartbeat_sent,
        )
        await runner.load_outbox()
        metrics_server = MetricsServer(registry, config.metrics_listen)
        admin_socket = config.admin_socket_path
        admin = NodeAdminServicer(
            facts=NodeFacts(
                name=config.name,
                server=config.server,
                isolation=cgroups.mode,
                slots=slots,
                version=registration.version,
                sandbox_layers=walls.layers,
            ),
            link=link,
            runner=runner,
            drain=drain,
            idle_workers=lambda: pool.idle_count,
        )
        admin_server = GrpcServer(await serve_admin(admin, admin_socket), grace=ADMIN_STOP_GRACE_S)
        stack.callback(admin_socket.unlink, missing_ok=True)
        metrics_host, _ = split_address(config.metrics_listen)
        write_state_file(
            config.state_file,
            {"name": config.name, "server": config.server, "metrics": f"{metrics_host}:{metrics_server.port}",
             "isolation": cgroups.mode.value, "sandbox_layers": sorted(walls.layers), "slots": slots,
             "admin_socket": str(admin_socket)},
        )  # fmt: skip
        stack.callback(config.state_file.unlink, missing_ok=True)
        log.info(
            "node ready",
            extra={
                "node": config.name,
                "server": config.server,
                "isolation": cgroups.mode.value,
                "sandbox_layers": ",".join(sorted(walls.layers)) or "none",
                "slots": slots,
            },
        )

        notifier = Notifier()
        notifier.ready(f"node {config.name}, control plane {config.server}")

        async def graceful() -> None:
            log.info("node stopping")
            notifier.stopping("draining: running steps finish and their results land")
            await wind_down(link, runner, grace=config.shutdown_grace, force=force)

        # Stopped in reverse: the link last of all to start, first to stop, once running steps
        # finished and their results landed (wind_down); then the steps still running.
        components = [Watchdog(notifier), PoolService(pool), runner, metrics_server, admin_server, link]
        await supervise(components, stop, before_stopping=graceful)
    log.info("node stopped")


async def _confinement(config: NodedConfig) -> WorkerConfinement:
    """The sandbox layers workers will run behind; `required` without all of them is fatal."""
    try:
        walls = await confine.probe(Confinement(config.confinement))
    except confine.ConfinementError as exc:
        raise FatalError(f"confinement {config.confinement}: {exc}") from None
    for problem in walls.problems:
        log.warning("workers run without a sandbox layer", extra={"reason": problem})
    return walls


def _join_token(config: NodedConfig) -> str:
    if config.join_token_file is None:
        return ""
    try:
        return config.join_token_file.read_text().strip()
    except OSError as exc:
        raise ConfigError(f"join_token_file: {config.join_token_file}: {exc.strerror or exc}") from None


def _channel(config: NodedConfig, tracing: Tracing) -> grpc.aio.Channel:
    """TLS to the control plane when the node has its certificate, plaintext otherwise; a client
    span for each unary call (Register)."""
    interceptors = [ClientTracingInterceptor(tracing)] if tracing.enabled else None
    try:
        files = TLSFiles.from_settings(config.tls_ca, config.tls_cert, config.tls_key, flag="--tls")
        if files is None:
            return grpc.aio.insecure_channel(config.server, options=CHANNEL_OPTIONS, interceptors=interceptors)
        return grpc.aio.secure_channel(
            config.server, files.channel_credentials(), options=CHANNEL_OPTIONS, interceptors=interceptors
        )
    except TLSError as exc:
        raise ConfigError(f"tls: {exc}") from None


def _cgroup_driver(config: NodedConfig) -> CgroupDriver:
    """The cgroup driver for the configured isolation; `auto` falls back to `none` with a warning."""
    try:
        mode = isolation.resolve(config.isolation)
    except ValueError as exc:
        raise ConfigError(f"isolation: {exc}") from None
    subtree = node_subtree(config.name, config.data_dir)
    driver = open_driver(mode, node_name=subtree)
    try:
        driver.setup()
        removed = driver.cleanup_stale()
    except CgroupError as exc:
        if config.isolation != "auto":
            raise FatalError(f"isolation {mode.value}: {exc}") from None
        log.warning("cgroups unusable; running steps without them", extra={"mode": mode.value, "error": str(exc)})
        return open_driver(Isolation.NONE, node_name=subtree)
    if removed:
        log.info("removed step cgroups left by an earlier run", extra={"count": removed})
    return driver


def main(argv: Sequence[str] | None = None) -> int:
    return daemon_main(argv, prog="agentflow noded", component="noded", load=NodedConfig.load, serve=serve)
