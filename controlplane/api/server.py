"""The control plane's gRPC server: both services, reflection and grpc.health.v1."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from agentflow.rpc.tracing import ServerTracingInterceptor
from agentflow.telemetry.tracing import Tracing
from agentflow.tls import ServerTLS
from agentflow.transport import MESSAGE_SIZE_OPTIONS
from agentflow.v1 import controlplane_pb2, controlplane_pb2_grpc, node_pb2, node_pb2_grpc
from controlplane.api.admin import ControlPlaneServicer
from controlplane.api.errors import error_mapping
from controlplane.api.gateway import NodeGatewayServicer
from controlplane.api.identity import AccessPolicy
from controlplane.engine import Engine

SERVICES = (
    controlplane_pb2.DESCRIPTOR.services_by_name["ControlPlane"].full_name,
    node_pb2.DESCRIPTOR.services_by_name["NodeGateway"].full_name,
)
GRPC_OPTIONS = (
    *MESSAGE_SIZE_OPTIONS,
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    # Without this a second control plane could bind the same port and split the traffic.
    ("grpc.so_reuseport", 0),
)


async def build_server(
    engine: Engine, listen: str, *, tls: ServerTLS | None = None, tracing: Tracing | None = None
) -> tuple[grpc.aio.Server, int, health.aio.HealthServicer]:
    """Create the server bound to `listen` (port 0 picks one); answer it and the bound port.
    With `tls`, mutual TLS, bearer tokens and `controlplane.api.identity`'s policy; with
    `tracing`, a server span per call (outermost, so that it sees the mapped status)."""
    guard = AccessPolicy(engine.tokens) if tls is not None else None
    interceptors: list[grpc.aio.ServerInterceptor] = [error_mapping(guard)]
    if tracing is not None:
        interceptors.insert(0, ServerTracingInterceptor(tracing))
    server = grpc.aio.server(interceptors=interceptors, options=GRPC_OPTIONS)
    controlplane_pb2_grpc.add_ControlPlaneServicer_to_server(ControlPlaneServicer(engine), server)
    node_pb2_grpc.add_NodeGatewayServicer_to_server(NodeGatewayServicer(engine, tls=tls is not None), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*SERVICES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
        server,
    )
    port = server.add_insecure_port(listen) if tls is None else server.add_secure_port(listen, tls.credentials())
    if port == 0:
        raise OSError(f"cannot listen on {listen}")
    for name in ("", *SERVICES):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return server, port, health_servicer
