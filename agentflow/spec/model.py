"""Workflow spec v1: the domain types a validated workflow YAML turns into.

These never import protobuf or YAML; `agentflow.spec.parse` builds them and reports problems.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

API_VERSION = "agentflow/v1"
KIND = "Workflow"

DEFAULT_CPU_MILLIS = 100
DEFAULT_MEMORY_BYTES = 64 * 1024 * 1024
DEFAULT_TIMEOUT = timedelta(minutes=5)
DEFAULT_MAX_ATTEMPTS = 1
DEFAULT_BACKOFF = timedelta(seconds=1)
DEFAULT_MAX_BACKOFF = timedelta(minutes=5)

DIGEST_PREFIX = "sha256:"
_DIGEST_RE = re.compile(re.escape(DIGEST_PREFIX) + "[0-9a-f]{64}")


def is_digest(text: str) -> bool:
    """Whether `text` is a module digest: "sha256:" and 64 lowercase hex digits."""
    return _DIGEST_RE.fullmatch(text) is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class Resources:
    """What one step asks of a node."""

    cpu_millis: int = DEFAULT_CPU_MILLIS
    memory_bytes: int = DEFAULT_MEMORY_BYTES


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """Attempts count failures of the agent; backoff doubles per failure up to max_backoff."""

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    backoff: timedelta = DEFAULT_BACKOFF
    max_backoff: timedelta = DEFAULT_MAX_BACKOFF


@dataclass(frozen=True, slots=True, kw_only=True)
class LLMConfig:
    """Default model settings for the agent's llm.complete calls."""

    model: str
    provider: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Capabilities:
    """Host calls and paths the agent may use; `log` is always allowed."""

    llm: bool = False
    llm_models: tuple[str, ...] = ()  # with llm: the models the agent may ask for (empty: any)
    http_allowed_hosts: tuple[str, ...] = ()
    allowed_paths: tuple[str, ...] = ()  # preopened read-only, at the same path
    writable_paths: tuple[str, ...] = ()  # preopened read-write, at the same path


@dataclass(frozen=True, slots=True, kw_only=True)
class Budget:
    """What LLM calls may spend (a step's, across its attempts, or a whole run's); None: no limit."""

    usd: float | None = None
    tokens: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ModuleRef:
    """Either a local file (to be pushed) or the digest of a pushed module."""

    path: str | None = None  # as written in the YAML, relative to the workflow file
    digest: str | None = None  # "sha256:<64 hex>"

    @property
    def is_local(self) -> bool:
        return self.digest is None


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentSpec:
    name: str
    module: ModuleRef
    description: str = ""
    depends_on: tuple[str, ...] = ()
    # Keys -> literal JSON values or references like "${ upstream.fetch.text }"; None means
    # the step's input is the run input.
    input: dict[str, Any] | None = None
    resources: Resources = field(default_factory=Resources)
    timeout: timedelta = DEFAULT_TIMEOUT
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    llm: LLMConfig | None = None
    capabilities: Capabilities = field(default_factory=Capabilities)
    node_selector: dict[str, str] = field(default_factory=dict)
    budget: Budget | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowSpec:
    name: str
    version: str
    agents: tuple[AgentSpec, ...]
    description: str = ""
    budget: Budget | None = None  # for the LLM calls of a whole run
    # Indexes, so that handling one step's event never scans every agent.
    _by_name: dict[str, AgentSpec] = field(init=False, repr=False, compare=False)
    _dependents: dict[str, tuple[str, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {a.name: a for a in self.agents})
        dependents: dict[str, list[str]] = {a.name: [] for a in self.agents}
        for a in self.agents:
            for d in dict.fromkeys(a.depends_on):
                dependents.setdefault(d, []).append(a.name)
        object.__setattr__(self, "_dependents", {k: tuple(v) for k, v in dependents.items()})

    def agent(self, name: str) -> AgentSpec:
        return self._by_name[name]

    def dependents(self, name: str) -> tuple[str, ...]:
        """The agents that depend on `name` directly, in declaration order."""
        return self._dependents.get(name, ())
