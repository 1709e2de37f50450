from typing import Any

import pytest

from agentflow.spec import Reference, ReferenceMissing, evaluate, find_references
from agentflow.spec.refs import ReferenceSyntaxError, parse_reference, scan_references

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("${ input }", Reference(root="input"), id="whole-input"),
        pytest.param("${input}", Reference(root="input"), id="no-spaces"),
        pytest.param("${   input.url   }", Reference(root="input", path=("url",)), id="many-spaces"),
        pytest.param("${ input[0] }", Reference(root="input", path=(0,)), id="input-index"),
        pytest.param("${ upstream.fetch }", Reference(root="upstream", agent="fetch"), id="whole-upstream-output"),
        pytest.param(
            "${ upstream.fetch.items[0].title }",
            Reference(root="upstream", agent="fetch", path=("items", 0, "title")),
            id="nested-path",
        ),
        pytest.param(
            "${ upstream.web-search.hits[12][3] }",
            Reference(root="upstream", agent="web-search", path=("hits", 12, 3)),
            id="dash-name-and-double-index",
        ),
        pytest.param(
            "${ upstream.a_b.x-y._z }",
            Reference(root="upstream", agent="a_b", path=("x-y", "_z")),
            id="identifier-characters",
        ),
        pytest.param("plain text", None, id="no-reference"),
        pytest.param("cost: $5 {approx}", None, id="dollar-without-brace"),
    ],
)
def test_parse_reference(text: str, expected: Reference | None) -> None:
    assert parse_reference(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        pytest.param("Summarise: ${ upstream.fetch.text }", "references must be the whole string", id="prefix"),
        pytest.param("${ input } and more", "references must be the whole string", id="suffix"),
        pytest.param("${ input }${ input }", "references must be the whole string", id="two-references"),
        pytest.param("${ input", "references must be the whole string", id="unclosed"),
        pytest.param("${ }", 'starts with "input" or "upstream.<agent>"', id="empty"),
        pytest.param("${ inputs.x }", '(did you mean "input"?)', id="misspelt-root"),
        pytest.param("${ output.x }", 'starts with "input" or "upstream.<agent>"', id="unknown-root"),
        pytest.param("${ upstream }", 'name the agent after "upstream"', id="upstream-without-agent"),
        pytest.param("${ upstream[0] }", 'name the agent after "upstream"', id="upstream-index"),
        pytest.param("${ input.a..b }", 'cannot read the path at "..b"', id="double-dot"),
        pytest.param("${ input.items[x] }", 'cannot read the path at "[x]"', id="non-numeric-index"),
        pytest.param("${ input.items[-1] }", "cannot read the path", id="negative-index"),
        pytest.param("${ input.1st }", "cannot read the path", id="key-starting-with-digit"),
        pytest.param("${ input.a b }", "cannot read the path", id="space-in-path"),
        pytest.param("${ input[9999999999] }", "is too large", id="huge-index"),
    ],
)
def test_parse_reference_invalid(text: str, reason: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_reference(text)
    assert reason in str(info.value)


@pytest.mark.parametrize(
    "text",
    ["${ input }", "${ input.url }", "${ upstream.fetch }", "${ upstream.fetch.items[0].title }"],
)
def test_reference_str_is_canonical(text: str) -> None:
    ref = parse_reference(text)
    assert ref is not None
    assert str(ref) == text


def test_find_references_gives_relative_field_paths_in_document_order() -> None:
    mapping = {
        "text": "${ upstream.fetch.text }",
        "literal": "no reference here",
        "count": 3,
        "nested": {"list": ["${ input.a }", {"deep": "${ upstream.rank.scores[1] }"}]},
        "odd key": "${ input }",
    }
    assert find_references(mapping) == [
        ("text", Reference(root="upstream", agent="fetch", path=("text",))),
        ("nested.list[0]", Reference(root="input", path=("a",))),
        ("nested.list[1].deep", Reference(root="upstream", agent="rank", path=("scores", 1))),
        ('["odd key"]', Reference(root="input")),
    ]


def test_find_references_raises_on_malformed_string() -> None:
    with pytest.raises(ReferenceSyntaxError) as info:
        find_references({"ok": "${ input }", "bad": {"x": "Hello ${ input.name }"}})
    assert info.value.field == "bad.x"
    assert "references must be the whole string" in info.value.reason
    assert str(info.value).startswith('input mapping "bad.x": ')


def test_scan_references_reports_every_malformed_string() -> None:
    scan = scan_references({"a": "x ${ input }", "b": ["${ nope }"], "c": "${ input }"})
    assert [field for field, _ in scan.errors] == ["a", "b[0]"]
    assert scan.references == [("c", Reference(root="input"))]


RUN_INPUT = {"topic": "wasm", "urls": ["https://a.example", "https://b.example"], "n": 2}
UPSTREAM: dict[str, Any] = {
    "fetch": {"text": "body", "items": [{"title": "first"}, {"title": "second"}], "meta": None},
    "rank": [3, 1, 2],
}


@pytest.mark.parametrize(
    ("mapping", "expected"),
    [
        pytest.param({"t": "${ input.topic }"}, {"t": "wasm"}, id="input-key"),
        pytest.param({"all": "${ input }"}, {"all": RUN_INPUT}, id="whole-input"),
        pytest.param({"u": "${ input.urls[1] }"}, {"u": "https://b.example"}, id="input-index"),
        pytest.param({"n": "${ input.n }"}, {"n": 2}, id="number-stays-number"),
        pytest.param({"title": "${ upstream.fetch.items[0].title }"}, {"title": "first"}, id="upstream-nested"),
        pytest.param({"r": "${ upstream.rank }"}, {"r": [3, 1, 2]}, id="whole-upstream-list"),
        pytest.param({"m": "${ upstream.fetch.meta }"}, {"m": None}, id="null-value"),
        pytest.param(
            {"list": ["${ upstream.rank[0] }", "lit", 7, {"x": "${ input.topic }"}]},
            {"list": [3, "lit", 7, {"x": "wasm"}]},
            id="inside-lists",
        ),
        pytest.param({"lit": "plain", "b": True, "f": 1.5}, {"lit": "plain", "b": True, "f": 1.5}, id="literals"),
    ],
)
def test_evaluate(mapping: dict[str, Any], expected: dict[str, Any]) -> None:
    assert evaluate(mapping, run_input=RUN_INPUT, upstream=UPSTREAM) == expected


def test_evaluate_returns_a_deep_copy() -> None:
    mapping = {"items": "${ upstream.fetch.items }", "lit": {"a": [1]}}
    result = evaluate(mapping, run_input=RUN_INPUT, upstream=UPSTREAM)
    result["items"][0]["title"] = "changed"
    result["lit"]["a"].append(2)
    assert UPSTREAM["fetch"]["items"][0]["title"] == "first"
    assert mapping["lit"] == {"a": [1]}


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        pytest.param(
            {"text": "${ upstream.fetch.text }"},
            'input mapping "text": ${ upstream.fetch.text }: upstream "fetch" output has no key "text"',
            id="missing-upstream-key",
        ),
        pytest.param(
            {"t": "${ upstream.fetch.items[5].title }"},
            'input mapping "t": ${ upstream.fetch.items[5].title }: '
            'upstream "fetch" output at items has no index 5 (it has 2 items)',
            id="index-out-of-range",
        ),
        pytest.param(
            {"t": "${ upstream.fetch.summary.x }"},
            'upstream "fetch" output at summary is a string, not a mapping',
            id="key-into-string",
        ),
        pytest.param(
            {"t": "${ upstream.fetch.items.x }"},
            'upstream "fetch" output at items is a list, not a mapping',
            id="key-into-list",
        ),
        pytest.param(
            {"t": "${ upstream.fetch[0] }"},
            'upstream "fetch" output is a mapping, not a list',
            id="index-into-mapping",
        ),
        pytest.param(
            {"t": "${ upstream.search.hits }"},
            'there is no output of upstream "search"',
            id="missing-agent-output",
        ),
        pytest.param(
            {"deep": {"list": ["${ input.missing }"]}},
            'input mapping "deep.list[0]": ${ input.missing }: run input has no key "missing"',
            id="missing-run-input-key",
        ),
    ],
)
def test_evaluate_missing(mapping: dict[str, Any], message: str) -> None:
    upstream = {"fetch": {"summary": "short", "items": [{}, {}]}}
    with pytest.raises(ReferenceMissing) as info:
        evaluate(mapping, run_input=RUN_INPUT, upstream=upstream)
    assert message in str(info.value)


def test_reference_missing_is_a_spec_error() -> None:
    from agentflow.spec import SpecError

    assert issubclass(ReferenceMissing, SpecError)


def test_evaluate_rejects_malformed_reference() -> None:
    with pytest.raises(ReferenceSyntaxError):
        evaluate({"a": "x ${ input }"}, run_input={}, upstream={})
