"""Workflow YAML -> WorkflowSpec, reporting every problem of a document at once.

Paths in problems name the offending value the way a reader finds it in the YAML:
`agents[2].dependsOn[0]`, `agents[0].input.text`, `nodeSelector["kubernetes.io/arch"]`; problems
with the document as a whole have the path `(root)`.
"""

from __future__ import annotations

import json
import math
import pathlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

from agentflow.spec import duration, quantity, refs
from agentflow.spec.document import key_path, load_document
from agentflow.spec.errors import ROOT, InvalidWorkflow, Problem, kind_of
from agentflow.spec.graph import find_cycles
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
from agentflow.spec.suggest import did_you_mean
from agentflow.wasm_check import module_problem

MAX_AGENTS = 10_000
MAX_TIMEOUT = timedelta(hours=24)
MAX_BACKOFF = timedelta(hours=24)
MAX_ATTEMPTS = 100
MAX_TEMPERATURE = 2.0
MAX_TOKENS = 2**31 - 1
MAX_VERSION_LENGTH = 128

WORKFLOW_NAME_RE = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
AGENT_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_HOST_LABEL_RE = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")

TOP_FIELDS = ("apiVersion", "kind", "name", "version", "description", "budget", "agents")
BUDGET_FIELDS = ("usd", "tokens")
MAX_BUDGET_USD = 1_000_000.0
MAX_BUDGET_TOKENS = 10**12
AGENT_FIELDS = (
    "name",
    "module",
    "description",
    "dependsOn",
    "input",
    "resources",
    "timeout",
    "retry",
    "llm",
    "capabilities",
    "nodeSelector",
    "budget",
)
RESOURCES_FIELDS = ("cpu", "memory")
RETRY_FIELDS = ("maxAttempts", "backoff", "maxBackoff")
LLM_FIELDS = ("model", "provider", "temperature", "maxTokens")
CAPABILITIES_FIELDS = ("llm", "http", "network", "filesystem")  # network: another name for http
LLM_CAPABILITY_FIELDS = ("models",)
MAX_MODEL_NAME = 200
HTTP_FIELDS = ("allowedHosts",)
FILESYSTEM_FIELDS = ("allowedPaths", "writablePaths")
PATH_GRANT_FIELDS = ("path", "mode")
PATH_MODES = ("ro", "rw")

T = TypeVar("T")


def load_workflow(text: str, *, source: str, base_dir: pathlib.Path | None = None) -> WorkflowSpec:
    """Parse and validate a workflow YAML document.

    `source` names the document in problems (usually its file name). With `base_dir`, local
    module paths are resolved against it and must be WebAssembly files.
    Raises InvalidWorkflow listing every problem found.
    """
    doc = load_document(text)
    if not doc.readable:
        raise InvalidWorkflow(source, doc.problems)
    return _validate(doc.data, source=source, base_dir=base_dir, problems=doc.problems)


def parse_workflow_dict(data: Any, *, source: str, base_dir: pathlib.Path | None = None) -> WorkflowSpec:
    """Validate an already loaded workflow document (e.g. from JSON); see `load_workflow`."""
    return _validate(data, source=source, base_dir=base_dir, problems=[])


def _quoted(value: object) -> str:
    return json.dumps(value) if isinstance(value, str) else str(value)


@dataclass(slots=True)
class _Report:
    problems: list[Problem]

    def add(self, path: str, reason: str) -> None:
        self.problems.append(Problem(path or ROOT, reason))

    def fields(
        self, value: Any, path: str, allowed: Sequence[str], required: Sequence[str] = ()
    ) -> dict[str, Any] | None:
        """The known entries of a mapping; reports unknown keys and missing required ones."""
        if not isinstance(value, dict):
            self.add(path, f"must be a mapping, got {kind_of(value)}")
            return None
        known: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                self.add(path, f"field names must be strings, got {kind_of(key)} {key!r}")
            elif key not in allowed:
                self.add(key_path(path, key), "unknown field" + did_you_mean(key, allowed))
            else:
                known[key] = item
        for name in required:
            if name not in known and name not in value:
                self.add(key_path(path, name), "required field is missing")
        return known

    def string(self, fields: dict[str, Any], name: str, path: str, *, required: bool = False) -> str | None:
        """A string field; None when it is absent (or null and optional) or has the wrong type."""
        value = fields.get(name)
        if value is None and not required:
            return None
        if name not in fields:
            return None  # reported as missing by `fields`
        if not isinstance(value, str):
            self.add(key_path(path, name), f"must be a string, got {kind_of(value)}")
            return None
        return value

    def parsed(self, value: Any, path: str, parse: Callable[[Any], T]) -> T | None:
        try:
            return parse(value)
        except ValueError as exc:
            self.add(path, str(exc))
            return None


def _validate(data: Any, *, source: str, base_dir: pathlib.Path | None, problems: list[Problem]) -> WorkflowSpec:
    report = _Report(problems)
    spec = _workflow(data, report, base_dir)
    if report.problems or spec is None:
        raise InvalidWorkflow(source, report.problems)
    return spec


def _workflow(data: Any, report: _Report, base_dir: pathlib.Path | None) -> WorkflowSpec | None:
    top = report.fields(data, ROOT, TOP_FIELDS, required=("apiVersion", "kind", "name", "version", "agents"))
    if top is None:
        return None
    if "apiVersion" in top and top["apiVersion"] != API_VERSION:
        report.add("apiVersion", f'must be "{API_VERSION}", got {_shown(top["apiVersion"])}')
    if "kind" in top and top["kind"] != KIND:
        report.add("kind", f'must be "{KIND}", got {_shown(top["kind"])}')
    name = report.string(top, "name", "", required=True)
    if name is not None and not WORKFLOW_NAME_RE.fullmatch(name):
        report.add(
            "name",
            f"{_quoted(name)} is not a valid workflow name (lowercase letters, digits and '-', "
            "starting and ending with a letter or digit, at most 63 characters)",
        )
    version = _version(top, report)
    description = report.string(top, "description", "") or ""
    budget = _budget(top.get("budget"), "budget", report)
    agents = _agents(top["agents"], report, base_dir) if "agents" in top else None
    if name is None or version is None or agents is None or budget is False:
        return None
    return WorkflowSpec(name=name, version=version, agents=agents, description=description, budget=budget)


def _budget(value: Any, path: str, report: _Report) -> Budget | Literal[False] | None:
    """A budget, None when there is none, False when it has problems."""
    if value is None:
        return None
    fields = report.fields(value, path, BUDGET_FIELDS)
    if fields is None:
        return False
    if fields.get("usd") is None and fields.get("tokens") is None:
        report.add(path, "must set usd, tokens or both")
        return False
    usd: float | None = None
    if fields.get("usd") is not None:
        raw = fields["usd"]
        numeric = isinstance(raw, int | float) and not isinstance(raw, bool)
        if not numeric or not 0 <= raw <= MAX_BUDGET_USD:
            shown = raw if numeric else _shown(raw)
            report.add(f"{path}.usd", f"must be a number of dollars from 0 to {MAX_BUDGET_USD:.0f}, got {shown}")
            return False
        usd = float(raw)
    tokens: int | None = None
    if fields.get("tokens") is not None:
        tokens = _int_in(fields["tokens"], f"{path}.tokens", report, 0, MAX_BUDGET_TOKENS)
        if tokens is None:
            return False
    return Budget(usd=usd, tokens=tokens)


def _shown(value: Any) -> str:
    return json.dumps(value) if isinstance(value, str) else kind_of(value)


def _version(top: dict[str, Any], report: _Report) -> str | None:
    if "version" not in top:
        return None
    value = top["version"]
    if isinstance(value, int | float) and not isinstance(value, bool):
        report.add("version", f'must be a string (quote it: version: "{value}")')
        return None
    version = report.string(top, "version", "", required=True)
    if version is None:
        return None
    if not version.strip():
        report.add("version", "must not be empty")
        return None
    if len(version) > MAX_VERSION_LENGTH:
        report.add("version", f"must be at most {MAX_VERSION_LENGTH} characters, got {len(version)}")
        return None
    return version


@dataclass(slots=True)
class _Graph:
    """Agent names as declared, for resolving dependsOn and references, and the valid edges."""

    first: dict[str, int]  # name -> index of its first declaration (names that are strings)
    edges: dict[int, list[int]]  # index -> indexes of its known dependencies, in dependsOn order

    def index_of(self, name: str) -> int | None:
        return self.first.get(name)


def _agents(value: Any, report: _Report, base_dir: pathlib.Path | None) -> tuple[AgentSpec, ...] | None:
    if not isinstance(value, list):
        report.add("agents", f"must be a list of agents, got {kind_of(value)}")
        return None
    if not value:
        report.add("agents", "must list at least one agent")
        return None
    if len(value) > MAX_AGENTS:
        report.add("agents", f"has {len(value)} agents; at most {MAX_AGENTS} are allowed")

    graph = _Graph(first={}, edges={})
    for i, item in enumerate(value):
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            graph.first.setdefault(item["name"], i)

    agents = [_agent(item, i, report, graph, base_dir) for i, item in enumerate(value)]
    names = {index: name for name, index in graph.first.items()}
    for cycle in find_cycles(graph.edges):
        # `a -> b` reads "a depends on b".
        report.add("agents", "dependency cycle: " + " -> ".join(names[i] for i in cycle))
    if any(a is None for a in agents):
        return None
    return tuple(a for a in agents if a is not None)


def _agent(value: Any, index: int, report: _Report, graph: _Graph, base_dir: pathlib.Path | None) -> AgentSpec | None:
    path = f"agents[{index}]"
    fields = report.fields(value, path, AGENT_FIELDS, required=("name", "module"))
    if fields is None:
        return None
    name = report.string(fields, "name", path, required=True)
    if name is not None:
        if not AGENT_NAME_RE.fullmatch(name):
            report.add(
                f"{path}.name",
                f"{_quoted(name)} is not a valid agent name (lowercase letters, digits, '-' and '_', "
                "starting with a letter or digit, at most 63 characters)",
            )
        first = graph.first[name]
        if first != index:
            report.add(f"{path}.name", f'duplicate agent name "{name}" (first at agents[{first}])')
    module = _module(fields, path, report, base_dir)
    description = report.string(fields, "description", path) or ""
    depends_on = _depends_on(fields.get("dependsOn"), f"{path}.dependsOn", index, name, report, graph)
    declared = _declared_dependencies(fields.get("dependsOn"))
    input_mapping = _input(fields.get("input"), f"{path}.input", name, declared, report, graph)
    resources = _resources(fields.get("resources"), f"{path}.resources", report)
    timeout = _timeout(fields.get("timeout"), f"{path}.timeout", report)
    retry = _retry(fields.get("retry"), f"{path}.retry", report)
    llm = _llm(fields.get("llm"), f"{path}.llm", report)
    capabilities = _capabilities(fields.get("capabilities"), f"{path}.capabilities", report)
    node_selector = _node_selector(fields.get("nodeSelector"), f"{path}.nodeSelector", report)
    budget = _budget(fields.get("budget"), f"{path}.budget", report)
    if budget and capabilities is not None and not capabilities.llm:
        report.add(f"{path}.budget", "limits LLM calls, but the agent may make none (set capabilities.llm)")
    allow_list = capabilities.llm_models if capabilities is not None else ()
    if llm is not None and allow_list and llm.model not in allow_list:
        report.add(f"{path}.llm.model", f'"{llm.model}" is not among capabilities.llm.models ({", ".join(allow_list)})')
    if (
        name is None
        or module is None
        or depends_on is None
        or resources is None
        or timeout is None
        or retry is None
        or capabilities is None
        or node_selector is None
        or budget is False
    ):
        return None
    return AgentSpec(
        name=name,
        module=module,
        description=description,
        depends_on=depends_on,
        input=input_mapping,
        resources=resources,
        timeout=timeout,
        retry=retry,
        llm=llm,
        capabilities=capabilities,
        node_selector=node_selector,
        budget=budget,
    )


def _module(fields: dict[str, Any], path: str, report: _Report, base_dir: pathlib.Path | None) -> ModuleRef | None:
    text = report.string(fields, "module", path, required=True)
    if text is None:
        return None
    path = f"{path}.module"
    if text.startswith(DIGEST_PREFIX):
        if is_digest(text):
            return ModuleRef(digest=text)
        report.add(path, f'"{text}" is not a module digest (expected sha256: followed by 64 lowercase hex digits)')
        return None
    if not text.endswith(".wasm") or text == ".wasm" or text.endswith("/.wasm"):
        report.add(path, f"{_quoted(text)} is not a module (use a local path ending in .wasm or a sha256: digest)")
        return None
    if base_dir is not None:
        reason = _module_file_problem(text, base_dir)
        if reason is not None:
            report.add(path, reason)
            return None
    return ModuleRef(path=text)


def _module_file_problem(text: str, base_dir: pathlib.Path) -> str | None:
    file = pathlib.Path(text)
    if not file.is_absolute():
        file = base_dir / file
    try:
        if not file.exists():
            return f"module file {text} not found (looked for {file})"
        if not file.is_file():
            return f"module file {text} is not a file"
        data = file.read_bytes()
    except OSError as exc:
        return f"module file {text} cannot be read: {exc.strerror or exc}"
    problem = module_problem(data)
    return None if problem is None else f"module file {text} {problem}"


def _depends_on(
    value: Any, path: str, index: int, name: str | None, report: _Report, graph: _Graph
) -> tuple[str, ...] | None:
    if value is None:
        return ()
    if not isinstance(value, list):
        hint = f" (write dependsOn: [{value}])" if isinstance(value, str) else ""
        report.add(path, f"must be a list of strings, got {kind_of(value)}{hint}")
        return None
    deps: list[str] = []
    seen: dict[str, int] = {}
    edges: list[int] = []
    ok = True
    for j, dep in enumerate(value):
        where = f"{path}[{j}]"
        if not isinstance(dep, str):
            report.add(where, f"must be a string, got {kind_of(dep)}")
            ok = False
            continue
        if dep in seen:
            report.add(where, f'duplicate dependency "{dep}" (also at dependsOn[{seen[dep]}])')
            ok = False
            continue
        seen[dep] = j
        target = graph.index_of(dep)
        if target is None:
            report.add(where, f'unknown agent "{dep}"' + did_you_mean(dep, graph.first))
            ok = False
        elif dep == name:
            report.add(where, "an agent cannot depend on itself")
            ok = False
        else:
            edges.append(target)
        deps.append(dep)
    if name is not None and graph.first.get(name) == index:  # duplicates are reported, not linked
        graph.edges[index] = edges
    return tuple(deps) if ok else None


def _declared_dependencies(value: Any) -> set[str] | None:
    """The names in a dependsOn list even when it has problems; None when it is not a list."""
    if value is None:
        return set()
    if not isinstance(value, list):
        return None
    return {dep for dep in value if isinstance(dep, str)}


def _input(
    value: Any,
    path: str,
    name: str | None,
    depends_on: set[str] | None,
    report: _Report,
    graph: _Graph,
) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        report.add(path, f"must be a mapping, got {kind_of(value)}")
        return None
    if not _json_like(value, path, report):
        return value
    scan = refs.scan_references(value)
    for field, reason in scan.errors:
        report.add(_field(path, field), reason)
    for field, ref in scan.references:
        if ref.agent is None:
            continue
        where = _field(path, field)
        if ref.agent not in graph.first:
            hint = did_you_mean(ref.agent, graph.first)
            report.add(where, f'references unknown agent "{ref.agent}"{hint}')
        elif ref.agent == name:
            report.add(where, "references the output of its own agent")
        elif depends_on is not None and ref.agent not in depends_on:
            report.add(where, f'references upstream "{ref.agent}" which is not in dependsOn')
    return value


def _field(path: str, field: str) -> str:
    return f"{path}{field}" if field.startswith("[") else f"{path}.{field}"


def _json_like(value: Any, path: str, report: _Report) -> bool:
    """Report every value that has no JSON equivalent (non-string keys, dates, NaN, ...)."""
    ok = True
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        node, where = stack.pop()
        if isinstance(node, dict):
            children = []
            for key, item in node.items():
                if isinstance(key, str):
                    children.append((item, key_path(where, key)))
                else:
                    report.add(where, f"keys must be strings, got {kind_of(key)} {key!r} (quote it)")
                    ok = False
            stack.extend(reversed(children))
        elif isinstance(node, list):
            stack.extend(reversed([(item, f"{where}[{i}]") for i, item in enumerate(node)]))
        elif isinstance(node, float) and not math.isfinite(node):
            report.add(where, f"must be a finite number, got {node}")
            ok = False
        elif node is not None and not isinstance(node, str | int | float | bool):
            report.add(
                where,
                f"must be a JSON value (string, number, boolean, null, list or mapping), got {kind_of(node)}",
            )
            ok = False
    return ok


def _resources(value: Any, path: str, report: _Report) -> Resources | None:
    if value is None:
        return Resources()
    fields = report.fields(value, path, RESOURCES_FIELDS)
    if fields is None:
        return None
    defaults = Resources()
    cpu: int | None = defaults.cpu_millis
    memory: int | None = defaults.memory_bytes
    if fields.get("cpu") is not None:
        cpu = report.parsed(fields["cpu"], f"{path}.cpu", quantity.parse_cpu)
    if fields.get("memory") is not None:
        memory = report.parsed(fields["memory"], f"{path}.memory", quantity.parse_memory)
    if cpu is None or memory is None:
        return None
    return Resources(cpu_millis=cpu, memory_bytes=memory)


def _duration(value: Any, path: str, report: _Report, *, allow_zero: bool, limit: timedelta) -> timedelta | None:
    td = report.parsed(value, path, lambda v: duration.parse_duration(v, allow_zero=allow_zero))
    if td is not None and td > limit:
        report.add(path, f'must be at most {duration.format_duration(limit)}, got "{value}"')
        return None
    return td


def _timeout(value: Any, path: str, report: _Report) -> timedelta | None:
    if value is None:
        return DEFAULT_TIMEOUT
    return _duration(value, path, report, allow_zero=False, limit=MAX_TIMEOUT)


def _int_in(value: Any, path: str, report: _Report, low: int, high: int) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        report.add(path, f"must be an integer from {low} to {high}, got {_shown(value)}")
        return None
    if not low <= value <= high:
        report.add(path, f"must be an integer from {low} to {high}, got {value}")
        return None
    return value


def _retry(value: Any, path: str, report: _Report) -> RetryPolicy | None:
    if value is None:
        return RetryPolicy()
    fields = report.fields(value, path, RETRY_FIELDS)
    if fields is None:
        return None
    attempts: int | None = DEFAULT_MAX_ATTEMPTS
    backoff: timedelta | None = DEFAULT_BACKOFF
    if fields.get("maxAttempts") is not None:
        attempts = _int_in(fields["maxAttempts"], f"{path}.maxAttempts", report, 1, MAX_ATTEMPTS)
    if fields.get("backoff") is not None:
        backoff = _duration(fields["backoff"], f"{path}.backoff", report, allow_zero=True, limit=MAX_BACKOFF)
    if fields.get("maxBackoff") is not None:
        where = f"{path}.maxBackoff"
        max_backoff = _duration(fields["maxBackoff"], where, report, allow_zero=True, limit=MAX_BACKOFF)
        if max_backoff is not None and backoff is not None and max_backoff < backoff:
            report.add(
                where,
                f'must be at least backoff ({duration.format_duration(backoff)}), got "{fields["maxBackoff"]}"',
            )
            max_backoff = None
    else:
        # An explicit backoff above the default ceiling raises the ceiling with it.
        max_backoff = max(DEFAULT_MAX_BACKOFF, backoff) if backoff is not None else DEFAULT_MAX_BACKOFF
    if attempts is None or backoff is None or max_backoff is None:
        return None
    return RetryPolicy(max_attempts=attempts, backoff=backoff, max_backoff=max_backoff)


def _llm(value: Any, path: str, report: _Report) -> LLMConfig | None:
    if value is None:
        return None
    fields = report.fields(value, path, LLM_FIELDS, required=("model",))
    if fields is None:
        return None
    model = report.string(fields, "model", path, required=True)
    if model is not None and not model.strip():
        report.add(f"{path}.model", "must not be empty")
    provider = report.string(fields, "provider", path)
    temperature: float | None = None
    raw = fields.get("temperature")
    if raw is not None:
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            report.add(f"{path}.temperature", f"must be a number from 0 to 2, got {_shown(raw)}")
        elif not 0 <= raw <= MAX_TEMPERATURE:  # NaN fails this too
            report.add(f"{path}.temperature", f"must be a number from 0 to 2, got {raw}")
        else:
            temperature = float(raw)
    max_tokens: int | None = None
    if fields.get("maxTokens") is not None:
        max_tokens = _int_in(fields["maxTokens"], f"{path}.maxTokens", report, 1, MAX_TOKENS)
    if model is None:
        return None
    return LLMConfig(model=model, provider=provider, temperature=temperature, max_tokens=max_tokens)


def _capabilities(value: Any, path: str, report: _Report) -> Capabilities | None:
    if value is None:
        return Capabilities()
    fields = report.fields(value, path, CAPABILITIES_FIELDS)
    if fields is None:
        return None
    ok = True
    llm = False
    models: tuple[str, ...] | None = ()
    if fields.get("llm") is not None:
        if isinstance(fields["llm"], bool):
            llm = fields["llm"]
        elif isinstance(fields["llm"], dict):
            allowed = report.fields(fields["llm"], f"{path}.llm", LLM_CAPABILITY_FIELDS, required=("models",))
            llm, models = True, None
            if allowed is not None and "models" in allowed:
                where = f"{path}.llm.models"
                models = _string_list(allowed.get("models"), where, report, _model_problem, normalize=str.strip)
                if models == ():
                    report.add(where, "must name at least one model (or write llm: true for any model)")
                    models = None
        else:
            report.add(f"{path}.llm", f"must be true, false or {{models: [...]}}, got {_shown(fields['llm'])}")
            ok = False
    hosts: tuple[str, ...] | None = ()
    if fields.get("http") is not None and fields.get("network") is not None:
        report.add(f"{path}.network", "is another name for http: write one of them, not both")
        hosts = None
    elif (key := "http" if fields.get("http") is not None else "network") and fields.get(key) is not None:
        http = report.fields(fields[key], f"{path}.{key}", HTTP_FIELDS)
        hosts = None
        if http is not None:
            where = f"{path}.{key}.allowedHosts"
            hosts = _string_list(http.get("allowedHosts"), where, report, _host_problem, normalize=str.lower)
    paths = _filesystem(fields.get("filesystem"), f"{path}.filesystem", report)
    if not ok or models is None or hosts is None or paths is None:
        return None
    read_only, writable = paths
    return Capabilities(
        llm=llm, llm_models=models, http_allowed_hosts=hosts, allowed_paths=read_only, writable_paths=writable
    )


def _filesystem(value: Any, path: str, report: _Report) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """(read-only paths, read-write paths) from `[{path, mode}, ...]` (a bare string is `ro`) or
    from `{allowedPaths: [...], writablePaths: [...]}` (the stored form)."""
    if value is None:
        return (), ()
    if isinstance(value, dict):
        filesystem = report.fields(value, path, FILESYSTEM_FIELDS)
        if filesystem is None:
            return None
        paths = _string_list(filesystem.get("allowedPaths"), f"{path}.allowedPaths", report, _path_problem)
        rw = _string_list(filesystem.get("writablePaths"), f"{path}.writablePaths", report, _path_problem)
        if paths is None or rw is None:
            return None
        both = sorted(set(paths) & set(rw))
        if both:
            report.add(f"{path}.writablePaths", f'"{both[0]}" is also in allowedPaths (a path is ro or rw, not both)')
            return None
        return paths, rw
    if not isinstance(value, list):
        report.add(path, f"must be a list of {{path, mode: ro|rw}} entries, got {kind_of(value)}")
        return None
    read_only: list[str] = []
    writable: list[str] = []
    seen: dict[str, int] = {}
    ok = True
    for i, item in enumerate(value):
        where = f"{path}[{i}]"
        entry = {"path": item} if isinstance(item, str) else report.fields(item, where, PATH_GRANT_FIELDS, ("path",))
        if entry is None:
            ok = False
            continue
        text = report.string(entry, "path", where, required=True)
        mode = report.string(entry, "mode", where) or "ro"
        if text is None:
            ok = False
            continue
        reason = _path_problem(text)
        if reason is not None:
            report.add(f"{where}.path" if not isinstance(item, str) else where, reason)
            ok = False
            continue
        if mode not in PATH_MODES:
            report.add(f"{where}.mode", f'must be "ro" or "rw", got {_quoted(mode)}')
            ok = False
            continue
        text = text.rstrip("/") or "/"
        if text in seen:
            report.add(where, f'duplicate path "{text}" (also at filesystem[{seen[text]}])')
            ok = False
            continue
        if text == "/":
            report.add(where, "the whole filesystem cannot be granted; name the directories the agent needs")
            ok = False
            continue
        seen[text] = i
        (writable if mode == "rw" else read_only).append(text)
    return (tuple(read_only), tuple(writable)) if ok else None


def _string_list(
    value: Any,
    path: str,
    report: _Report,
    problem: Callable[[str], str | None],
    normalize: Callable[[str], str] = str,
) -> tuple[str, ...] | None:
    """A list of distinct strings that each pass `problem` (which returns a reason or None)."""
    if value is None:
        return ()
    if not isinstance(value, list):
        report.add(path, f"must be a list of strings, got {kind_of(value)}")
        return None
    out: list[str] = []
    seen: dict[str, int] = {}
    ok = True
    name = path.rsplit(".", 1)[-1]
    for i, item in enumerate(value):
        where = f"{path}[{i}]"
        if not isinstance(item, str):
            report.add(where, f"must be a string, got {kind_of(item)}")
            ok = False
            continue
        reason = problem(item)
        if reason is not None:
            report.add(where, reason)
            ok = False
            continue
        item = normalize(item)
        if item in seen:
            report.add(where, f'duplicate entry "{item}" (also at {name}[{seen[item]}])')
            ok = False
            continue
        seen[item] = i
        out.append(item)
    return tuple(out) if ok else None


def _model_problem(model: str) -> str | None:
    """Why a string is not a model name, or None when it is one."""
    if not model.strip():
        return "must not be empty"
    if len(model) > MAX_MODEL_NAME:
        return f"is longer than {MAX_MODEL_NAME} characters"
    if any(c.isspace() or not c.isprintable() for c in model.strip()):
        return f"{_quoted(model)} must not contain spaces or control characters"
    return None


def _host_problem(host: str) -> str | None:
    """Why a string is not a host name or `*.domain` wildcard (either with an optional `:port`),
    or None when it is one."""
    if "://" in host:
        bare = urlsplit(host).hostname
        use = f' (use "{bare}")' if bare else ""
        return f"{_quoted(host)} must be a host name without a scheme{use}"
    if "/" in host:
        return f'{_quoted(host)} must be a host name without a path (use "{host.split("/", 1)[0]}")'
    name, _, port = host.lower().partition(":")
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        return f"{_quoted(host)}: the port must be a number from 1 to 65535"
    if name.startswith("*."):
        name = name[2:]
    if "*" in name:
        return f'{_quoted(host)}: "*" is only allowed as the whole first label, e.g. "*.example.com"'
    labels = name.split(".")
    if len(name) > 253 or not all(_HOST_LABEL_RE.fullmatch(label) for label in labels):
        return f"{_quoted(host)} is not a host name (e.g. api.example.com or *.example.com)"
    return None


def _path_problem(text: str) -> str | None:
    if not text.startswith("/"):
        return f"{_quoted(text)} must be an absolute path"
    if ".." in text.split("/"):
        return f'{_quoted(text)} must not contain ".." segments'
    if "\0" in text:
        return f"{_quoted(text)} must not contain NUL characters"
    return None


def _node_selector(value: Any, path: str, report: _Report) -> dict[str, str] | None:
    if value is None:
        return {}
    if not isinstance(value, dict):
        report.add(path, f"must be a mapping of label names to values, got {kind_of(value)}")
        return None
    out: dict[str, str] = {}
    ok = True
    for key, item in value.items():
        if not isinstance(key, str) or not key:
            report.add(path, f"label names must be non-empty strings, got {_shown(key)}")
            ok = False
            continue
        where = key_path(path, key)
        if isinstance(item, str):
            out[key] = item
        elif isinstance(item, bool | int | float):
            text = json.dumps(item)
            report.add(where, f'must be a string, got {kind_of(item)} (quote it: "{text}")')
            ok = False
        else:
            report.add(where, f"must be a string, got {kind_of(item)}")
            ok = False
    return out if ok else None
