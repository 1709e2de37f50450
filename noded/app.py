"""The node daemon: worker pool + step runner + control-plane link + metrics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from importlib.metadata import PackageNotFoundError, version

import grpc
from prometheus_client import CollectorRegistry

from agentflow import wire
from agentflow.config import ConfigError
from agentflow.config.parsers import split_address
from agentflow.daemon import FatalError, daemon_main, stop_on_signals, write_state_file
from agentflow.telemetry import serve_metrics
from agentflow.transport import MESSAGE_SIZE_OPTIONS
from agentflow.v1 import types_pb2
from agentflow.vocabulary import Isolation
from noded import capacity, isolation
from noded.admin import NodeAdminServicer, NodeFacts, claim_socket, serve_admin
from noded.cgroups import CgroupDriver, CgroupError, node_subtree, open_driver
from noded.config import NodedConfig
from noded.drain import DrainState
from noded.link import ControlPlaneLink, Registration
from noded.metrics import NodeMetrics
from noded.modules import ModuleStore
from noded.runner import StepRunner
from noded.shutdown import wind_down
from noded.state import SqliteNodeState
from noded.workers import WorkerPool

log = logging.getLogger("noded")

CHANNEL_OPTIONS = (
    *MESSAGE_SIZE_OPTIONS,
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", 10_000),
)


def _version() -> str:
    try:
        return version("agentflow")
    except PackageNotFoundError:
        return "dev"


async def serve(config: NodedConfig, *, stop: asyncio.Event | None = None) -> None:
    stop = stop or asyncio.Event()
    force = asyncio.Event()  # a second signal: skip the rest of the grace period
    stop_on_signals(stop, again=force)
    data_dir = config.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    claim_socket(config.admin_socket_path)  # first: a second noded on this data dir stops here
    cgroups = _cgroup_driver(config)
    mode = cgroups.mode
    slots = config.slots or capacity.default_slots()
    offered = types_pb2.Resources(
        cpu_millis=config.cpu or capacity.host_cpu_millis(),
        memory_bytes=config.memory or capacity.host_memory_bytes(),
        slots=slots,
    )
    registry = CollectorRegistry()
    metrics = NodeMetrics(registry)
    drain = DrainState(metrics)
    async with contextlib.AsyncExitStack() as stack:
        stack.callback(cgroups.teardown)
        state = await SqliteNodeState.open(data_dir / "noded.db")
        stack.push_async_callback(state.close)
        channel = grpc.aio.insecure_channel(config.server, options=CHANNEL_OPTIONS)
        stack.push_async_callback(channel.close)
        pool = WorkerPool(data_dir / "compiled", warm=min(config.warm_workers, slots), max_workers=slots)
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
        )
        registration = Registration(
            name=config.name,
            labels=config.labels,
            capacity=offered,
            isolation=wire.to_pb(mode, types_pb2.Isolation),
            version=_version(),
        )
        link = ControlPlaneLink(
            channel,
            registration=registration,
            state=state,
            handlers=runner,
            on_connection=lambda up: metrics.connected.set(1 if up else 0),
        )
        await runner.load_outbox()
        saver = asyncio.create_task(runner.save_refused_results(), name="outbox-retry")
        stack.push_async_callback(_cancel, saver)
        stack.push_async_callback(pool.shutdown)
        await pool.start()
        stack.push_async_callback(runner.shutdown)
        try:
            metrics_port, stop_metrics = serve_metrics(registry, config.metrics_listen)
        except OSError as exc:
            raise FatalError(f"cannot serve metrics on {config.metrics_listen}: {exc.strerror}") from None
        stack.callback(stop_metrics)
        admin_socket = config.admin_socket_path
        admin = NodeAdminServicer(
            facts=NodeFacts(
                name=config.name,
                server=config.server,
                isolation=registration.isolation,
                slots=slots,
                version=registration.version,
            ),
            link=link,
            runner=runner,
            drain=drain,
            idle_workers=lambda: pool.idle_count,
        )
        admin_server = await serve_admin(admin, admin_socket)
        stack.callback(admin_socket.unlink, missing_ok=True)
        stack.push_async_callback(admin_server.stop, 0.5)
        # The link outlives `stop` by the grace period, so that results still reach the control plane.
        link_stop = asyncio.Event()
        link_task = asyncio.create_task(link.run(link_stop), name="control-plane-link")
        stack.push_async_callback(_finish, link_task)
        stack.callback(link_stop.set)  # runs before _finish: the link ends on it
        metrics_host, _ = split_address(config.metrics_listen)
        write_state_file(
            config.state_file,
            {"name": config.name, "server": config.server, "metrics": f"{metrics_host}:{metrics_port}",
             "isolation": mode.value, "slots": slots, "admin_socket": str(admin_socket)},
        )  # fmt: skip
        stack.callback(config.state_file.unlink, missing_ok=True)
        log.info(
            "node ready",
            extra={"node": config.name, "server": config.server, "isolation": mode.value, "slots": slots},
        )
        stopped = asyncio.ensure_future(stop.wait())
        await asyncio.wait({link_task, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if link_task.done() and not link_task.cancelled() and link_task.exception() is not None:
            raise link_task.exception()  # type: ignore[misc]
        log.info("node stopping")
        await wind_down(link, runner, grace=config.shutdown_grace, force=force)
    log.info("node stopped")


async def _finish(task: asyncio.Task[None]) -> None:
    """Let the link end on the stop event; cancel it if it does not within a moment."""
    try:
        await asyncio.wait_for(asyncio.shield(task), timeout=2)
    except (TimeoutError, Exception):
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


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
