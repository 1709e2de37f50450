"""YAML-level problems: syntax, duplicate keys, odd documents."""

import textwrap

import pytest

from agentflow.spec import InvalidWorkflow, Problem, document, load_workflow
from agentflow.spec.document import MAX_DEPTH, load_document

pytestmark = pytest.mark.unit

HEADER = "apiVersion: agentflow/v1\nkind: Workflow\nname: demo\nversion: '1'\n"


def problems_of(text: str) -> list[Problem]:
    with pytest.raises(InvalidWorkflow) as info:
        load_workflow(text, source="wf.yaml")
    return list(info.value.problems)


@pytest.mark.parametrize(
    ("text", "path", "reason"),
    [
        pytest.param(
            HEADER + "name: again\nagents: [{name: a, module: a.wasm}]\n",
            "(root)",
            'duplicate key "name" (line 5; first on line 3)',
            id="top-level",
        ),
        pytest.param(
            HEADER
            + textwrap.dedent(
                """\
                agents:
                  - name: fetch
                    module: f.wasm
                  - name: summarize
                    module: s.wasm
                    name: summary
                """
            ),
            "agents[1]",
            'duplicate key "name" (line 10; first on line 8)',
            id="in-agent",
        ),
        pytest.param(
            HEADER + "agents:\n  - name: a\n    module: a.wasm\n    input:\n      text: x\n      text: y\n",
            "agents[0].input",
            'duplicate key "text"',
            id="in-input-mapping",
        ),
        pytest.param(
            HEADER + "agents:\n  - name: a\n    module: a.wasm\n    nodeSelector: {k8s.io/zone: a, k8s.io/zone: b}\n",
            "agents[0].nodeSelector",
            'duplicate key "k8s.io/zone"',
            id="flow-mapping",
        ),
    ],
)
def test_duplicate_keys(text: str, path: str, reason: str) -> None:
    problems = problems_of(text)
    assert len(problems) == 1, problems
    assert problems[0].path == path
    assert reason in problems[0].reason


def test_duplicate_keys_are_reported_with_the_other_problems() -> None:
    text = HEADER + "agents:\n  - name: a\n    module: a.wasm\n    module: b.wasm\n    timeout: 30\n"
    assert problems_of(text) == [
        Problem("agents[0]", 'duplicate key "module" (line 8; first on line 7)'),
        Problem("agents[0].timeout", 'must be a duration string such as "30s" (a unit is required)'),
    ]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        pytest.param(
            HEADER + "agents:\n  - name: a\n   module: a.wasm\n",
            "invalid YAML at line 7, column 4: expected <block end>, but found '<block mapping start>' "
            "(while parsing a block collection started at line 6, column 3)",
            id="bad-indentation",
        ),
        pytest.param(
            "apiVersion: agentflow/v1\nkind: [Workflow\nname: x\n",
            "invalid YAML at line 3, column 5",
            id="unclosed-flow-sequence",
        ),
        pytest.param(
            HEADER + "agents:\n\t- name: a\n",
            "invalid YAML at line 6, column 1",
            id="tab-indentation",
        ),
        pytest.param(
            HEADER + 'description: "unterminated\n',
            "invalid YAML at line 6, column 1: found unexpected end of stream",
            id="unterminated-string",
        ),
        pytest.param(
            HEADER + "agents: *nothing\n",
            "invalid YAML at line 5, column 9: found undefined alias 'nothing'",
            id="undefined-alias",
        ),
        pytest.param(
            HEADER + "agents: !!python/object:os.system {}\n",
            "invalid YAML at line 5, column 9: could not determine a constructor",
            id="unsafe-tag",
        ),
        pytest.param(
            HEADER + "agents: [{name: a, module: a.wasm}]\n---\nname: second\n",
            "invalid YAML at line 6, column 1: but found another document",
            id="two-documents",
        ),
        pytest.param(
            HEADER + "agents:\n  ? [a, b]\n  : x\n",
            "found unhashable key",
            id="list-as-key",
        ),
        pytest.param("", "the document is empty (expected a workflow mapping)", id="empty"),
        pytest.param("# just a comment\n", "the document is empty", id="only-comment"),
    ],
)
def test_unreadable_documents_give_one_root_problem(text: str, reason: str) -> None:
    problems = problems_of(text)
    assert len(problems) == 1, problems
    assert problems[0].path == "(root)"
    assert reason in problems[0].reason


def test_top_level_scalar() -> None:
    assert problems_of("hello\n") == [Problem("(root)", "must be a mapping, got a string")]


def test_alias_expansion_bomb_is_refused() -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 8):
        prev = chr(ord("a") + i - 1)
        cur = chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]")
    problems = problems_of("\n".join(lines) + "\n")
    assert len(problems) == 1
    assert problems[0].path == "(root)"
    assert "values (aliases included)" in problems[0].reason


def test_deep_nesting_is_refused() -> None:
    depth = MAX_DEPTH + 5
    text = HEADER + "agents: [{name: a, module: a.wasm, input: {x: " + "[" * depth + "]" * depth + "}}]\n"
    problems = problems_of(text)
    assert len(problems) == 1
    assert problems[0].path.startswith("agents[0].input.x[0][0]")
    assert f"nested more than {MAX_DEPTH} levels deep" in problems[0].reason


def test_recursive_alias_is_refused() -> None:
    problems = problems_of("a: &a [*a]\n")
    assert len(problems) == 1
    assert "nested more than" in problems[0].reason


def test_load_document_keeps_timestamps_as_strings() -> None:
    doc = load_document("when: 2024-05-01T10:00:00Z\nday: 2024-05-01\n")
    assert doc.readable
    assert doc.data == {"when": "2024-05-01T10:00:00Z", "day": "2024-05-01"}


def test_load_document_yields_standard_yaml_types() -> None:
    doc = load_document("i: 1\nf: 1.5\nb: true\nn: null\ns: text\nl: [1]\nm: {a: b}\n")
    assert doc.data == {"i": 1, "f": 1.5, "b": True, "n": None, "s": "text", "l": [1], "m": {"a": "b"}}
    assert doc.problems == []


LARGE = (
    HEADER
    + "agents:\n"
    + "".join(
        f"  - {{name: s{i}, module: ./a.wasm, dependsOn: [s{i - 1}], when: 2024-05-01, n: {i}, f: {i}.5, b: yes}}\n"
        if i
        else "  - {name: s0, module: ./a.wasm, env: {K: 'v: x', E: ''}, list: [1, null, ~, true]}\n"
        for i in range(300)
    )
)


def test_libyaml_and_the_pure_python_reader_give_the_same_values() -> None:
    """A readable document goes through libyaml's parser, which must read it as PyYAML does."""
    fast = document._read(LARGE, document._FastWorkflowLoader)
    slow = document._read(LARGE, document.WorkflowLoader)
    assert fast.readable and slow.readable
    assert fast.data == slow.data
    assert fast.data["agents"][7]["when"] == "2024-05-01"  # timestamps stay strings on both
    assert load_document(LARGE).data == slow.data


@pytest.mark.parametrize(
    "text",
    [
        "a: [1, 2\n",  # libyaml fails too, in its own words
        "a: !!int x\n",  # a constructor error, at the node
        "a: b\x07\n",  # a character only the pure-Python reader checks
        "a: b\n\ta: c\n",
    ],
)
def test_an_unreadable_document_gets_the_pure_python_readers_message(text: str) -> None:
    assert load_document(text).problems == document._read(text, document.WorkflowLoader).problems
    assert load_document(text).problems  # and there is one


def test_without_libyaml_the_pure_python_reader_reads_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    expected = document._read(LARGE, document.WorkflowLoader).data
    monkeypatch.setattr(document, "_FAST_LOADER", None)  # as with a PyYAML built without libyaml
    assert load_document(LARGE).data == expected
    assert load_document("a: [1, 2\n").problems
