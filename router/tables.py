"""The router's setting tables as typed values: providers, deployments, models, prices, cache,
breaker, retry, timeouts and budget, and the parsers that read them from TOML (or JSON in env)."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from datetime import timedelta
from pathlib import Path
from typing import Any

from agentflow.config import parsers
from agentflow.spec import parse_memory
from agentflow.spec.suggest import closest

PROVIDER_KINDS = ("openai", "anthropic", "dev")


class Secret:
    """An API key. Its repr and str never show it; `reveal()` does, for the one header that needs it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret(***)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderConfig:
    name: str
    kind: str  # openai | anthropic | dev
    base_url: str = ""
    api_key: Secret | None = None
    models: tuple[str, ...] = ()  # glob patterns served with the model name passed through


@dataclass(frozen=True, slots=True, kw_only=True)
class DeploymentConfig:
    """One model at one provider, with its own limits, breaker and connection pool."""

    name: str
    provider: str
    model: str  # the model name upstream
    rpm: int | None = None
    tpm: int | None = None
    timeout: timedelta | None = None  # None: timeouts.request
    max_retries: int = 2


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelConfig:
    """A name clients ask for: its deployments in order, then other models to fall back to."""

    name: str
    deployments: tuple[str, ...]
    fallbacks: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Price:
    """USD per 1M tokens."""

    input: float = 0.0
    cached_input: float | None = None  # None: same as input
    output: float = 0.0

    def cost(self, *, input_tokens: int, cached_input_tokens: int, output_tokens: int) -> float:
        cached = self.input if self.cached_input is None else self.cached_input
        fresh = max(0, input_tokens - cached_input_tokens)
        return (fresh * self.input + cached_input_tokens * cached + output_tokens * self.output) / 1_000_000


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheConfig:
    enabled: bool = True
    ttl: timedelta = timedelta(hours=24)
    max_size: int = 256 * 1024 * 1024  # bytes on disk
    memory_size: int = 32 * 1024 * 1024  # bytes of answers also held in memory
    nondeterministic: bool = False  # also cache calls with temperature > 0 (or unset) and no seed


@dataclass(frozen=True, slots=True, kw_only=True)
class BreakerConfig:
    failures: int = 5  # consecutive failures that open a deployment's breaker
    cooldown: timedelta = timedelta(seconds=30)


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryConfig:
    base: timedelta = timedelta(milliseconds=200)
    cap: timedelta = timedelta(seconds=10)
    max_wait: timedelta = timedelta(seconds=30)  # a longer Retry-After moves on to the fallback


@dataclass(frozen=True, slots=True, kw_only=True)
class TimeoutConfig:
    connect: timedelta = timedelta(seconds=5)
    request: timedelta = timedelta(seconds=600)  # one upstream call, unless its deployment says otherwise
    total: timedelta = timedelta(seconds=900)  # one client call, retries and fallbacks included


@dataclass(frozen=True, slots=True, kw_only=True)
class BudgetConfig:
    thresholds: tuple[float, ...] = (0.5, 0.8, 1.0)  # fractions of a grant reported as cost.threshold_met
    default_max_tokens: int = 4096  # output tokens reserved for a call that names no max_tokens


def _table(name: str, value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ValueError(f"{name} from the environment must be a JSON object: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{name} must be a table")
    return value


def boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f'must be true or false, got "{value}"')


def _fields_of(cls: Any, table: dict[str, Any], where: str, parse: dict[str, Any]) -> Any:
    known = [f.name for f in fields(cls)]
    values: dict[str, Any] = {}
    for key, raw in table.items():
        if key not in parse:
            hint = closest(key, known)
            raise ValueError(f'{where}: unknown key "{key}"' + (f' (did you mean "{hint}"?)' if hint else ""))
        try:
            values[key] = parse[key](raw)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{where}.{key}: {exc}") from None
    return cls(**values)


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"must be a number, got {value!r}")
    number = float(value)
    if number < 0:
        raise ValueError(f"must not be negative, got {number:g}")
    return number


def _int_at_least(low: int) -> Any:
    def parse(value: Any) -> int:
        if isinstance(value, bool):
            raise ValueError(f"must be an integer, got {value!r}")
        number = int(str(value))
        if number < low:
            raise ValueError(f"must be at least {low}, got {number}")
        return number

    return parse


def _names(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError("must be a list of names")
    return tuple(value)


def _fraction_list(value: Any) -> tuple[float, ...]:
    if not isinstance(value, list):
        raise ValueError("must be a list of fractions, e.g. [0.5, 0.8, 1.0]")
    out = tuple(sorted(_number(v) for v in value))
    if any(not 0 < v <= 10 for v in out):
        raise ValueError("fractions must lie in (0, 10]")
    return out


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a string, got {value!r}")
    return value


def parse_cache(value: Any) -> CacheConfig:
    return _fields_of(
        CacheConfig,
        _table("cache", value),
        "cache",
        {
            "enabled": boolean,
            "ttl": parsers.duration,
            "max_size": parse_memory,
            "memory_size": parse_memory,
            "nondeterministic": boolean,
        },
    )


def parse_breaker(value: Any) -> BreakerConfig:
    return _fields_of(
        BreakerConfig, _table("breaker", value), "breaker", {"failures": _int_at_least(1), "cooldown": parsers.duration}
    )


def parse_retry(value: Any) -> RetryConfig:
    return _fields_of(
        RetryConfig,
        _table("retry", value),
        "retry",
        {
            "base": parsers.duration_or_zero,
            "cap": parsers.duration_or_zero,
            "max_wait": parsers.duration_or_zero,
        },
    )


def parse_timeouts(value: Any) -> TimeoutConfig:
    return _fields_of(
        TimeoutConfig,
        _table("timeouts", value),
        "timeouts",
        {"connect": parsers.duration, "request": parsers.duration, "total": parsers.duration},
    )


def parse_budget(value: Any) -> BudgetConfig:
    return _fields_of(
        BudgetConfig,
        _table("budget", value),
        "budget",
        {"thresholds": _fraction_list, "default_max_tokens": _int_at_least(1)},
    )


def parse_pricing(value: Any) -> dict[str, Price]:
    table = _table("pricing", value)
    out = {}
    for model, entry in table.items():
        if not isinstance(entry, dict):
            raise ValueError(f'pricing."{model}" must be a table with input, cached_input, output')
        out[model] = _fields_of(
            Price, entry, f'pricing."{model}"', {"input": _number, "cached_input": _number, "output": _number}
        )
    return out


def parse_deployments(value: Any) -> tuple[DeploymentConfig, ...]:
    out = []
    for name, entry in _table("deployments", value).items():
        where = f"deployments.{name}"
        if not isinstance(entry, dict):
            raise ValueError(f"{where} must be a table")
        for required in ("provider", "model"):
            if required not in entry:
                raise ValueError(f"{where}: {required} is required")
        out.append(
            _fields_of(
                DeploymentConfig,
                {"name": name, **entry},
                where,
                {
                    "name": _string,
                    "provider": _string,
                    "model": _string,
                    "rpm": _int_at_least(1),
                    "tpm": _int_at_least(1),
                    "timeout": parsers.duration,
                    "max_retries": _int_at_least(0),
                },
            )
        )
    return tuple(out)


def parse_models(value: Any) -> tuple[ModelConfig, ...]:
    out = []
    for name, entry in _table("models", value).items():
        where = f'models."{name}"'
        if isinstance(entry, str | list):
            entry = {"deployments": entry}
        if not isinstance(entry, dict) or "deployments" not in entry:
            raise ValueError(f'{where} must name its deployments, e.g. {where} = ["dep-a", "dep-b"]')
        out.append(
            _fields_of(
                ModelConfig,
                {"name": name, **entry},
                where,
                {"name": _string, "deployments": _names, "fallbacks": _names},
            )
        )
    return tuple(out)


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderTable:
    """A [providers.NAME] table as written; `router.config.resolve_providers` reads its key."""

    name: str
    kind: str
    base_url: str = ""
    api_key_env: str | None = None
    api_key_file: Path | None = None
    models: tuple[str, ...] = ()


def parse_providers(value: Any) -> tuple[ProviderTable, ...]:
    out = []
    for name, entry in _table("providers", value).items():
        where = f"providers.{name}"
        if not isinstance(entry, dict):
            raise ValueError(f"{where} must be a table")
        if "api_key" in entry:
            raise ValueError(f"{where}: write api_key_env (a variable name) or api_key_file, not the key itself")
        entry = {"kind": name if name in PROVIDER_KINDS else "", **entry}
        table = _fields_of(
            ProviderTable,
            {"name": name, **entry},
            where,
            {
                "name": _string,
                "kind": parsers.choice(*PROVIDER_KINDS),
                "base_url": _string,
                "api_key_env": _string,
                "api_key_file": parsers.path,
                "models": _names,
            },
        )
        out.append(table)
    return tuple(out)
