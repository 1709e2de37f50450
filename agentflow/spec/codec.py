"""The canonical dict form of a WorkflowSpec, module resolution and the workflow digest.

The canonical form is itself a valid workflow document (YAML field names, every field present,
defaults spelled out): quantities and durations are canonical strings ("100m", "64Mi", "5m"),
absent optional sections are null. `spec_from_dict(spec_to_dict(s)) == s` for every spec whose
modules are either a path or a digest, and `parse_workflow_dict(spec_to_dict(s))` gives `s` back.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from agentflow.spec.duration import format_duration, parse_duration
from agentflow.spec.errors import InvalidWorkflow, Problem, SpecError
from agentflow.spec.model import (
    API_VERSION,
    DEFAULT_BACKOFF,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_BACKOFF,
    DEFAULT_TIMEOUT,
    DIGEST_PREFIX,
    KIND,
    AgentSpec,
    Budget,
    Capabilities,
    LLMConfig,
    ModuleRef,
    Resources,
    RetryPolicy,
    WorkflowSpec,
    is_digest,
)
from agentflow.spec.quantity import format_cpu, format_memory, parse_cpu, parse_memory

NOT_UPLOADED_HINT = "push it with agentflow module push, or let agentflow run upload it"


def spec_to_dict(spec: WorkflowSpec) -> dict[str, Any]:
    """The canonical, JSON-serializable form of a spec (a new object; nothing is shared)."""
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": spec.name,
        "version": spec.version,
        "description": spec.description,
        "agents": [_agent_to_dict(agent) for agent in spec.agents],
        # only when set, so that workflows without one keep their digests
        **({"budget": _budget_to_dict(spec.budget)} if spec.budget else {}),
    }


def _budget_to_dict(budget: Budget) -> dict[str, Any]:
    return {k: v for k, v in (("usd", budget.usd), ("tokens", budget.tokens)) if v is not None}


def _budget_from_dict(data: Any) -> Budget | None:
    if not data:
        return None
    return Budget(
        usd=None if data.get("usd") is None else float(data["usd"]),
        tokens=None if data.get("tokens") is None else int(data["tokens"]),
    )


def _agent_to_dict(agent: AgentSpec) -> dict[str, Any]:
    return {
        "name": agent.name,
        "module": _module_text(agent),
        "description": agent.description,
        "dependsOn": list(agent.depends_on),
        "input": copy.deepcopy(agent.input),
        "resources": {
            "cpu": format_cpu(agent.resources.cpu_millis),
            "memory": format_memory(agent.resources.memory_bytes),
        },
        "timeout": format_duration(agent.timeout),
        "retry": {
            "maxAttempts": agent.retry.max_attempts,
            "backoff": format_duration(agent.retry.backoff),
            "maxBackoff": format_duration(agent.retry.max_backoff),
        },
        "llm": None
        if agent.llm is None
        else {
            "model": agent.llm.model,
            "provider": agent.llm.provider,
            "temperature": agent.llm.temperature,
            "maxTokens": agent.llm.max_tokens,
        },
        "capabilities": {
            "llm": agent.capabilities.llm,
            # only when set, so that workflows without an allow-list keep their digests
            **({"llmModels": list(agent.capabilities.llm_models)} if agent.capabilities.llm_models else {}),
            "http": {"allowedHosts": list(agent.capabilities.http_allowed_hosts)},
            "filesystem": {
                "allowedPaths": list(agent.capabilities.allowed_paths),
                # only when set, so that workflows without one keep their digests
                **_if_set("writablePaths", list(agent.capabilities.writable_paths)),
            },
        },
        "nodeSelector": dict(agent.node_selector),
        **({"budget": _budget_to_dict(agent.budget)} if agent.budget else {}),
    }


def _module_text(agent: AgentSpec) -> str:
    module = agent.module
    if (module.path is None) == (module.digest is None):
        raise ValueError(f"agent {agent.name!r}: a module has exactly one of path or digest, got {module!r}")
    return module.digest if module.digest is not None else str(module.path)


def spec_from_dict(data: Mapping[str, Any]) -> WorkflowSpec:
    """A spec from its canonical form, as stored by `spec_to_dict`; fields it lacks take defaults.

    The input is trusted (it was validated before it was stored), so only its shape is checked;
    a malformed one raises SpecError.
    """
    try:
        return WorkflowSpec(
            name=data["name"],
            version=data["version"],
            description=data.get("description") or "",
            agents=tuple(_agent_from_dict(agent) for agent in data["agents"]),
            budget=_budget_from_dict(data.get("budget")),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise SpecError(f"malformed stored workflow spec: {type(exc).__name__}: {exc}") from exc


def _agent_from_dict(data: Mapping[str, Any]) -> AgentSpec:
    module: str = data["module"]
    resources = data.get("resources") or {}
    retry = data.get("retry") or {}
    llm = data.get("llm")
    capabilities = data.get("capabilities") or {}
    return AgentSpec(
        name=data["name"],
        module=ModuleRef(digest=module) if module.startswith(DIGEST_PREFIX) else ModuleRef(path=module),
        description=data.get("description") or "",
        depends_on=tuple(data.get("dependsOn") or ()),
        input=copy.deepcopy(data.get("input")),
        resources=Resources(
            cpu_millis=parse_cpu(resources["cpu"]) if "cpu" in resources else Resources().cpu_millis,
            memory_bytes=parse_memory(resources["memory"]) if "memory" in resources else Resources().memory_bytes,
        ),
        timeout=_duration(data.get("timeout"), DEFAULT_TIMEOUT),
        retry=RetryPolicy(
            max_attempts=int(retry.get("maxAttempts", DEFAULT_MAX_ATTEMPTS)),
            backoff=_duration(retry.get("backoff"), DEFAULT_BACKOFF),
            max_backoff=_duration(retry.get("maxBackoff"), DEFAULT_MAX_BACKOFF),
        ),
        llm=None
        if llm is None
        else LLMConfig(
            model=llm["model"],
            provider=llm.get("provider"),
            temperature=None if llm.get("temperature") is None else float(llm["temperature"]),
            max_tokens=None if llm.get("maxTokens") is None else int(llm["maxTokens"]),
        ),
        capabilities=Capabilities(
            llm=bool(capabilities.get("llm", False)),
            llm_models=tuple(capabilities.get("llmModels") or ()),
            http_allowed_hosts=tuple((capabilities.get("http") or {}).get("allowedHosts") or ()),
            allowed_paths=tuple((capabilities.get("filesystem") or {}).get("allowedPaths") or ()),
            writable_paths=tuple((capabilities.get("filesystem") or {}).get("writablePaths") or ()),
        ),
        node_selector=dict(data.get("nodeSelector") or {}),
        budget=_budget_from_dict(data.get("budget")),
    )


def _duration(text: str | None, default: timedelta) -> timedelta:
    return default if text is None else parse_duration(text, allow_zero=True)


def resolve_modules(spec: WorkflowSpec, digests: Mapping[str, str], *, source: str | None = None) -> WorkflowSpec:
    """The spec with every local module replaced by its digest from `digests` (path as written -> digest).

    Raises InvalidWorkflow (named `source`, by default the workflow's name) with one problem per
    agent whose local module is missing from `digests` or maps to something that is not a digest.
    """
    problems: list[Problem] = []
    agents: list[AgentSpec] = []
    for i, agent in enumerate(spec.agents):
        path = agent.module.path
        if agent.module.is_local and path is not None:
            digest = digests.get(path)
            where = f"agents[{i}].module"
            if digest is None:
                problems.append(Problem(where, f'local module "{path}" was not uploaded ({NOT_UPLOADED_HINT})'))
                continue
            if not is_digest(digest):
                problems.append(Problem(where, f'local module "{path}" maps to "{digest}", which is not a digest'))
                continue
            agent = dataclasses.replace(agent, module=ModuleRef(digest=digest))
        agents.append(agent)
    if problems:
        raise InvalidWorkflow(source if source is not None else spec.name, problems)
    return dataclasses.replace(spec, agents=tuple(agents))


def canonical_json(spec: WorkflowSpec) -> str:
    """The canonical form as compact JSON with sorted keys: the input of `workflow_digest`."""
    return json.dumps(spec_to_dict(spec), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def workflow_digest(spec: WorkflowSpec) -> str:
    """The sha256 of a spec's canonical JSON, as "sha256:<64 hex>": equal specs, equal digests."""
    return DIGEST_PREFIX + hashlib.sha256(canonical_json(spec).encode("utf-8")).hexdigest()


def _if_set(key: str, value: list[str]) -> dict[str, list[str]]:
    return {key: value} if value else {}
