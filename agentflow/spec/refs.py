"""References in an agent's input mapping: strings like "${ upstream.fetch.items[0].title }".

A reference must be a whole string; its value (any JSON value) replaces the string when the step's
input is built. `input...` points into the run input, `upstream.<agent>...` into the output of a
dependency.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from agentflow.spec.errors import SpecError, kind_of
from agentflow.spec.suggest import did_you_mean

MARKER = "${"

_WHOLE_RE = re.compile(r"\$\{\s*(.*?)\s*\}", re.DOTALL)
_IDENT = r"[A-Za-z_][A-Za-z0-9_-]*"
_IDENT_RE = re.compile(_IDENT)
_SEGMENT_RE = re.compile(rf"\.({_IDENT})|\[([0-9]+)\]")
_MAX_INDEX_DIGITS = 9

Segment = str | int


class ReferenceSyntaxError(SpecError, ValueError):
    """A string holding "${" that is not exactly one well-formed reference."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f'input mapping "{field}": {reason}' if field else f"input mapping: {reason}")


class ReferenceMissing(SpecError, LookupError):
    """A reference pointing at a key or index that the run input or upstream output lacks."""


@dataclass(frozen=True, slots=True)
class Reference:
    root: Literal["input", "upstream"]
    agent: str | None = None  # set exactly when root == "upstream"
    path: tuple[Segment, ...] = ()

    def __str__(self) -> str:
        head = "input" if self.root == "input" else f"upstream.{self.agent}"
        return f"${{ {head}{format_path(self.path)} }}"


def format_path(path: tuple[Segment, ...] | list[Segment]) -> str:
    """The path suffix `.items[0].title` of ("items", 0, "title"); odd keys are quoted: `["a b"]`."""
    out = []
    for seg in path:
        if isinstance(seg, int):
            out.append(f"[{seg}]")
        elif _IDENT_RE.fullmatch(seg):
            out.append(f".{seg}")
        else:
            out.append(f"[{json.dumps(seg)}]")
    return "".join(out)


def field_path(path: tuple[Segment, ...] | list[Segment]) -> str:
    """A position inside an input mapping as a relative path: "text", "nested.list[0]"."""
    return format_path(path).removeprefix(".")


def parse_reference(text: str) -> Reference | None:
    """The reference a string holds, None when it holds no "${"; ValueError when malformed."""
    if MARKER not in text:
        return None
    match = _WHOLE_RE.fullmatch(text)
    if match is None or MARKER in match.group(1):
        raise ValueError(f'"{text}": references must be the whole string, e.g. "${{ upstream.fetch.text }}"')
    expr = match.group(1)
    head = _IDENT_RE.match(expr)
    if head is None or head.group() not in ("input", "upstream"):
        hint = did_you_mean(head.group(), ("input", "upstream")) if head else ""
        raise ValueError(f'"{text}": a reference starts with "input" or "upstream.<agent>"{hint}')
    segments: list[Segment] = []
    pos = head.end()
    while pos < len(expr):
        seg = _SEGMENT_RE.match(expr, pos)
        if seg is None:
            raise ValueError(
                f'"{text}": cannot read the path at "{expr[pos:]}" (use .name for keys and [0] for list indexes)'
            )
        key, index = seg.groups()
        if index is not None:
            if len(index) > _MAX_INDEX_DIGITS:
                raise ValueError(f'"{text}": index [{index}] is too large')
            segments.append(int(index))
        else:
            segments.append(key)
        pos = seg.end()
    if head.group() == "input":
        return Reference(root="input", path=tuple(segments))
    if not segments or not isinstance(segments[0], str):
        raise ValueError(f'"{text}": name the agent after "upstream", e.g. "${{ upstream.fetch }}"')
    return Reference(root="upstream", agent=segments[0], path=tuple(segments[1:]))


def _walk(value: Any, path: list[Segment]) -> Iterator[tuple[list[Segment], str]]:
    """Every string in a JSON-like value with its position (depth first, in order)."""
    stack: list[tuple[Any, list[Segment]]] = [(value, path)]
    while stack:
        node, where = stack.pop()
        if isinstance(node, str):
            yield where, node
        elif isinstance(node, dict):
            stack.extend((v, [*where, str(k)]) for k, v in reversed(node.items()))
        elif isinstance(node, list | tuple):
            stack.extend((v, [*where, i]) for i, v in reversed(list(enumerate(node))))


@dataclass(frozen=True, slots=True)
class Scan:
    """What `scan_references` found: well-formed references and malformed strings, by field path."""

    references: list[tuple[str, Reference]]
    errors: list[tuple[str, str]]


def scan_references(value: Any) -> Scan:
    """All references in a JSON-like value and every malformed one, without stopping at the first."""
    found: list[tuple[str, Reference]] = []
    errors: list[tuple[str, str]] = []
    for where, text in _walk(value, []):
        try:
            ref = parse_reference(text)
        except ValueError as exc:
            errors.append((field_path(where), str(exc)))
            continue
        if ref is not None:
            found.append((field_path(where), ref))
    return Scan(found, errors)


def find_references(value: Any) -> list[tuple[str, Reference]]:
    """(field path, reference) for every reference in a JSON-like value, in document order.

    Raises ReferenceSyntaxError for the first string that holds "${" but is not a whole reference.
    """
    scan = scan_references(value)
    if scan.errors:
        raise ReferenceSyntaxError(*scan.errors[0])
    return scan.references


def evaluate(mapping: Any, *, run_input: Any, upstream: Mapping[str, Any]) -> Any:
    """A deep copy of an input mapping with every reference replaced by the value it points at.

    `upstream` maps agent names to their (JSON-decoded) outputs. Raises ReferenceMissing when a
    referenced agent output, key or index does not exist.
    """
    return _evaluate(mapping, [], run_input, upstream)


def _evaluate(value: Any, where: list[Segment], run_input: Any, upstream: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        try:
            ref = parse_reference(value)
        except ValueError as exc:
            raise ReferenceSyntaxError(field_path(where), str(exc)) from None
        if ref is None:
            return value
        return copy.deepcopy(resolve(ref, run_input=run_input, upstream=upstream, field=field_path(where)))
    if isinstance(value, dict):
        return {k: _evaluate(v, [*where, str(k)], run_input, upstream) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_evaluate(v, [*where, i], run_input, upstream) for i, v in enumerate(value)]
    return copy.deepcopy(value)


def resolve(ref: Reference, *, run_input: Any, upstream: Mapping[str, Any], field: str = "") -> Any:
    """The value one reference points at (not copied)."""
    prefix = f'input mapping "{field}": {ref}: ' if field else f"{ref}: "
    if ref.root == "input":
        base, current = "run input", run_input
    else:
        base = f'upstream "{ref.agent}" output'
        agent = ref.agent or ""
        if agent not in upstream:
            raise ReferenceMissing(f'{prefix}there is no output of upstream "{agent}"')
        current = upstream[agent]
    for i, seg in enumerate(ref.path):
        at = f"{base} at {format_path(ref.path[:i]).removeprefix('.')}" if i else base
        if isinstance(seg, int):
            if not isinstance(current, list):
                raise ReferenceMissing(f"{prefix}{at} is {kind_of(current)}, not a list")
            if seg >= len(current):
                items = "1 item" if len(current) == 1 else f"{len(current)} items"
                raise ReferenceMissing(f"{prefix}{at} has no index {seg} (it has {items})")
            current = current[seg]
        else:
            if not isinstance(current, dict):
                raise ReferenceMissing(f"{prefix}{at} is {kind_of(current)}, not a mapping")
            if seg not in current:
                raise ReferenceMissing(f'{prefix}{at} has no key "{seg}"')
            current = current[seg]
    return current
