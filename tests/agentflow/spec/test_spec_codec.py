import json
import textwrap
from datetime import timedelta
from typing import Any

import pytest

from agentflow.spec import (
    AgentSpec,
    Capabilities,
    InvalidWorkflow,
    LLMConfig,
    ModuleRef,
    Problem,
    Resources,
    RetryPolicy,
    SpecError,
    WorkflowSpec,
    load_workflow,
    parse_workflow_dict,
    resolve_modules,
    spec_from_dict,
    spec_to_dict,
    workflow_digest,
)
from agentflow.spec.codec import canonical_json

pytestmark = pytest.mark.unit

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64


def minimal(**fields: Any) -> WorkflowSpec:
    return WorkflowSpec(
        name="w", version="1", agents=(AgentSpec(name="a", module=ModuleRef(path="./a.wasm"), **fields),)
    )


SPECS = [
    pytest.param(minimal(), id="minimal"),
    pytest.param(
        WorkflowSpec(
            name="w",
            version="2024.1",
            description="desc",
            agents=(
                AgentSpec(name="fetch", module=ModuleRef(digest=D1), input={"url": "${ input.url }"}),
                AgentSpec(
                    name="report",
                    module=ModuleRef(path="/abs/report.wasm"),
                    description="writes",
                    depends_on=("fetch",),
                    input={"t": "${ upstream.fetch.items[0] }", "n": [1, 2.5, None, True, {"k": "v"}]},
                    resources=Resources(cpu_millis=1500, memory_bytes=3 * 2**30 // 2),
                    timeout=timedelta(hours=1, minutes=2, seconds=3, milliseconds=4),
                    retry=RetryPolicy(
                        max_attempts=7, backoff=timedelta(milliseconds=250), max_backoff=timedelta(seconds=90)
                    ),
                    llm=LLMConfig(model="m", provider="p", temperature=0.7, max_tokens=512),
                    capabilities=Capabilities(
                        llm=True, http_allowed_hosts=("a.example.com", "*.b.org"), allowed_paths=("/data",)
                    ),
                    node_selector={"gpu": "true", "kubernetes.io/arch": "arm64"},
                ),
            ),
        ),
        id="every-field",
    ),
    pytest.param(minimal(input={}), id="empty-input"),
    pytest.param(minimal(llm=LLMConfig(model="m")), id="llm-defaults"),
    pytest.param(minimal(resources=Resources(cpu_millis=1, memory_bytes=4097)), id="odd-quantities"),
    pytest.param(minimal(retry=RetryPolicy(backoff=timedelta(0), max_backoff=timedelta(0))), id="zero-backoff"),
    pytest.param(minimal(timeout=timedelta(microseconds=1500)), id="sub-millisecond-timeout"),
    pytest.param(minimal(description="ünïcode ✓"), id="unicode"),
]


@pytest.mark.parametrize("spec", SPECS)
def test_round_trip(spec: WorkflowSpec) -> None:
    data = spec_to_dict(spec)
    assert spec_from_dict(data) == spec
    assert spec_from_dict(json.loads(json.dumps(data))) == spec


@pytest.mark.parametrize("spec", SPECS)
def test_canonical_form_is_a_valid_workflow_document(spec: WorkflowSpec) -> None:
    assert parse_workflow_dict(spec_to_dict(spec), source="canonical") == spec


def test_canonical_form() -> None:
    spec = load_workflow(
        textwrap.dedent(
            """\
            apiVersion: agentflow/v1
            kind: Workflow
            name: demo
            version: "1"
            agents:
              - name: fetch
                module: ./fetch.wasm
                resources: {cpu: 0.5, memory: 1073741824}
                timeout: 90s
                llm: {model: m, temperature: 1}
            """
        ),
        source="demo.yaml",
    )
    assert spec_to_dict(spec) == {
        "apiVersion": "agentflow/v1",
        "kind": "Workflow",
        "name": "demo",
        "version": "1",
        "description": "",
        "agents": [
            {
                "name": "fetch",
                "module": "./fetch.wasm",
                "description": "",
                "dependsOn": [],
                "input": None,
                "resources": {"cpu": "500m", "memory": "1Gi"},
                "timeout": "1m30s",
                "retry": {"maxAttempts": 1, "backoff": "1s", "maxBackoff": "5m"},
                "llm": {"model": "m", "provider": None, "temperature": 1.0, "maxTokens": None},
                "capabilities": {"llm": False, "http": {"allowedHosts": []}, "filesystem": {"allowedPaths": []}},
                "nodeSelector": {},
            }
        ],
    }


def test_spec_to_dict_shares_nothing_with_the_spec() -> None:
    spec = minimal(input={"a": {"b": [1]}}, node_selector={"k": "v"})
    data = spec_to_dict(spec)
    data["agents"][0]["input"]["a"]["b"].append(2)
    data["agents"][0]["nodeSelector"]["k"] = "changed"
    assert spec.agents[0].input == {"a": {"b": [1]}}
    assert spec.agents[0].node_selector == {"k": "v"}


@pytest.mark.parametrize("module", [ModuleRef(), ModuleRef(path="a.wasm", digest=D1)], ids=["neither", "both"])
def test_spec_to_dict_needs_exactly_one_module_reference(module: ModuleRef) -> None:
    spec = WorkflowSpec(name="w", version="1", agents=(AgentSpec(name="a", module=module),))
    with pytest.raises(ValueError, match="exactly one of path or digest"):
        spec_to_dict(spec)


def test_spec_from_dict_fills_in_missing_fields_with_defaults() -> None:
    spec = spec_from_dict({"name": "w", "version": "1", "agents": [{"name": "a", "module": D1}]})
    assert spec == WorkflowSpec(name="w", version="1", agents=(AgentSpec(name="a", module=ModuleRef(digest=D1)),))


@pytest.mark.parametrize(
    "data",
    [
        pytest.param({"version": "1", "agents": []}, id="no-name"),
        pytest.param({"name": "w", "version": "1", "agents": [{"name": "a"}]}, id="no-module"),
        pytest.param({"name": "w", "version": "1", "agents": "nope"}, id="agents-string"),
        pytest.param(
            {"name": "w", "version": "1", "agents": [{"name": "a", "module": D1, "timeout": "soon"}]},
            id="bad-duration",
        ),
        pytest.param(
            {"name": "w", "version": "1", "agents": [{"name": "a", "module": D1, "resources": {"cpu": "x"}}]},
            id="bad-cpu",
        ),
    ],
)
def test_spec_from_dict_rejects_malformed_data(data: dict[str, Any]) -> None:
    with pytest.raises(SpecError, match="malformed stored workflow spec"):
        spec_from_dict(data)


def test_workflow_digest_is_stable_and_content_addressed() -> None:
    spec = minimal()
    digest = workflow_digest(spec)
    assert digest.startswith("sha256:")
    assert len(digest) == len("sha256:") + 64
    assert workflow_digest(spec_from_dict(spec_to_dict(spec))) == digest
    assert workflow_digest(minimal(timeout=timedelta(minutes=6))) != digest
    assert workflow_digest(minimal(input={"a": 1})) != workflow_digest(minimal(input={"a": 1.5}))


def test_workflow_digest_ignores_mapping_order() -> None:
    assert workflow_digest(minimal(input={"a": 1, "b": 2})) == workflow_digest(minimal(input={"b": 2, "a": 1}))


def test_canonical_json_is_compact_and_sorted() -> None:
    text = canonical_json(minimal())
    assert " " not in text
    assert text.startswith('{"agents":[{"capabilities":')
    assert json.loads(text) == spec_to_dict(minimal())


TWO_LOCAL = WorkflowSpec(
    name="w",
    version="1",
    agents=(
        AgentSpec(name="fetch", module=ModuleRef(path="./agents/fetch.wasm")),
        AgentSpec(name="keep", module=ModuleRef(digest=D2)),
        AgentSpec(name="again", module=ModuleRef(path="./agents/fetch.wasm"), depends_on=("fetch",)),
    ),
)


def test_resolve_modules_replaces_local_paths_by_digests() -> None:
    resolved = resolve_modules(TWO_LOCAL, {"./agents/fetch.wasm": D1, "./unused.wasm": D2})
    assert [a.module for a in resolved.agents] == [ModuleRef(digest=D1), ModuleRef(digest=D2), ModuleRef(digest=D1)]
    assert [a.name for a in resolved.agents] == ["fetch", "keep", "again"]
    assert resolved.agents[2].depends_on == ("fetch",)
    assert TWO_LOCAL.agents[0].module.is_local  # the original is untouched


def test_resolve_modules_reports_every_missing_upload() -> None:
    with pytest.raises(InvalidWorkflow) as info:
        resolve_modules(TWO_LOCAL, {"agents/fetch.wasm": D1})
    hint = "(push it with agentflow module push, or let agentflow run upload it)"
    assert info.value.source == "w"
    assert info.value.problems == (
        Problem("agents[0].module", f'local module "./agents/fetch.wasm" was not uploaded {hint}'),
        Problem("agents[2].module", f'local module "./agents/fetch.wasm" was not uploaded {hint}'),
    )


def test_resolve_modules_rejects_values_that_are_not_digests() -> None:
    with pytest.raises(InvalidWorkflow) as info:
        resolve_modules(TWO_LOCAL, {"./agents/fetch.wasm": "abc"}, source="flow.yaml")
    assert str(info.value).splitlines()[0] == (
        'flow.yaml: agents[0].module: local module "./agents/fetch.wasm" maps to "abc", which is not a digest'
    )


def test_resolve_modules_without_local_modules_is_identity() -> None:
    spec = WorkflowSpec(name="w", version="1", agents=(AgentSpec(name="a", module=ModuleRef(digest=D1)),))
    assert resolve_modules(spec, {}) == spec
