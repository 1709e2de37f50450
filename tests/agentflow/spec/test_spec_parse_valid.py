import pathlib
import textwrap
from datetime import timedelta

import pytest
from wasm_modules import MINIMAL_AGENT

from agentflow.spec import (
    AgentSpec,
    Budget,
    Capabilities,
    LLMConfig,
    ModuleRef,
    Resources,
    RetryPolicy,
    WorkflowSpec,
    load_workflow,
    parse_workflow_dict,
    spec_to_dict,
)
from agentflow.spec.model import (
    DEFAULT_BACKOFF,
    DEFAULT_CPU_MILLIS,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_BACKOFF,
    DEFAULT_MEMORY_BYTES,
    DEFAULT_TIMEOUT,
)

pytestmark = pytest.mark.unit

DIGEST = "sha256:" + "ab" * 32

DIAMOND = textwrap.dedent(
    """\
    apiVersion: agentflow/v1
    kind: Workflow
    name: research-digest
    version: "1.2.0"
    description: Fetch, analyse two ways, then merge.
    agents:
      - name: fetch
        module: ./agents/fetch.wasm
        input:
          url: ${ input.url }
      - name: summarize
        module: ./agents/summarize.wasm
        dependsOn: [fetch]
        input:
          text: ${ upstream.fetch.text }
          style: bullet points
      - name: keywords
        module: sha256:abababababababababababababababababababababababababababababababab
        dependsOn: [fetch]
      - name: report
        module: /opt/agents/report.wasm
        dependsOn: [summarize, keywords]
        input:
          summary: ${upstream.summarize}
          tags: ${ upstream.keywords.tags }
          first: ${ upstream.keywords.tags[0] }
    """
)


def test_diamond_parses_in_declaration_order() -> None:
    spec = load_workflow(DIAMOND, source="diamond.yaml")
    assert isinstance(spec, WorkflowSpec)
    assert spec.name == "research-digest"
    assert spec.version == "1.2.0"
    assert spec.description == "Fetch, analyse two ways, then merge."
    assert [a.name for a in spec.agents] == ["fetch", "summarize", "keywords", "report"]
    assert [a.depends_on for a in spec.agents] == [(), ("fetch",), ("fetch",), ("summarize", "keywords")]
    assert spec.agent("fetch").module == ModuleRef(path="./agents/fetch.wasm")
    assert spec.agent("keywords").module == ModuleRef(digest=DIGEST)
    assert not spec.agent("keywords").module.is_local
    assert spec.agent("report").module == ModuleRef(path="/opt/agents/report.wasm")
    assert spec.agent("summarize").input == {"text": "${ upstream.fetch.text }", "style": "bullet points"}
    assert spec.agent("keywords").input is None
    assert spec.agent("report").input == {
        "summary": "${upstream.summarize}",
        "tags": "${ upstream.keywords.tags }",
        "first": "${ upstream.keywords.tags[0] }",
    }


def test_defaults_apply_to_omitted_fields() -> None:
    spec = load_workflow(DIAMOND, source="diamond.yaml")
    agent = spec.agent("fetch")
    assert agent.description == ""
    assert agent.resources == Resources(cpu_millis=DEFAULT_CPU_MILLIS, memory_bytes=DEFAULT_MEMORY_BYTES)
    assert agent.timeout == DEFAULT_TIMEOUT
    assert agent.retry == RetryPolicy(
        max_attempts=DEFAULT_MAX_ATTEMPTS, backoff=DEFAULT_BACKOFF, max_backoff=DEFAULT_MAX_BACKOFF
    )
    assert agent.llm is None
    assert agent.capabilities == Capabilities()
    assert agent.node_selector == {}


def test_fan_out_of_24_agents() -> None:
    workers = [f"w{i:02d}" for i in range(24)]
    lines = [
        "apiVersion: agentflow/v1",
        "kind: Workflow",
        "name: fan-out",
        "version: '1'",
        "agents:",
        "  - name: split",
        "    module: ./split.wasm",
    ]
    for w in workers:
        lines += [
            f"  - name: {w}",
            "    module: ./work.wasm",
            "    dependsOn: [split]",
            "    input:",
            f"      part: ${{ upstream.split.parts[{int(w[1:])}] }}",
        ]
    lines += ["  - name: merge", "    module: ./merge.wasm", f"    dependsOn: [{', '.join(workers)}]"]
    spec = load_workflow("\n".join(lines), source="fan-out.yaml")
    assert [a.name for a in spec.agents] == ["split", *workers, "merge"]
    assert spec.agent("merge").depends_on == tuple(workers)
    assert spec.agent("w17").input == {"part": "${ upstream.split.parts[17] }"}
    assert all(spec.agent(w).depends_on == ("split",) for w in workers)


def test_every_field() -> None:
    text = textwrap.dedent(
        """\
        apiVersion: agentflow/v1
        kind: Workflow
        name: full
        version: v2
        agents:
          - name: fetch
            module: agents/fetch.wasm
          - name: writer_1
            module: ./agents/writer.wasm
            description: Writes the answer.
            dependsOn: [fetch]
            input:
              question: ${ input.question }
              context: ["${ upstream.fetch.text }", literal, 3, null, true, 1.5]
              options: {depth: 2, tone: dry}
            resources: {cpu: 1.5, memory: 1Gi}
            timeout: 1h30m
            retry: {maxAttempts: 3, backoff: 500ms, maxBackoff: 1m}
            llm: {model: claude-small, provider: anthropic, temperature: 0.2, maxTokens: 2048}
            capabilities:
              llm: true
              http: {allowedHosts: [api.example.com, "*.wikipedia.org", API.Example.NET]}
              filesystem: {allowedPaths: [/data/corpus, /etc/ssl/certs]}
            nodeSelector: {gpu: "true", kubernetes.io/arch: amd64}
        """
    )
    spec = load_workflow(text, source="full.yaml")
    assert spec.agent("writer_1") == AgentSpec(
        name="writer_1",
        module=ModuleRef(path="./agents/writer.wasm"),
        description="Writes the answer.",
        depends_on=("fetch",),
        input={
            "question": "${ input.question }",
            "context": ["${ upstream.fetch.text }", "literal", 3, None, True, 1.5],
            "options": {"depth": 2, "tone": "dry"},
        },
        resources=Resources(cpu_millis=1500, memory_bytes=1024**3),
        timeout=timedelta(hours=1, minutes=30),
        retry=RetryPolicy(max_attempts=3, backoff=timedelta(milliseconds=500), max_backoff=timedelta(minutes=1)),
        llm=LLMConfig(model="claude-small", provider="anthropic", temperature=0.2, max_tokens=2048),
        capabilities=Capabilities(
            llm=True,
            http_allowed_hosts=("api.example.com", "*.wikipedia.org", "api.example.net"),
            allowed_paths=("/data/corpus", "/etc/ssl/certs"),
        ),
        node_selector={"gpu": "true", "kubernetes.io/arch": "amd64"},
    )


@pytest.mark.parametrize(
    ("fields", "attribute", "expected"),
    [
        pytest.param({"resources": {"cpu": 2}}, "resources", Resources(cpu_millis=2000), id="cpu-only"),
        pytest.param(
            {"resources": {"memory": "128Mi"}}, "resources", Resources(memory_bytes=128 * 2**20), id="memory-only"
        ),
        pytest.param({"resources": None}, "resources", Resources(), id="null-resources"),
        pytest.param({"retry": {"maxAttempts": 5}}, "retry", RetryPolicy(max_attempts=5), id="attempts-only"),
        pytest.param(
            {"retry": {"backoff": "10m"}},
            "retry",
            RetryPolicy(backoff=timedelta(minutes=10), max_backoff=timedelta(minutes=10)),
            id="backoff-raises-default-ceiling",
        ),
        pytest.param(
            {"retry": {"backoff": "0s", "maxBackoff": "0s"}},
            "retry",
            RetryPolicy(backoff=timedelta(0), max_backoff=timedelta(0)),
            id="immediate-retries",
        ),
        pytest.param({"timeout": "24h"}, "timeout", timedelta(hours=24), id="timeout-at-limit"),
        pytest.param({"llm": {"model": "m"}}, "llm", LLMConfig(model="m"), id="llm-model-only"),
        pytest.param(
            {"llm": {"model": "m", "temperature": 1}},
            "llm",
            LLMConfig(model="m", temperature=1.0),
            id="int-temperature",
        ),
        pytest.param({"capabilities": {"llm": True}}, "capabilities", Capabilities(llm=True), id="llm-capability"),
        pytest.param(
            {"capabilities": {"llm": True}, "budget": {"usd": 0.25, "tokens": 5000}},
            "budget",
            Budget(usd=0.25, tokens=5000),
            id="step-budget",
        ),
        pytest.param(
            {"capabilities": {"llm": {"models": ["dev", "gpt-4o-mini"]}}},
            "capabilities",
            Capabilities(llm=True, llm_models=("dev", "gpt-4o-mini")),
            id="llm-model-allow-list",
        ),
        pytest.param({"capabilities": {"http": None}}, "capabilities", Capabilities(), id="null-http"),
        pytest.param({"dependsOn": []}, "depends_on", (), id="empty-depends-on"),
        pytest.param({"dependsOn": None}, "depends_on", (), id="null-depends-on"),
        pytest.param({"input": {}}, "input", {}, id="empty-input"),
        pytest.param({"description": None}, "description", "", id="null-description"),
        pytest.param({"nodeSelector": {}}, "node_selector", {}, id="empty-node-selector"),
    ],
)
def test_optional_fields(fields: dict[str, object], attribute: str, expected: object) -> None:
    data = {
        "apiVersion": "agentflow/v1",
        "kind": "Workflow",
        "name": "w",
        "version": "1",
        "agents": [{"name": "solo", "module": "solo.wasm", **fields}],
    }
    spec = parse_workflow_dict(data, source="w.json")
    assert getattr(spec.agents[0], attribute) == expected


@pytest.mark.parametrize("name", ["a", "0", "fetch", "web-search", "step_2", "a" * 63, "9lives"], ids=lambda n: n[:12])
def test_valid_agent_names(name: str) -> None:
    data = {
        "apiVersion": "agentflow/v1",
        "kind": "Workflow",
        "name": "w",
        "version": "1",
        "agents": [{"name": name, "module": "m.wasm"}],
    }
    assert parse_workflow_dict(data, source="w").agents[0].name == name


@pytest.mark.parametrize("name", ["a", "a1", "my-flow", "x" * 63, "0-9"], ids=lambda n: n[:12])
def test_valid_workflow_names(name: str) -> None:
    data = {
        "apiVersion": "agentflow/v1",
        "kind": "Workflow",
        "name": name,
        "version": "1",
        "agents": [{"name": "a", "module": "m.wasm"}],
    }
    assert parse_workflow_dict(data, source="w").name == name


def test_yaml_dates_stay_strings() -> None:
    text = (
        "apiVersion: agentflow/v1\nkind: Workflow\nname: w\nversion: 2024-05-01\nagents: [{name: a, module: a.wasm}]\n"
    )
    assert load_workflow(text, source="w.yaml").version == "2024-05-01"


def test_anchors_and_merge_keys() -> None:
    text = textwrap.dedent(
        """\
        apiVersion: agentflow/v1
        kind: Workflow
        name: anchors
        version: "1"
        agents:
          - &base
            name: a
            module: ./a.wasm
            resources: {cpu: 250m, memory: 32Mi}
          - <<: *base
            name: b
            dependsOn: [a]
        """
    )
    spec = load_workflow(text, source="anchors.yaml")
    assert spec.agent("b").resources == Resources(cpu_millis=250, memory_bytes=32 * 2**20)
    assert spec.agent("b").module == ModuleRef(path="./a.wasm")
    assert spec.agent("b").depends_on == ("a",)


def test_spec_agent_lookup_raises_for_unknown_name() -> None:
    spec = load_workflow(DIAMOND, source="diamond.yaml")
    with pytest.raises(KeyError):
        spec.agent("nope")


def test_module_files_are_checked_when_base_dir_is_given(tmp_path: pathlib.Path) -> None:
    (tmp_path / "agents").mkdir()
    for name in ("fetch", "summarize"):
        (tmp_path / "agents" / f"{name}.wasm").write_bytes(MINIMAL_AGENT)
    report = tmp_path / "report.wasm"
    report.write_bytes(MINIMAL_AGENT)
    text = DIAMOND.replace("/opt/agents/report.wasm", str(report))
    spec = load_workflow(text, source="diamond.yaml", base_dir=tmp_path)
    assert spec.agent("report").module == ModuleRef(path=str(report))
    assert spec.agent("fetch").module == ModuleRef(path="./agents/fetch.wasm")


def test_module_files_are_not_checked_without_base_dir() -> None:
    spec = load_workflow(DIAMOND, source="diamond.yaml")
    assert spec.agent("fetch").module.is_local


def test_filesystem_grants_take_a_mode_and_round_trip() -> None:
    text = textwrap.dedent(
        """
        apiVersion: agentflow/v1
        kind: Workflow
        name: files
        version: "1"
        agents:
          - name: index
            module: ./index.wasm
            capabilities:
              filesystem:
                - /srv/corpus
                - {path: /srv/models/, mode: ro}
                - {path: /srv/out, mode: rw}
        """
    )
    spec = load_workflow(text, source="files.yaml")
    caps = spec.agent("index").capabilities
    assert caps.allowed_paths == ("/srv/corpus", "/srv/models") and caps.writable_paths == ("/srv/out",)
    assert parse_workflow_dict(spec_to_dict(spec), source="stored") == spec


def test_network_is_another_name_for_http() -> None:
    text = textwrap.dedent(
        """
        apiVersion: agentflow/v1
        kind: Workflow
        name: net
        version: "1"
        agents:
          - name: fetch
            module: sha256:0000000000000000000000000000000000000000000000000000000000000000
            capabilities: {network: {allowedHosts: [API.example.com:8443]}}
        """
    )
    agent = load_workflow(text, source="net.yaml").agent("fetch")
    assert agent.capabilities.http_allowed_hosts == ("api.example.com:8443",)
