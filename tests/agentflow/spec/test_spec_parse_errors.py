"""Every kind of bad workflow: the problem's exact path and the gist of its reason."""

from typing import Any

import pytest

from agentflow.spec import InvalidWorkflow, Problem, parse_workflow_dict

pytestmark = pytest.mark.unit

DROP = object()  # removes a field from the otherwise valid document
DIGEST = "sha256:" + "0" * 64


def agent(name: Any, /, **fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"name": name, "module": f"./agents/{name}.wasm"}
    for key, value in fields.items():
        if value is DROP:
            data.pop(key)
        else:
            data[key] = value
    return data


def doc(*agents: Any, **fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "apiVersion": "agentflow/v1",
        "kind": "Workflow",
        "name": "demo",
        "version": "1",
        "agents": list(agents) if agents else [agent("fetch")],
    }
    for key, value in fields.items():
        if value is DROP:
            data.pop(key)
        else:
            data[key] = value
    return data


def with_key(key: Any, value: Any) -> dict[Any, Any]:
    data: dict[Any, Any] = doc()
    data[key] = value
    return data


def problems_of(data: Any) -> list[Problem]:
    with pytest.raises(InvalidWorkflow) as info:
        parse_workflow_dict(data, source="wf.yaml")
    assert info.value.source == "wf.yaml"
    return list(info.value.problems)


def test_the_helpers_build_a_valid_document() -> None:
    parse_workflow_dict(doc(agent("fetch"), agent("summarize", dependsOn=["fetch"])), source="wf.yaml")


TOP_LEVEL = [
    pytest.param(["not", "a", "mapping"], "(root)", "must be a mapping, got a list", id="document-is-list"),
    pytest.param("just text", "(root)", "must be a mapping, got a string", id="document-is-string"),
    pytest.param(None, "(root)", "must be a mapping, got null", id="document-is-null"),
    pytest.param(doc(apiVersion=DROP), "apiVersion", "required field is missing", id="apiVersion-missing"),
    pytest.param(
        doc(apiVersion="agentflow/v2"),
        "apiVersion",
        'must be "agentflow/v1", got "agentflow/v2"',
        id="apiVersion-wrong",
    ),
    pytest.param(doc(apiVersion=1), "apiVersion", 'must be "agentflow/v1", got an integer', id="apiVersion-int"),
    pytest.param(doc(kind=DROP), "kind", "required field is missing", id="kind-missing"),
    pytest.param(doc(kind="Pipeline"), "kind", 'must be "Workflow", got "Pipeline"', id="kind-wrong"),
    pytest.param(doc(name=DROP), "name", "required field is missing", id="name-missing"),
    pytest.param(doc(name=None), "name", "must be a string, got null", id="name-null"),
    pytest.param(doc(name=7), "name", "must be a string, got an integer", id="name-int"),
    pytest.param(doc(name="My Flow"), "name", '"My Flow" is not a valid workflow name', id="name-uppercase-space"),
    pytest.param(doc(name="flow-"), "name", "is not a valid workflow name", id="name-trailing-dash"),
    pytest.param(doc(name="-flow"), "name", "is not a valid workflow name", id="name-leading-dash"),
    pytest.param(doc(name="my_flow"), "name", "is not a valid workflow name", id="name-underscore"),
    pytest.param(doc(name="x" * 64), "name", "at most 63 characters", id="name-too-long"),
    pytest.param(doc(name=""), "name", "is not a valid workflow name", id="name-empty"),
    pytest.param(doc(version=DROP), "version", "required field is missing", id="version-missing"),
    pytest.param(doc(version=1), "version", 'must be a string (quote it: version: "1")', id="version-int"),
    pytest.param(doc(version=1.5), "version", 'must be a string (quote it: version: "1.5")', id="version-float"),
    pytest.param(doc(version=True), "version", "must be a string, got a boolean", id="version-bool"),
    pytest.param(doc(version=" "), "version", "must not be empty", id="version-blank"),
    pytest.param(doc(version="v" * 129), "version", "at most 128 characters", id="version-too-long"),
    pytest.param(doc(description=["a"]), "description", "must be a string, got a list", id="description-list"),
    pytest.param(doc(agents=DROP), "agents", "required field is missing", id="agents-missing"),
    pytest.param(doc(agents=[]), "agents", "must list at least one agent", id="agents-empty"),
    pytest.param(doc(agents=None), "agents", "must be a list of agents, got null", id="agents-null"),
    pytest.param(
        doc(agents={"fetch": {"module": "f.wasm"}}),
        "agents",
        "must be a list of agents, got a mapping",
        id="agents-mapping",
    ),
    pytest.param(
        doc(agents=[agent(f"a{i}") for i in range(10_001)]),
        "agents",
        "has 10001 agents; at most 10000 are allowed",
        id="agents-too-many",
    ),
    pytest.param(doc(agent_list=[]), "agent_list", 'unknown field (did you mean "agents"?)', id="unknown-top-field"),
    pytest.param(doc(spec={}), "spec", "unknown field", id="unknown-top-field-no-suggestion"),
    pytest.param(with_key(3, "x"), "(root)", "field names must be strings, got an integer 3", id="int-key"),
]

AGENT = [
    pytest.param(doc("fetch"), "agents[0]", "must be a mapping, got a string", id="agent-is-string"),
    pytest.param(doc(agent("fetch", name=DROP)), "agents[0].name", "required field is missing", id="name-missing"),
    pytest.param(doc(agent(None)), "agents[0].name", "must be a string, got null", id="name-null"),
    pytest.param(doc(agent(12)), "agents[0].name", "must be a string, got an integer", id="name-int"),
    pytest.param(
        doc(agent("Fetch")),
        "agents[0].name",
        "\"Fetch\" is not a valid agent name (lowercase letters, digits, '-' and '_'",
        id="name-uppercase",
    ),
    pytest.param(doc(agent("-fetch")), "agents[0].name", "is not a valid agent name", id="name-leading-dash"),
    pytest.param(doc(agent("fe tch")), "agents[0].name", "is not a valid agent name", id="name-space"),
    pytest.param(doc(agent("a" * 64)), "agents[0].name", "at most 63 characters", id="name-too-long"),
    pytest.param(
        doc(agent("fetch"), agent("summarize"), agent("fetch")),
        "agents[2].name",
        'duplicate agent name "fetch" (first at agents[0])',
        id="duplicate-agent-name",
    ),
    pytest.param(
        doc(agent("fetch", module=DROP)), "agents[0].module", "required field is missing", id="module-missing"
    ),
    pytest.param(
        doc(agent("fetch", module=["a.wasm"])), "agents[0].module", "must be a string, got a list", id="module-list"
    ),
    pytest.param(
        doc(agent("fetch", module="sha256:abc")),
        "agents[0].module",
        '"sha256:abc" is not a module digest (expected sha256: followed by 64 lowercase hex digits)',
        id="digest-too-short",
    ),
    pytest.param(
        doc(agent("fetch", module="sha256:" + "A" * 64)),
        "agents[0].module",
        "is not a module digest",
        id="digest-uppercase",
    ),
    pytest.param(
        doc(agent("fetch", module=DIGEST + "0")), "agents[0].module", "is not a module digest", id="digest-too-long"
    ),
    pytest.param(
        doc(agent("fetch", module="./agents/fetch.py")),
        "agents[0].module",
        '"./agents/fetch.py" is not a module (use a local path ending in .wasm or a sha256: digest)',
        id="module-not-wasm",
    ),
    pytest.param(doc(agent("fetch", module="")), "agents[0].module", "is not a module", id="module-empty"),
    pytest.param(doc(agent("fetch", module="./.wasm")), "agents[0].module", "is not a module", id="module-no-stem"),
    pytest.param(
        doc(agent("fetch", description=3)),
        "agents[0].description",
        "must be a string, got an integer",
        id="description",
    ),
    pytest.param(
        doc(agent("fetch", dependson=[])),
        "agents[0].dependson",
        'unknown field (did you mean "dependsOn"?)',
        id="unknown-field-case",
    ),
    pytest.param(
        doc(agent("fetch", depends=[])),
        "agents[0].depends",
        'unknown field (did you mean "dependsOn"?)',
        id="unknown-field-spelling",
    ),
    pytest.param(doc(agent("fetch", image="x")), "agents[0].image", "unknown field", id="unknown-field"),
]

DEPENDS_ON = [
    pytest.param(
        doc(agent("fetch"), agent("summarize", dependsOn="fetch")),
        "agents[1].dependsOn",
        "must be a list of strings, got a string (write dependsOn: [fetch])",
        id="string",
    ),
    pytest.param(
        doc(agent("fetch"), agent("summarize", dependsOn={"fetch": True})),
        "agents[1].dependsOn",
        "must be a list of strings, got a mapping",
        id="mapping",
    ),
    pytest.param(
        doc(agent("fetch"), agent("summarize", dependsOn=["fetch", 3])),
        "agents[1].dependsOn[1]",
        "must be a string, got an integer",
        id="entry-int",
    ),
    pytest.param(
        doc(agent("summarize"), agent("report", dependsOn=["summarise"])),
        "agents[1].dependsOn[0]",
        'unknown agent "summarise" (did you mean "summarize"?)',
        id="unknown-with-suggestion",
    ),
    pytest.param(
        doc(agent("fetch"), agent("report", dependsOn=["zzz"])),
        "agents[1].dependsOn[0]",
        'unknown agent "zzz"',
        id="unknown-without-suggestion",
    ),
    pytest.param(
        doc(agent("fetch"), agent("report", dependsOn=["fetch", "fetch"])),
        "agents[1].dependsOn[1]",
        'duplicate dependency "fetch" (also at dependsOn[0])',
        id="duplicate",
    ),
    pytest.param(
        doc(agent("fetch", dependsOn=["fetch"])),
        "agents[0].dependsOn[0]",
        "an agent cannot depend on itself",
        id="self",
    ),
]

INPUT = [
    pytest.param(doc(agent("fetch", input=["a"])), "agents[0].input", "must be a mapping, got a list", id="list"),
    pytest.param(
        doc(agent("fetch", input="${ input }")), "agents[0].input", "must be a mapping, got a string", id="string"
    ),
    pytest.param(
        doc(agent("fetch"), agent("a"), agent("b"), agent("report", input={"text": "${ upstream.fetch.text }"})),
        "agents[3].input.text",
        'references upstream "fetch" which is not in dependsOn',
        id="upstream-not-a-dependency",
    ),
    pytest.param(
        doc(agent("fetch"), agent("report", dependsOn=["fetch"], input={"t": "${ upstream.fecth.text }"})),
        "agents[1].input.t",
        'references unknown agent "fecth" (did you mean "fetch"?)',
        id="upstream-unknown-agent",
    ),
    pytest.param(
        doc(agent("fetch", input={"t": "${ upstream.fetch }"})),
        "agents[0].input.t",
        "references the output of its own agent",
        id="upstream-self",
    ),
    pytest.param(
        doc(agent("fetch", input={"prompt": "Summarise ${ input.text }"})),
        "agents[0].input.prompt",
        "references must be the whole string",
        id="reference-inside-text",
    ),
    pytest.param(
        doc(agent("fetch", input={"deep": {"list": [1, "${ inputs.x }"]}})),
        "agents[0].input.deep.list[1]",
        '(did you mean "input"?)',
        id="malformed-reference-nested",
    ),
    pytest.param(
        doc(agent("fetch", input={"my key": "${ input.a..b }"})),
        'agents[0].input["my key"]',
        "cannot read the path",
        id="malformed-reference-odd-key",
    ),
    pytest.param(
        doc(agent("fetch", input={"n": {1: "x"}})),
        "agents[0].input.n",
        "keys must be strings, got an integer 1 (quote it)",
        id="non-string-key",
    ),
    pytest.param(
        doc(agent("fetch", input={"x": float("nan")})),
        "agents[0].input.x",
        "must be a finite number, got nan",
        id="nan",
    ),
    pytest.param(
        doc(agent("fetch", input={"x": [b"bytes"]})),
        "agents[0].input.x[0]",
        "must be a JSON value (string, number, boolean, null, list or mapping), got binary data",
        id="binary",
    ),
]

RESOURCES = [
    pytest.param(
        doc(agent("fetch", resources="big")), "agents[0].resources", "must be a mapping, got a string", id="string"
    ),
    pytest.param(
        doc(agent("fetch", resources={"cpu": "100x"})),
        "agents[0].resources.cpu",
        '"100x" is not a CPU quantity (use e.g. 100m, 0.5 or 2)',
        id="cpu-suffix",
    ),
    pytest.param(
        doc(agent("fetch", resources={"cpu": "0.0001"})),
        "agents[0].resources.cpu",
        "finer than a millicore",
        id="cpu-too-precise",
    ),
    pytest.param(
        doc(agent("fetch", resources={"cpu": 0})),
        "agents[0].resources.cpu",
        "CPU must be greater than zero",
        id="cpu-zero",
    ),
    pytest.param(
        doc(agent("fetch", resources={"memory": "64MB"})),
        "agents[0].resources.memory",
        '"64MB" is not a memory quantity (use e.g. 64Mi, 1Gi, 512M or a byte count)',
        id="memory-suffix",
    ),
    pytest.param(
        doc(agent("fetch", resources={"memory": "-1Gi"})),
        "agents[0].resources.memory",
        "memory must be greater than zero",
        id="memory-negative",
    ),
    pytest.param(
        doc(agent("fetch", resources={"mem": "1Gi"})),
        "agents[0].resources.mem",
        'unknown field (did you mean "memory"?)',
        id="unknown-field",
    ),
]

TIMEOUT = [
    pytest.param(
        doc(agent("fetch", timeout=30)),
        "agents[0].timeout",
        'must be a duration string such as "30s" (a unit is required)',
        id="int",
    ),
    pytest.param(doc(agent("fetch", timeout="2d")), "agents[0].timeout", "days are not supported", id="days"),
    pytest.param(
        doc(agent("fetch", timeout="48h")), "agents[0].timeout", 'must be at most 24h, got "48h"', id="too-long"
    ),
    pytest.param(doc(agent("fetch", timeout="0s")), "agents[0].timeout", "must be greater than zero", id="zero"),
    pytest.param(doc(agent("fetch", timeout="-1m")), "agents[0].timeout", "must not be negative", id="negative"),
]

RETRY = [
    pytest.param(doc(agent("fetch", retry=3)), "agents[0].retry", "must be a mapping, got an integer", id="int"),
    pytest.param(
        doc(agent("fetch", retry={"maxAttempts": 0})),
        "agents[0].retry.maxAttempts",
        "must be an integer from 1 to 100, got 0",
        id="attempts-zero",
    ),
    pytest.param(
        doc(agent("fetch", retry={"maxAttempts": 101})),
        "agents[0].retry.maxAttempts",
        "must be an integer from 1 to 100, got 101",
        id="attempts-too-many",
    ),
    pytest.param(
        doc(agent("fetch", retry={"maxAttempts": True})),
        "agents[0].retry.maxAttempts",
        "must be an integer from 1 to 100, got a boolean",
        id="attempts-bool",
    ),
    pytest.param(
        doc(agent("fetch", retry={"maxAttempts": "3"})),
        "agents[0].retry.maxAttempts",
        'must be an integer from 1 to 100, got "3"',
        id="attempts-string",
    ),
    pytest.param(
        doc(agent("fetch", retry={"maxAttempts": 2.5})),
        "agents[0].retry.maxAttempts",
        "got a number",
        id="attempts-float",
    ),
    pytest.param(
        doc(agent("fetch", retry={"backoff": "soon"})),
        "agents[0].retry.backoff",
        '"soon" is not a duration',
        id="backoff-invalid",
    ),
    pytest.param(
        doc(agent("fetch", retry={"backoff": "25h"})),
        "agents[0].retry.backoff",
        "must be at most 24h",
        id="backoff-too-long",
    ),
    pytest.param(
        doc(agent("fetch", retry={"backoff": "10s", "maxBackoff": "5s"})),
        "agents[0].retry.maxBackoff",
        'must be at least backoff (10s), got "5s"',
        id="max-backoff-below-backoff",
    ),
    pytest.param(
        doc(agent("fetch", retry={"maxBackoff": 60})),
        "agents[0].retry.maxBackoff",
        "(a unit is required)",
        id="max-backoff-int",
    ),
    pytest.param(
        doc(agent("fetch", retry={"attempts": 3})),
        "agents[0].retry.attempts",
        'unknown field (did you mean "maxAttempts"?)',
        id="unknown-field",
    ),
]

LLM = [
    pytest.param(doc(agent("fetch", llm="gpt")), "agents[0].llm", "must be a mapping, got a string", id="string"),
    pytest.param(
        doc(agent("fetch", llm={"provider": "x"})), "agents[0].llm.model", "required field is missing", id="no-model"
    ),
    pytest.param(
        doc(agent("fetch", llm={"model": 4})), "agents[0].llm.model", "must be a string, got an integer", id="model-int"
    ),
    pytest.param(doc(agent("fetch", llm={"model": ""})), "agents[0].llm.model", "must not be empty", id="model-empty"),
    pytest.param(
        doc(agent("fetch", llm={"model": "m", "provider": 1})),
        "agents[0].llm.provider",
        "must be a string, got an integer",
        id="provider-int",
    ),
    pytest.param(
        doc(agent("fetch", llm={"model": "m", "temperature": 3})),
        "agents[0].llm.temperature",
        "must be a number from 0 to 2, got 3",
        id="temperature-too-high",
    ),
    pytest.param(
        doc(agent("fetch", llm={"model": "m", "temperature": -0.1})),
        "agents[0].llm.temperature",
        "must be a number from 0 to 2, got -0.1",
        id="temperature-negative",
    ),
    pytest.param(
        doc(agent("fetch", llm={"model": "m", "temperature": "hot"})),
        "agents[0].llm.temperature",
        'must be a number from 0 to 2, got "hot"',
        id="temperature-string",
    ),
    pytest.param(
        doc(agent("fetch", llm={"model": "m", "temperature": True})),
        "agents[0].llm.temperature",
        "got a boolean",
        id="temperature-bool",
    ),
    pytest.param(
        doc(agent("fetch", llm={"model": "m", "temperature": float("nan")})),
        "agents[0].llm.temperature",
        "must be a number from 0 to 2",
        id="temperature-nan",
    ),
    pytest.param(
        doc(agent("fetch", llm={"model": "m", "maxTokens": 0})),
        "agents[0].llm.maxTokens",
        "must be an integer from 1 to",
        id="max-tokens-zero",
    ),
    pytest.param(
        doc(agent("fetch", llm={"model": "m", "maxTokens": 1.5})),
        "agents[0].llm.maxTokens",
        "got a number",
        id="max-tokens-float",
    ),
    pytest.param(
        doc(agent("fetch", llm={"model": "m", "max_tokens": 10})),
        "agents[0].llm.max_tokens",
        'unknown field (did you mean "maxTokens"?)',
        id="unknown-field",
    ),
]

LLM_CAPS = {"llm": True}
BUDGET = [
    pytest.param(doc(budget={}), "budget", "must set usd, tokens or both", id="empty-run-budget"),
    pytest.param(
        doc(budget={"usd": -1}), "budget.usd", "must be a number of dollars from 0 to 1000000, got -1",
        id="negative-usd",
    ),
    pytest.param(
        doc(budget={"usd": "5"}), "budget.usd", 'must be a number of dollars from 0 to 1000000, got "5"',
        id="usd-as-text",
    ),
    pytest.param(
        doc(agent("fetch", capabilities=LLM_CAPS, budget={"tokens": 1.5})),
        "agents[0].budget.tokens", "must be an integer from 0 to 1000000000000, got a number", id="fractional-tokens",
    ),
    pytest.param(
        doc(agent("fetch", capabilities=LLM_CAPS, budget={"usd": 1, "dollars": 1})),
        "agents[0].budget.dollars", "unknown field", id="unknown-budget-field",
    ),
    pytest.param(
        doc(agent("fetch", budget={"usd": 1})),
        "agents[0].budget", "limits LLM calls, but the agent may make none (set capabilities.llm)",
        id="budget-without-llm",
    ),
]  # fmt: skip

CAPABILITIES = [
    pytest.param(
        doc(agent("fetch", capabilities=["llm"])),
        "agents[0].capabilities",
        "must be a mapping, got a list",
        id="list",
    ),
    pytest.param(
        doc(agent("fetch", capabilities={"llm": "yes"})),
        "agents[0].capabilities.llm",
        'must be true, false or {models: [...]}, got "yes"',
        id="llm-string",
    ),
    pytest.param(
        doc(agent("fetch", capabilities={"llm": {"models": []}})),
        "agents[0].capabilities.llm.models",
        "must name at least one model (or write llm: true for any model)",
        id="llm-no-models",
    ),
    pytest.param(
        doc(agent("fetch", capabilities={"llm": {"models": ["gpt 4"]}})),
        "agents[0].capabilities.llm.models[0]",
        '"gpt 4" must not contain spaces or control characters',
        id="llm-model-with-a-space",
    ),
    pytest.param(
        doc(agent("fetch", llm={"model": "big"}, capabilities={"llm": {"models": ["small"]}})),
        "agents[0].llm.model",
        '"big" is not among capabilities.llm.models (small)',
        id="llm-default-not-allowed",
    ),
    pytest.param(
        doc(agent("fetch", capabilities={"http": ["api.example.com"]})),
        "agents[0].capabilities.http",
        "must be a mapping, got a list",
        id="http-list",
    ),
    pytest.param(
        doc(agent("fetch", capabilities={"http": {"allowedHosts": "api.example.com"}})),
        "agents[0].capabilities.http.allowedHosts",
        "must be a list of strings, got a string",
        id="hosts-string",
    ),
    pytest.param(
        doc(agent("fetch", capabilities={"http": {"allowedHosts": ["https://api.example.com/v1"]}})),
        "agents[0].capabilities.http.allowedHosts[0]",
        '"https://api.example.com/v1" must be a host name without a scheme (use "api.example.com")',
        id="host-with-scheme",
    ),
    pytest.param(
        doc(agent("fetch", capabilities={"network": {"allowedHosts": ["https://api.example.com"]}})),
        "agents[0].capabilities.network.allowedHosts[0]",
        "must be a host name without a scheme",
        id="network-host-with-scheme",
    ),
    pytest.param(
        doc(agent("fetch", capabilities={"http": {"allowedHosts": ["a.com"]}, "network": {"allowedHosts": []}})),
        "agents[0].capabilities.network",
        "is another name for http: write one of them, not both",
        id="network-and-http",
    ),
    pytest.param(
        doc(agent("fetch", capabilities={"http": {"allowedHosts": ["api.example.com/v1"]}})),
        "agents[0].capabilities.http.allowedHosts[0]",
        'must be a host name without a path (use "api.example.com")',
        id="host-with-path",
    ),
    pytest.param(
        doc(agent("fetch", capabilities={"http": {"allowedHosts": ["api.example.com:99999"]}})),
        "agents[0].capabilities.http.allowedHosts[0]",
        "the port must be a number from 1 to 65535",
        id="host-with-a-bad-port",
    ),
    pytest.param(
        doc(agent("fetch", capabilities={"http": {"allowedHosts": ["ok.com", "api.*.com"]}})),
        "agents[0].capabilities.http.allowedHosts[1]",
        '"*" is only allowed as the whole first label, e.g. "*.example.com"',
        id="host-inner-wildcard",
    ),
    pytest.param(
        doc(agent("fetch", capabilities={"http": {"allowedHosts": ["*"]}})),
        "agents[0].capabilities.http.allowedHosts[0]",
        '"*" is only allowed as the whole first label',
        id="host-bare-wildcard",
    ),
    pytest.param(
        doc(agent("fetch", capabilities={"http": {"allowedHosts": ["bad_host.com"]}})),
        "agents[0].capabilities.http.allowedHosts[0]",
        '"bad_host.com" is not a host name',
        id="host-underscore",
    ),
    pytest.param(
        doc(agent("fetch", capabilities={"http": {"allowedHosts": ["example.com."]}})),
        "agents[0].capabilities.http.allowedHosts[0]",
        "is not a host name",
        id="host-trailing-dot",
    ),
    pytest.param(
        doc(agent("fetch", capabilities={"http": {"allowedHosts": ["a.com", "A.com"]}})),
        "agents[0].capabilities.http.allowedHosts[1]",
        'duplicate entry "a.com" (also at allowedHosts[0])',
        id="host-duplicate",
    ),
    pytest.param(
        doc(agent("fetch", capabilities={"http": {"allowedHosts": [42]}})),
        "agents[0].capabilities.http.allowedHosts[0]",
        "must be a string, got an integer",
        id="host-int",
    ),
    pytest.param(
        doc(agent("fetch", capabilities={"http": {"hosts": []}})),
        "agents[0].capabilities.http.hosts",
        'unknown field (did you mean "allowedHosts"?)',
        id="http-unknown-field",
    ),
    pytest.param(
        doc(agent("fetch", capabilities={"filesystem": {"allowedPaths": ["data"]}})),
        "agents[0].capabilities.filesystem.allowedPaths[0]",
        '"data" must be an absolute path',
        id="path-relative",
    ),
    pytest.param(
        doc(agent("fetch", capabilities={"filesystem": {"allowedPaths": ["/data/../etc"]}})),
        "agents[0].capabilities.filesystem.allowedPaths[0]",
        'must not contain ".." segments',
        id="path-dotdot",
    ),
    pytest.param(
        doc(agent("fetch", capabilities={"filesystem": {"allowedPaths": ["/data", "/data"]}})),
        "agents[0].capabilities.filesystem.allowedPaths[1]",
        'duplicate entry "/data" (also at allowedPaths[0])',
        id="path-duplicate",
    ),
    pytest.param(
        doc(agent("fetch", capabilities={"filesystem": [{"path": "/srv/out", "mode": "write"}]})),
        "agents[0].capabilities.filesystem[0].mode",
        'must be "ro" or "rw", got "write"',
        id="path-mode",
    ),
    pytest.param(
        doc(agent("fetch", capabilities={"filesystem": [{"mode": "rw"}]})),
        "agents[0].capabilities.filesystem[0].path",
        "required field is missing",
        id="path-missing",
    ),
    pytest.param(
        doc(agent("fetch", capabilities={"filesystem": [{"path": "out", "mode": "rw"}]})),
        "agents[0].capabilities.filesystem[0].path",
        '"out" must be an absolute path',
        id="path-entry-relative",
    ),
    pytest.param(
        doc(agent("fetch", capabilities={"filesystem": ["/srv/a", {"path": "/srv/a/", "mode": "rw"}]})),
        "agents[0].capabilities.filesystem[1]",
        'duplicate path "/srv/a" (also at filesystem[0])',
        id="path-entry-duplicate",
    ),
    pytest.param(
        doc(agent("fetch", capabilities={"filesystem": [{"path": "/", "mode": "rw"}]})),
        "agents[0].capabilities.filesystem[0]",
        "the whole filesystem cannot be granted; name the directories the agent needs",
        id="path-root",
    ),
    pytest.param(
        doc(agent("fetch", capabilities={"filesystem": [{"path": "/srv", "mod": "rw"}]})),
        "agents[0].capabilities.filesystem[0].mod",
        'unknown field (did you mean "mode"?)',
        id="path-entry-unknown-field",
    ),
    pytest.param(
        doc(agent("fetch", capabilities={"filesystem": "/srv"})),
        "agents[0].capabilities.filesystem",
        "must be a list of {path, mode: ro|rw} entries, got a string",
        id="filesystem-string",
    ),
    pytest.param(
        doc(agent("fetch", capabilities={"fs": {}})),
        "agents[0].capabilities.fs",
        "unknown field",
        id="unknown-field",
    ),
]

NODE_SELECTOR = [
    pytest.param(
        doc(agent("fetch", nodeSelector=["gpu"])),
        "agents[0].nodeSelector",
        "must be a mapping of label names to values, got a list",
        id="list",
    ),
    pytest.param(
        doc(agent("fetch", nodeSelector={"gpu": True})),
        "agents[0].nodeSelector.gpu",
        'must be a string, got a boolean (quote it: "true")',
        id="bool-value",
    ),
    pytest.param(
        doc(agent("fetch", nodeSelector={"zone": 3})),
        "agents[0].nodeSelector.zone",
        'must be a string, got an integer (quote it: "3")',
        id="int-value",
    ),
    pytest.param(
        doc(agent("fetch", nodeSelector={"kubernetes.io/arch": None})),
        'agents[0].nodeSelector["kubernetes.io/arch"]',
        "must be a string, got null",
        id="null-value-odd-key",
    ),
    pytest.param(
        doc(agent("fetch", nodeSelector={"": "x"})),
        "agents[0].nodeSelector",
        "label names must be non-empty strings",
        id="empty-key",
    ),
]


@pytest.mark.parametrize(
    ("data", "path", "reason"),
    [
        *TOP_LEVEL,
        *AGENT,
        *DEPENDS_ON,
        *INPUT,
        *RESOURCES,
        *TIMEOUT,
        *RETRY,
        *LLM,
        *BUDGET,
        *CAPABILITIES,
        *NODE_SELECTOR,
    ],
)
def test_single_problem(data: Any, path: str, reason: str) -> None:
    problems = problems_of(data)
    assert len(problems) == 1, problems
    assert problems[0].path == path
    assert reason in problems[0].reason


def test_every_problem_is_reported_at_once() -> None:
    data = doc(
        agent("fetch", resources={"memory": "64MB"}, timeout=30),
        agent("summarize", dependsOn=["summarise"], retry={"maxAttempts": 0}),
        version=1,
    )
    problems = problems_of(data)
    assert [p.path for p in problems] == [
        "version",
        "agents[0].resources.memory",
        "agents[0].timeout",
        "agents[1].dependsOn[0]",
        "agents[1].retry.maxAttempts",
    ]


def test_problems_in_many_agents_and_fields_are_all_reported() -> None:
    data = doc(
        agent("Fetch", module="f.py", unknown=1),
        "oops",
        agent("b", dependsOn=["nope"], input={"x": "${ upstream.nope }"}, llm={}),
        apiVersion="v1",
        kind="Workflow",
        extra=True,
    )
    problems = problems_of(data)
    assert [(p.path, p.reason.split(" (")[0]) for p in problems] == [
        ("extra", "unknown field"),
        ("apiVersion", 'must be "agentflow/v1", got "v1"'),
        ("agents[0].unknown", "unknown field"),
        ("agents[0].name", '"Fetch" is not a valid agent name'),
        ("agents[0].module", '"f.py" is not a module'),
        ("agents[1]", "must be a mapping, got a string"),
        ("agents[2].dependsOn[0]", 'unknown agent "nope"'),
        ("agents[2].input.x", 'references unknown agent "nope"'),
        ("agents[2].llm.model", "required field is missing"),
    ]


def test_invalid_workflow_message_has_one_line_per_problem() -> None:
    with pytest.raises(InvalidWorkflow) as info:
        parse_workflow_dict(doc(agent("fetch", timeout=30), version=2), source="flows/demo.yaml")
    assert str(info.value).splitlines() == [
        'flows/demo.yaml: version: must be a string (quote it: version: "2")',
        'flows/demo.yaml: agents[0].timeout: must be a duration string such as "30s" (a unit is required)',
    ]


def test_a_duplicate_name_is_not_also_reported_as_unknown() -> None:
    data = doc(agent("fetch"), agent("fetch"), agent("report", dependsOn=["fetch"]))
    assert problems_of(data) == [Problem("agents[1].name", 'duplicate agent name "fetch" (first at agents[0])')]


def test_invalid_agent_names_still_resolve_dependencies() -> None:
    data = doc(agent("Fetch"), agent("report", dependsOn=["Fetch"]))
    assert [p.path for p in problems_of(data)] == ["agents[0].name"]


def test_input_references_are_checked_against_a_broken_depends_on() -> None:
    data = doc(
        agent("fetch"),
        agent("rank"),
        agent("report", dependsOn=["fetch", 7], input={"a": "${ upstream.fetch }", "b": "${ upstream.rank }"}),
    )
    assert [(p.path, p.reason) for p in problems_of(data)] == [
        ("agents[2].dependsOn[1]", "must be a string, got an integer"),
        ("agents[2].input.b", 'references upstream "rank" which is not in dependsOn'),
    ]


def test_problems_inside_an_input_mapping_come_in_document_order() -> None:
    data = doc(agent("fetch", input={"a": float("inf"), "b": [b"x", {"c": float("nan")}], "d": {2: 1}}))
    assert [p.path for p in problems_of(data)] == [
        "agents[0].input.a",
        "agents[0].input.b[0]",
        "agents[0].input.b[1].c",
        "agents[0].input.d",
    ]
