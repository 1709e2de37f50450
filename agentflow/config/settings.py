"""Daemon settings from flags, environment and a TOML file, in that order of precedence.

Every option has one name used three ways: `--metrics-listen` on the command line,
`AGENTFLOW_METRICS_LISTEN` in the environment and `metrics_listen` in the TOML file given by
`--config` (or `AGENTFLOW_CONFIG`). Values from any source go through the option's parser, so a
bad value gets the same precise error wherever it came from.
"""

from __future__ import annotations

import argparse
import os
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentflow.config.errors import ConfigError
from agentflow.spec.suggest import closest

ENV_PREFIX = "AGENTFLOW_"


@dataclass(frozen=True, slots=True, kw_only=True)
class Option:
    """One setting. `parse` turns a string (or a native TOML value) into the typed value."""

    name: str
    parse: Callable[[Any], Any]
    default: Any
    help: str
    metavar: str | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()


def load_settings(
    options: Sequence[Option],
    argv: Sequence[str] | None,
    *,
    prog: str,
    description: str,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Parse argv, the environment and the TOML file; return {option name: typed value}."""
    environ = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(prog=prog, description=description, allow_abbrev=False)
    parser.add_argument("--config", metavar="FILE", help=f"TOML file with these settings (env {ENV_PREFIX}CONFIG)")
    for opt in options:
        parser.add_argument(
            opt.flag,
            dest=opt.name,
            default=None,
            metavar=opt.metavar,
            help=f"{opt.help} (env {opt.env}; default {opt.default!s})",
        )
    args = parser.parse_args(argv)
    config_path = args.config or environ.get(ENV_PREFIX + "CONFIG")
    file_values = _read_toml(Path(config_path), options) if config_path else {}

    values: dict[str, Any] = {}
    for opt in options:
        flag_value = getattr(args, opt.name)
        if flag_value is not None:
            values[opt.name] = _parse(opt, flag_value, opt.flag)
        elif opt.env in environ:
            values[opt.name] = _parse(opt, environ[opt.env], opt.env)
        elif opt.name in file_values:
            values[opt.name] = _parse(opt, file_values[opt.name], f"{config_path}: {opt.name}")
        else:
            values[opt.name] = opt.default
    return values


def _parse(opt: Option, raw: Any, where: str) -> Any:
    try:
        return opt.parse(raw)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _read_toml(path: Path, options: Sequence[Option]) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    known = {o.name for o in options}
    for key in data:
        if key not in known:
            hint = closest(key, sorted(known))
            suffix = f' (did you mean "{hint}"?)' if hint else ""
            raise ConfigError(f'{path}: unknown key "{key}"{suffix}')
    return data
