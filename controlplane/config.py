"""Settings of the control plane daemon."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from agentflow.config import ConfigError, Option, default_data_home, load_settings, parsers
from agentflow.spec import parse_memory
from agentflow.telemetry import LEVELS
from agentflow.telemetry.options import TELEMETRY_OPTIONS, trace_settings
from agentflow.telemetry.tracing import TraceSettings

DEFAULT_LISTEN = "127.0.0.1:7070"
DEFAULT_METRICS_LISTEN = "127.0.0.1:9470"
DEFAULT_HEARTBEAT_INTERVAL = timedelta(seconds=2)
DEFAULT_NODE_TTL = timedelta(seconds=10)
DEFAULT_MAX_MODULE_BYTES = 64 * 1024 * 1024
DEFAULT_EVENTS_RETENTION = timedelta(days=7)

OPTIONS: tuple[Option, ...] = (
    Option(name="data_dir", parse=parsers.path, default=default_data_home() / "controlplane",
           help="directory of the state database and module blobs", metavar="DIR"),
    Option(name="listen", parse=parsers.address, default=DEFAULT_LISTEN,
           help="gRPC address (port 0 picks a free port)", metavar="HOST:PORT"),
    Option(name="metrics_listen", parse=parsers.address, default=DEFAULT_METRICS_LISTEN,
           help="Prometheus /metrics address", metavar="HOST:PORT"),
    Option(name="heartbeat_interval", parse=parsers.duration, default=DEFAULT_HEARTBEAT_INTERVAL,
           help="how often nodes must heartbeat", metavar="DURATION"),
    Option(name="node_ttl", parse=parsers.duration, default=DEFAULT_NODE_TTL,
           help="silence after which a node is down and its steps move", metavar="DURATION"),
    Option(name="max_module_size", parse=parse_memory, default=DEFAULT_MAX_MODULE_BYTES,
           help="largest module accepted by PushModule", metavar="BYTES"),
    Option(name="tls_ca", parse=parsers.path, default=None,
           help="CA (PEM) of the clients' certificates: mutual TLS, needed off loopback", metavar="FILE"),
    Option(name="tls_cert", parse=parsers.path, default=None,
           help="server certificate (PEM; agentflow certs issue --server)", metavar="FILE"),
    Option(name="tls_key", parse=parsers.path, default=None, help="its private key (PEM)", metavar="FILE"),
    Option(name="nats_url", parse=parsers.nats_url, default="",
           help="publish events to this NATS JetStream server (e.g. nats://127.0.0.1:4222)", metavar="URL"),
    Option(name="events_retention", parse=parsers.duration_or_zero, default=DEFAULT_EVENTS_RETENTION,
           help="keep events this long (0: forever); with --nats-url, only once published", metavar="DURATION"),
    *TELEMETRY_OPTIONS,
    Option(name="log_level", parse=parsers.choice(*LEVELS), default="info", help="log level"),
)  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class ControlPlaneConfig:
    data_dir: Path
    listen: str = DEFAULT_LISTEN
    metrics_listen: str = DEFAULT_METRICS_LISTEN
    heartbeat_interval: timedelta = DEFAULT_HEARTBEAT_INTERVAL
    node_ttl: timedelta = DEFAULT_NODE_TTL
    max_module_size: int = DEFAULT_MAX_MODULE_BYTES
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    nats_url: str = ""
    events_retention: timedelta = DEFAULT_EVENTS_RETENTION
    otlp_endpoint: str = ""
    otlp_protocol: str = "grpc"
    trace_file: Path | None = None
    log_format: str = "auto"
    log_level: str = "info"

    def __post_init__(self) -> None:
        if self.node_ttl <= self.heartbeat_interval:
            raise ConfigError(
                f"node_ttl ({self.node_ttl.total_seconds()}s) must be longer than "
                f"heartbeat_interval ({self.heartbeat_interval.total_seconds()}s)"
            )

    @property
    def tracing(self) -> TraceSettings:
        return trace_settings(otlp_endpoint=self.otlp_endpoint, otlp_protocol=self.otlp_protocol,
                              trace_file=self.trace_file, data_dir=self.data_dir)  # fmt: skip

    @property
    def state_file(self) -> Path:
        return self.data_dir / "controlplane.json"

    @classmethod
    def load(cls, argv: Sequence[str] | None, environ: Mapping[str, str] | None = None) -> ControlPlaneConfig:
        values: dict[str, Any] = load_settings(
            OPTIONS,
            argv,
            prog="agentflow controlplane",
            description="AgentFlow control plane",
            environ=environ,
        )
        return cls(**values)
