"""Settings of the router: flags, `AGENTFLOW_*` environment and one TOML file (`--config`).

Scalars (`listen`, `data_dir`, `dev`, …) work as in the other daemons. The tables (`providers`,
`deployments`, `models`, `pricing`, `cache`, `breaker`, `retry`, `timeouts`, `budget`) come from
the TOML file, or from the environment as JSON (e.g. `AGENTFLOW_CACHE='{"ttl": "1h"}'`). With no
`providers` table, `OPENAI_API_KEY`/`OPENAI_BASE_URL` and `ANTHROPIC_API_KEY`/`ANTHROPIC_BASE_URL`
define them. API keys are read from a named environment variable (`api_key_env`) or a file
(`api_key_file`) and are held in a `Secret`, whose repr never shows them. The tables' types and
parsers live in `router.tables`.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentflow.config import ConfigError, Option, default_router_data_dir, load_settings, parsers
from agentflow.spec import parse_memory
from agentflow.spec.suggest import closest
from agentflow.telemetry import LEVELS
from agentflow.telemetry.options import TELEMETRY_OPTIONS, trace_settings
from agentflow.telemetry.tracing import TraceSettings
from router.tables import (
    BreakerConfig,
    BudgetConfig,
    CacheConfig,
    DeploymentConfig,
    ModelConfig,
    Price,
    ProviderConfig,
    ProviderTable,
    RetryConfig,
    Secret,
    TimeoutConfig,
    boolean,
    parse_breaker,
    parse_budget,
    parse_cache,
    parse_deployments,
    parse_models,
    parse_pricing,
    parse_providers,
    parse_retry,
    parse_timeouts,
)

DEFAULT_LISTEN = "127.0.0.1:4000"
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1"
DEFAULT_ANTHROPIC_BASE_URL = "https://api.anthropic.com"
DEV_PROVIDER = "dev"

NO_PROVIDER_HELP = (
    "no LLM provider is configured: set OPENAI_API_KEY (and OPENAI_BASE_URL for a compatible server) or "
    "ANTHROPIC_API_KEY, or give `--config router.toml` with a [providers.NAME] table, "
    "or start the router with --dev for the deterministic offline provider"
)


OPTIONS: tuple[Option, ...] = (
    Option(
        name="listen",
        parse=parsers.address,
        default=DEFAULT_LISTEN,
        help="HTTP address of the OpenAI/Anthropic-compatible API (port 0 picks a free port)",
        metavar="HOST:PORT",
    ),
    Option(
        name="allow_remote",
        parse=boolean,
        default=False,
        help="allow a listen address that is not loopback (the API has no authentication)",
        metavar="BOOL",
    ),
    Option(
        name="data_dir",
        parse=parsers.path,
        default=default_router_data_dir(),
        help="directory of the cache, replay journal and spend ledger (router.db)",
        metavar="DIR",
    ),
    Option(
        name="dev",
        parse=boolean,
        default=False,
        help="enable the deterministic offline `dev` provider (answers are labelled as dev)",
        metavar="BOOL",
    ),
    Option(
        name="max_body_size",
        parse=parse_memory,
        default=DEFAULT_MAX_BODY_BYTES,
        help="largest request body accepted",
        metavar="BYTES",
    ),
    Option(
        name="metrics_listen",
        parse=lambda v: parsers.address(v) if str(v).strip() else "",
        default="",
        help="also serve Prometheus /metrics on this address, apart from the API (it is always on the API port)",
        metavar="HOST:PORT",
    ),
    Option(name="providers", parse=parse_providers, default=(), help="provider tables (TOML, or JSON in env)"),
    Option(name="deployments", parse=parse_deployments, default=(), help="deployment tables"),
    Option(name="models", parse=parse_models, default=(), help="model names and their deployments"),
    Option(name="pricing", parse=parse_pricing, default={}, help="USD per 1M tokens by upstream model"),
    Option(name="cache", parse=parse_cache, default=CacheConfig(), help="exact cache settings"),
    Option(name="breaker", parse=parse_breaker, default=BreakerConfig(), help="circuit breaker settings"),
    Option(name="retry", parse=parse_retry, default=RetryConfig(), help="retry backoff settings"),
    Option(name="timeouts", parse=parse_timeouts, default=TimeoutConfig(), help="timeouts"),
    Option(name="budget", parse=parse_budget, default=BudgetConfig(), help="budget settings"),
    *TELEMETRY_OPTIONS,
    Option(name="log_level", parse=parsers.choice(*LEVELS), default="info", help="log level"),
)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _read_key(table: ProviderTable, environ: Mapping[str, str]) -> Secret | None:
    if table.api_key_env:
        value = environ.get(table.api_key_env, "").strip()
        if not value:
            raise ConfigError(
                f"providers.{table.name}.api_key_env: environment variable {table.api_key_env} is not set"
            )
        return Secret(value)
    if table.api_key_file:
        try:
            value = table.api_key_file.read_text().strip()
        except OSError as exc:
            raise ConfigError(
                f"providers.{table.name}.api_key_file: cannot read {table.api_key_file}: {exc.strerror}"
            ) from None
        if not value:
            raise ConfigError(f"providers.{table.name}.api_key_file: {table.api_key_file} is empty")
        return Secret(value)
    return None


def resolve_providers(tables: Sequence[ProviderTable], environ: Mapping[str, str]) -> tuple[ProviderConfig, ...]:
    out = []
    for t in tables:
        base = t.base_url or {"openai": DEFAULT_OPENAI_BASE_URL, "anthropic": DEFAULT_ANTHROPIC_BASE_URL}.get(
            t.kind, ""
        )
        out.append(
            ProviderConfig(
                name=t.name, kind=t.kind, base_url=base.rstrip("/"), api_key=_read_key(t, environ), models=t.models
            )
        )
    return tuple(out)


def providers_from_env(environ: Mapping[str, str]) -> tuple[ProviderConfig, ...]:
    """OPENAI_* and ANTHROPIC_* variables; Anthropic serves claude-*, OpenAI the rest (or all, if alone)."""
    out: list[ProviderConfig] = []
    anthropic_key = environ.get("ANTHROPIC_API_KEY", "").strip()
    openai_key = environ.get("OPENAI_API_KEY", "").strip()
    if anthropic_key:
        out.append(
            ProviderConfig(
                name="anthropic",
                kind="anthropic",
                api_key=Secret(anthropic_key),
                models=("claude*",) if openai_key else ("*",),
                base_url=(environ.get("ANTHROPIC_BASE_URL") or DEFAULT_ANTHROPIC_BASE_URL).rstrip("/"),
            )
        )
    if openai_key:
        out.append(
            ProviderConfig(
                name="openai",
                kind="openai",
                api_key=Secret(openai_key),
                models=("*",),
                base_url=(environ.get("OPENAI_BASE_URL") or DEFAULT_OPENAI_BASE_URL).rstrip("/"),
            )
        )
    return tuple(out)


@dataclass(frozen=True, slots=True, kw_only=True)
class RouterConfig:
    data_dir: Path
    listen: str = DEFAULT_LISTEN
    allow_remote: bool = False
    dev: bool = False
    max_body_size: int = DEFAULT_MAX_BODY_BYTES
    metrics_listen: str = ""  # "": /metrics only on the API port
    providers: tuple[ProviderConfig, ...] = ()
    deployments: tuple[DeploymentConfig, ...] = ()
    models: tuple[ModelConfig, ...] = ()
    pricing: dict[str, Price] = field(default_factory=dict)
    cache: CacheConfig = field(default_factory=CacheConfig)
    breaker: BreakerConfig = field(default_factory=BreakerConfig)
    retry: RetryConfig = field(default_factory=RetryConfig)
    timeouts: TimeoutConfig = field(default_factory=TimeoutConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    otlp_endpoint: str = ""
    otlp_protocol: str = "grpc"
    trace_file: Path | None = None
    log_format: str = "auto"
    log_level: str = "info"

    @property
    def tracing(self) -> TraceSettings:
        return trace_settings(otlp_endpoint=self.otlp_endpoint, otlp_protocol=self.otlp_protocol,
                              trace_file=self.trace_file, data_dir=self.data_dir)  # fmt: skip

    def __post_init__(self) -> None:
        host, _ = parsers.split_address(self.listen)
        if not self.allow_remote and not is_loopback(host):
            raise ConfigError(
                f"listen {self.listen}: not a loopback address; the router's API has no authentication, "
                "so give --allow-remote true to serve it beyond this host"
            )
        names = [p.name for p in self.providers]
        if self.dev and DEV_PROVIDER in names:
            raise ConfigError('providers.dev: the name "dev" is taken by the built-in dev provider')
        known = {*names, *([DEV_PROVIDER] if self.dev else [])}
        deployment_names = {d.name for d in self.deployments}
        for d in self.deployments:
            if d.provider not in known:
                hint = closest(d.provider, sorted(known))
                raise ConfigError(
                    f'deployments.{d.name}.provider: unknown provider "{d.provider}"'
                    + (f' (did you mean "{hint}"?)' if hint else "")
                )
        model_names = {m.name for m in self.models}
        for m in self.models:
            for dep in m.deployments:
                if dep not in deployment_names:
                    hint = closest(dep, sorted(deployment_names))
                    raise ConfigError(
                        f'models."{m.name}".deployments: unknown deployment "{dep}"'
                        + (f' (did you mean "{hint}"?)' if hint else "")
                    )
            for fb in m.fallbacks:
                if fb not in model_names and fb not in deployment_names:
                    raise ConfigError(f'models."{m.name}".fallbacks: "{fb}" is neither a model nor a deployment')

    @property
    def state_file(self) -> Path:
        return self.data_dir / "router.json"

    @property
    def database(self) -> Path:
        return self.data_dir / "router.db"

    @classmethod
    def load(cls, argv: Sequence[str] | None, environ: Mapping[str, str] | None = None) -> RouterConfig:
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = load_settings(
            OPTIONS, _bare_flags(argv), prog="agentflow router", description="AgentFlow LLM router", environ=environ
        )
        tables = values.pop("providers")
        values["providers"] = resolve_providers(tables, environ) if tables else providers_from_env(environ)
        return cls(**values)


BARE_FLAGS = ("--dev", "--allow-remote")


def _bare_flags(argv: Sequence[str] | None) -> list[str]:
    """`--dev` and `--allow-remote` alone mean `--dev true`; they also take an explicit value."""
    if argv is None:
        argv = sys.argv[1:]
    out: list[str] = []
    items = list(argv)
    for i, arg in enumerate(items):
        out.append(arg)
        if arg in BARE_FLAGS:
            following = items[i + 1] if i + 1 < len(items) else None
            if following is None or following.startswith("--"):
                out.append("true")
    return out


__all__ = [
    "DEV_PROVIDER",
    "NO_PROVIDER_HELP",
    "OPTIONS",
    "BreakerConfig",
    "BudgetConfig",
    "CacheConfig",
    "DeploymentConfig",
    "ModelConfig",
    "Price",
    "ProviderConfig",
    "RetryConfig",
    "RouterConfig",
    "Secret",
    "TimeoutConfig",
    "boolean",
    "is_loopback",
    "providers_from_env",
    "resolve_providers",
]
