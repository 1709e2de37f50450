"""Property: any text whatsoever gives a workflow or `InvalidWorkflow` with problems, nothing else.

Inputs are arbitrary text (lone surrogates and control characters included) and mutations of
valid workflows: spliced-in YAML syntax, tags, anchors, aliases and random characters. The
`fuzz` Hypothesis profile (`HYPOTHESIS_PROFILE=fuzz make test PYTEST_ARGS=tests/agentflow/spec`)
runs many more random cases than the reproducible default.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentflow.spec import InvalidWorkflow, WorkflowSpec, load_workflow
from agentflow.spec.codec import canonical_json

pytestmark = [pytest.mark.unit, pytest.mark.timeout(300)]

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
RICH = """\
apiVersion: agentflow/v1
kind: Workflow
name: rich
version: "2"
agents:
  - name: fetch
    module: sha256:0000000000000000000000000000000000000000000000000000000000000000
    input: {text: "${ input.text }", n: 3, list: [1, 2.5, true, null]}
    resources: {cpu: 250m, memory: 64Mi}
    timeout: 1m30s
    retry: {maxAttempts: 3, backoff: 1s, maxBackoff: 10s}
    llm: {model: gpt-4o-mini, provider: openai, temperature: 0.2, maxTokens: 512}
    capabilities:
      llm: true
      http: {allowedHosts: [api.example.com, "*.example.org"]}
      filesystem: {allowedPaths: [/srv/shared]}
    nodeSelector: {gpu: a100}
  - name: use
    module: ./agents/use.wasm
    dependsOn: [fetch]
    input: {words: "${ upstream.fetch.words[0] }"}
"""
SEEDS = [RICH, *(p.read_text() for p in sorted(EXAMPLES.glob("*.yaml")))]
SNIPPETS = [
    "!!int", "!!float", "!!bool", "!!timestamp", "!!binary", "!!str", "!!null", "!!map", "!!seq",
    "!!set", "!!omap", "!!python/object:os.system", "!foo", "&a ", "*a", "<<: ", "? ", "- ", ": ",
    "{", "}", "[", "]", ",", "#", "'", '"', "|", ">", "\t", "\n", "\n  ", "%YAML 1.1\n", "---\n",
    "...\n", "\x00", "\ud800", "\ufeff", "\x85", "1e999", "-.inf", ".nan", "0x", "0o9", "~",
    "${ upstream.", "${ input }", "dependsOn: [", "agents:", "name: a", "sha256:", "9" * 40,
]  # fmt: skip
ANY_CHARACTER = st.characters(exclude_categories=())  # surrogates and control characters too


@st.composite
def mutated_workflows(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        op = draw(st.sampled_from(["insert", "delete", "replace"]))
        piece = draw(st.one_of(st.sampled_from(SNIPPETS), st.text(ANY_CHARACTER, max_size=8)))
        if op == "insert":
            text = text[:at] + piece + text[at:]
        else:
            end = min(len(text), at + draw(st.integers(1, 16)))
            text = text[:at] + (piece if op == "replace" else "") + text[end:]
    return text


def check(text: str) -> None:
    try:
        spec = load_workflow(text, source="fuzz.yaml")
    except InvalidWorkflow as exc:
        assert exc.problems, "InvalidWorkflow without a problem"
        for problem in exc.problems:
            assert problem.path and problem.reason, problem
        assert str(exc).startswith("fuzz.yaml: ")
        return
    assert isinstance(spec, WorkflowSpec)
    canonical_json(spec)  # what the control plane stores: strict JSON, no NaN or infinity


@given(mutated_workflows())
def test_a_mutated_workflow_is_a_workflow_or_a_list_of_problems(text: str) -> None:
    check(text)


@given(st.text(ANY_CHARACTER, max_size=300))
def test_any_text_is_a_workflow_or_a_list_of_problems(text: str) -> None:
    check(text)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("name: a\x00", "invalid YAML at line 1, column 8: character #x0000 is not allowed"),
        ("x: 1\nname: \ud800", "invalid YAML at line 2, column 7: character #xd800 is not allowed"),
        ("version: !!int", 'invalid YAML at line 1, column 10: "" is not a valid !!int value'),
        ("version: !!float x", 'invalid YAML at line 1, column 10: "x" is not a valid !!float value'),
        ("version: !!bool", 'invalid YAML at line 1, column 10: "" is not a valid !!bool value'),
        ("version: !!timestamp", 'invalid YAML at line 1, column 10: "" is not a valid !!timestamp value'),
    ],
    ids=["nul", "lone-surrogate", "bare-int-tag", "bad-float", "bare-bool-tag", "bare-timestamp-tag"],
)
def test_yaml_the_reader_rejects_is_one_precise_problem(text: str, reason: str) -> None:
    with pytest.raises(InvalidWorkflow) as info:
        load_workflow(text, source="w.yaml")
    assert len(info.value.problems) == 1
    assert str(info.value).startswith(f"w.yaml: (root): {reason}")
