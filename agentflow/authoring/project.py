"""An agent directory: its `agent.toml` (name, language, build recipe), read with precise errors.

For example:

[agent]
name = "hello"
language = "c"

[build]               # the language's own keys (see languages.py)
sources = ["hello.c"]
output = "build/hello.wasm"
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from agentflow.authoring.errors import UsageError
from agentflow.spec.parse import WORKFLOW_NAME_RE
from agentflow.spec.suggest import did_you_mean

AGENT_FILE = "agent.toml"
_AGENT_KEYS = ("name", "language")
_TABLES = ("agent", "build")


def name_problem(name: str) -> str | None:
    """Why `name` cannot name an agent, or None. It names the directory, the module, the
    workflow and its step, so it follows the workflow-name rule."""
    if WORKFLOW_NAME_RE.fullmatch(name):
        return None
    return (
        f"{name!r} is not a valid agent name: use lowercase letters, digits and '-', starting and "
        "ending with a letter or digit, at most 63 characters (it names the directory, the module "
        "and the workflow), e.g. hello-agent"
    )


@dataclass(frozen=True, slots=True)
class AgentProject:
    dir: Path
    name: str
    language: str
    build: Mapping[str, Any]
    """The [build] table, checked by the language's build function."""

    @property
    def manifest(self) -> Path:
        return self.dir / AGENT_FILE

    def problem(self, field: str, why: str) -> UsageError:
        return UsageError(f"{self.manifest}: {field}: {why}")

    def relative_path(self, key: str, value: object, *, field: str | None = None) -> PurePosixPath:
        """`value` as a path inside the agent directory (relative, no `..`)."""
        where = field or f"build.{key}"
        if not isinstance(value, str) or not value:
            raise self.problem(where, "must be a non-empty string (a path relative to the agent directory)")
        path = PurePosixPath(value)
        if path.is_absolute() or ".." in path.parts:
            raise self.problem(where, f"{value!r} must be relative to the agent directory, without '..'")
        return path

    def existing_file(self, key: str, value: object, *, field: str | None = None) -> Path:
        rel = self.relative_path(key, value, field=field)
        path = self.dir / rel
        if not path.is_file():
            raise self.problem(field or f"build.{key}", f"{rel} not found in {self.dir}")
        return path

    def string_list(self, key: str, default: list[str]) -> list[str]:
        value = self.build.get(key, default)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.problem(f"build.{key}", "must be a list of strings")
        return list(value)

    def output(self) -> Path:
        """The module the build writes: build.output, default build/<name>.wasm."""
        rel = self.relative_path("output", self.build.get("output", f"build/{self.name}.wasm"))
        if rel.suffix != ".wasm":
            raise self.problem("build.output", f"{str(rel)!r} must end in .wasm")
        return self.dir / rel

    def check_build_keys(self, known: frozenset[str]) -> None:
        for key in self.build:
            if key not in known:
                raise self.problem(
                    f"build.{key}",
                    f"unknown field for a {self.language} agent{did_you_mean(key, known)}; known: "
                    + ", ".join(sorted(known)),
                )


def load_project(directory: Path) -> AgentProject:
    """Reads `directory/agent.toml`. The language name is not checked here (see languages.py).
    The project's `dir` is absolute: the build runs its tools from there."""
    directory = Path(os.path.abspath(directory))
    manifest = directory / AGENT_FILE
    if not directory.is_dir():
        raise UsageError(f"{directory}: no such directory")
    try:
        text = manifest.read_text()
    except FileNotFoundError:
        raise UsageError(
            f"{directory}: no {AGENT_FILE} here, so it is not an agent directory "
            "(make one with: agentflow agent new NAME --lang LANGUAGE)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{manifest}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{manifest}: not valid TOML: {exc}") from None
    for key, value in data.items():
        if key not in _TABLES:
            raise UsageError(f"{manifest}: {key}: unknown table{did_you_mean(key, _TABLES)}; known: agent, build")
        if not isinstance(value, dict):
            raise UsageError(f"{manifest}: {key}: must be a table ([{key}])")
    agent = data.get("agent")
    if agent is None:
        raise UsageError(f"{manifest}: agent: missing [agent] table (with name and language)")
    for key in agent:
        if key not in _AGENT_KEYS:
            raise UsageError(f"{manifest}: agent.{key}: unknown field{did_you_mean(key, _AGENT_KEYS)}")
    values: dict[str, str] = {}
    for key in _AGENT_KEYS:
        value = agent.get(key)
        if not isinstance(value, str) or not value:
            what = "missing" if value is None else "must be a non-empty string"
            raise UsageError(f"{manifest}: agent.{key}: {what}")
        values[key] = value
    problem = name_problem(values["name"])
    if problem is not None:
        raise UsageError(f"{manifest}: agent.name: {problem}")
    return AgentProject(dir=directory, name=values["name"], language=values["language"], build=data.get("build", {}))
