"""The node's local admin API (NodeAdmin) on a unix socket: status, and drain through the node.

Only the socket's owner may connect (mode 0600): whoever can reach it acts on this node.
Reflection and grpc.health.v1 are on, as on the control plane, so `grpcurl -unix` works.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Protocol

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from agentflow import wire
from agentflow.clock import Clock, SystemClock, wait_for_future
from agentflow.daemon import FatalError
from agentflow.rpc import ErrorMappingInterceptor, StatusTable
from agentflow.v1 import node_admin_pb2, node_admin_pb2_grpc, types_pb2
from agentflow.vocabulary import Isolation, SandboxLayer
from noded.drain import DrainState
from noded.errors import NotConfirmed, NotConnected
from noded.link import ControlPlaneLink
from noded.messages import DrainRequest
from noded.runner import RunningStep

SERVICE = node_admin_pb2.DESCRIPTOR.services_by_name["NodeAdmin"].full_name
# The longest path a unix socket address holds (sun_path, less its terminating NUL).
MAX_SOCKET_PATH = 107
# How long Drain/Undrain wait for the control plane to confirm over the stream.
CONFIRM_TIMEOUT = timedelta(seconds=10)
STATUS_CODES: StatusTable = (
    (NotConnected, grpc.StatusCode.FAILED_PRECONDITION),
    (NotConfirmed, grpc.StatusCode.DEADLINE_EXCEEDED),
)


class RunnerStatus(Protocol):
    """What the status report reads from the step runner."""

    @property
    def unacked_count(self) -> int: ...

    def running_steps(self) -> list[RunningStep]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeFacts:
    """What does not change while the daemon runs."""

    name: str
    server: str
    isolation: Isolation
    slots: int
    version: str
    sandbox_layers: frozenset[SandboxLayer] = frozenset()


class NodeAdminServicer(node_admin_pb2_grpc.NodeAdminServicer):
    def __init__(
        self,
        *,
        facts: NodeFacts,
        link: ControlPlaneLink,
        runner: RunnerStatus,
        drain: DrainState,
        idle_workers: Callable[[], int],
        clock: Clock | None = None,
    ) -> None:
        self._clock = clock or SystemClock()
        self._facts = facts
        self._link = link
        self._runner = runner
        self._drain = drain
        self._idle_workers = idle_workers

    async def GetStatus(
        self, request: node_admin_pb2.GetNodeStatusRequest, context: grpc.aio.ServicerContext
    ) -> node_admin_pb2.NodeStatusReport:
        return self._report()

    async def Drain(
        self, request: node_admin_pb2.DrainSelfRequest, context: grpc.aio.ServicerContext
    ) -> node_admin_pb2.NodeStatusReport:
        deadline = wire.optional_duration(request, "deadline", field="deadline")
        await self._ask(DrainRequest(draining=True, deadline=deadline))
        return self._report()

    async def Undrain(
        self, request: node_admin_pb2.UndrainSelfRequest, context: grpc.aio.ServicerContext
    ) -> node_admin_pb2.NodeStatusReport:
        await self._ask(DrainRequest(draining=False))
        return self._report()

    async def _ask(self, request: DrainRequest) -> None:
        """Send the request up the stream and wait for the control plane's Drain answer."""
        seen = self._drain.updates
        if not self._link.connected.is_set() or not self._link.send(request):
            raise NotConnected(f"not connected to the control plane at {self._facts.server}; try again once connected")
        answered = asyncio.ensure_future(self._drain.next_update(seen))
        try:
            if not await wait_for_future(answered, CONFIRM_TIMEOUT, clock=self._clock):
                raise NotConfirmed(f"the control plane did not confirm within {CONFIRM_TIMEOUT.total_seconds():.0f}s")
        finally:
            answered.cancel()

    def _report(self) -> node_admin_pb2.NodeStatusReport:
        facts = self._facts
        report = node_admin_pb2.NodeStatusReport(
            name=facts.name,
            node_id=self._link.node_id or "",
            server=facts.server,
            connected=self._link.connected.is_set(),
            draining=self._drain.draining,
            isolation=wire.to_pb(facts.isolation, types_pb2.Isolation),
            slots=facts.slots,
            unacked_results=self._runner.unacked_count,
            idle_workers=self._idle_workers(),
            version=facts.version,
            sandbox_layers=[wire.to_pb(layer, types_pb2.SandboxLayer) for layer in sorted(facts.sandbox_layers)],
        )
        if self._drain.deadline is not None:
            report.drain_deadline.FromDatetime(self._drain.deadline)
        for step in self._runner.running_steps():
            since = Timestamp()
            since.FromDatetime(step.since)
            report.running.append(
                node_admin_pb2.RunningStep(
                    run_id=step.key.run_id,
                    step=step.key.step,
                    attempt=step.key.attempt,
                    workflow=step.workflow,
                    since=since,
                )
            )
        return report


async def serve_admin(servicer: NodeAdminServicer, path: Path) -> grpc.aio.Server:
    """Start the admin server on the unix socket `path` (owner-only; `claim_socket` it first)."""
    server = grpc.aio.server(interceptors=[ErrorMappingInterceptor(STATUS_CODES)])
    node_admin_pb2_grpc.add_NodeAdminServicer_to_server(servicer, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME), server
    )
    previous = os.umask(0o177)  # the socket is created owner-only, never briefly open to others
    try:
        if server.add_insecure_port(f"unix:{path}") == 0:
            raise FatalError(f"cannot serve the admin API on {path}")
        await server.start()
    finally:
        os.umask(previous)
    for name in ("", SERVICE):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return server


def claim_socket(path: Path) -> None:
    """Check the path fits a unix socket, and remove a socket file left by an earlier run;
    refuse one that another process serves (a second noded on the same data dir)."""
    if len(str(path)) > MAX_SOCKET_PATH:
        raise FatalError(
            f"admin socket path {path} is {len(str(path))} characters, longer than a unix socket allows "
            f"({MAX_SOCKET_PATH}); choose a shorter one with --admin-socket"
        )
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            return
    raise FatalError(f"{path} is served by another process (another noded on the same data dir?)")
