"""Settings of the node daemon."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from agentflow.config import NODE_ADMIN_SOCKET, ConfigError, Option, default_node_data_dir, load_settings, parsers
from agentflow.telemetry import LEVELS
from agentflow.telemetry.options import TELEMETRY_OPTIONS, trace_settings
from agentflow.telemetry.tracing import TraceSettings

DEFAULT_SERVER = "127.0.0.1:7070"
DEFAULT_METRICS_LISTEN = "127.0.0.1:9471"
DEFAULT_ROUTER = "127.0.0.1:4000"
DEFAULT_WARM_WORKERS = 2
DEFAULT_SHUTDOWN_GRACE = timedelta(seconds=10)

OPTIONS: tuple[Option, ...] = (
    Option(name="server", parse=parsers.address, default=DEFAULT_SERVER,
           help="control plane gRPC address", metavar="HOST:PORT"),
    Option(name="router", parse=parsers.address, default=DEFAULT_ROUTER,
           help="the host's LLM router, which answers the agents' llm.complete", metavar="HOST:PORT"),
    Option(name="data_dir", parse=parsers.path, default=default_node_data_dir(),
           help="directory of the node's identity, outbox, module cache and scratch space", metavar="DIR"),
    Option(name="name", parse=parsers.node_name, default=None,
           help="node name, unique in the cluster (default: the host name)"),
    Option(name="labels", parse=parsers.labels, default={},
           help="labels for nodeSelector, k=v,k2=v2", metavar="K=V,..."),
    Option(name="admin_socket", parse=parsers.path, default=None,
           help="unix socket of the local admin API (default: <data-dir>/noded.sock)", metavar="PATH"),
    Option(name="metrics_listen", parse=parsers.address, default=DEFAULT_METRICS_LISTEN,
           help="Prometheus /metrics address (port 0 picks a free port)", metavar="HOST:PORT"),
    Option(name="slots", parse=parsers.positive_int, default=None,
           help="most steps run at once, one worker process each (default: 2 per core, at least 4)"),
    Option(name="warm_workers", parse=parsers.positive_int, default=DEFAULT_WARM_WORKERS,
           help="idle worker processes kept started ahead"),
    Option(name="cpu", parse=parsers.optional_cpu, default=None,
           help="CPU offered to steps, e.g. 4 or 3500m (default: all cores)"),
    Option(name="memory", parse=parsers.optional_memory, default=None,
           help="memory offered to steps, e.g. 8Gi (default: 90%% of RAM)"),
    Option(name="isolation", parse=parsers.choice("auto", "cgroup2", "cgroup1", "none"), default="auto",
           help="how workers are confined"),
    Option(name="confinement", parse=parsers.choice("auto", "required", "off"), default="auto",
           help="worker network namespace, seccomp and Landlock: what the host allows, all or refuse to start, "
                "or none"),
    Option(name="shutdown_grace", parse=parsers.duration_or_zero, default=DEFAULT_SHUTDOWN_GRACE,
           help="on SIGTERM, how long running steps may take to finish (0s: stop them at once)",
           metavar="DURATION"),
    Option(name="tls_ca", parse=parsers.path, default=None,
           help="CA (PEM) of the control plane's certificate: TLS to it", metavar="FILE"),
    Option(name="tls_cert", parse=parsers.path, default=None,
           help="this node's certificate (PEM; agentflow certs issue --node NAME)", metavar="FILE"),
    Option(name="tls_key", parse=parsers.path, default=None, help="its private key (PEM)", metavar="FILE"),
    Option(name="join_token_file", parse=parsers.path, default=None,
           help="file holding the join token for a first registration (agentflow token create --role node)",
           metavar="FILE"),
    *TELEMETRY_OPTIONS,
    Option(name="log_level", parse=parsers.choice(*LEVELS), default="info", help="log level"),
)  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class NodedConfig:
    data_dir: Path
    server: str = DEFAULT_SERVER
    router: str = DEFAULT_ROUTER
    name: str = field(default_factory=parsers.default_node_name)
    labels: dict[str, str] = field(default_factory=dict)
    metrics_listen: str = DEFAULT_METRICS_LISTEN
    admin_socket: Path | None = None  # None: <data_dir>/noded.sock
    slots: int | None = None
    warm_workers: int = DEFAULT_WARM_WORKERS
    cpu: int | None = None
    memory: int | None = None
    isolation: str = "auto"
    confinement: str = "auto"
    shutdown_grace: timedelta = DEFAULT_SHUTDOWN_GRACE
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    join_token_file: Path | None = None
    otlp_endpoint: str = ""
    otlp_protocol: str = "grpc"
    trace_file: Path | None = None
    log_format: str = "auto"
    log_level: str = "info"

    def __post_init__(self) -> None:
        if self.slots is not None and self.warm_workers > self.slots:
            raise ConfigError(f"warm_workers ({self.warm_workers}) must not exceed slots ({self.slots})")

    @property
    def tracing(self) -> TraceSettings:
        return trace_settings(otlp_endpoint=self.otlp_endpoint, otlp_protocol=self.otlp_protocol,
                              trace_file=self.trace_file, data_dir=self.data_dir)  # fmt: skip

    @property
    def state_file(self) -> Path:
        return self.data_dir / "noded.json"

    @property
    def admin_socket_path(self) -> Path:
        return self.admin_socket or self.data_dir / NODE_ADMIN_SOCKET

    @classmethod
    def load(cls, argv: Sequence[str] | None, environ: Mapping[str, str] | None = None) -> NodedConfig:
        values: dict[str, Any] = load_settings(
            OPTIONS, argv, prog="agentflow noded", description="AgentFlow node daemon", environ=environ
        )
        if values["name"] is None:
            del values["name"]
        return cls(**values)
