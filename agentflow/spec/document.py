"""Reading a workflow YAML document: safe types only, duplicate keys and syntax errors as problems."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from agentflow.spec.errors import ROOT, Problem

MAX_DEPTH = 64  # nesting of YAML collections
MAX_NODES = 250_000  # YAML values, counting every expansion of an alias

_MERGE_TAG = "tag:yaml.org,2002:merge"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


class _WorkflowConstruction(yaml.constructor.SafeConstructor):
    """Safe types, with timestamps kept as strings (`version: 2024-05-01` stays a string).

    Duplicate mapping keys are rejected by `load_document`, which checks the composed node
    tree before constructing Python values so that it can name each duplicate by its path.
    """

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP_TAG]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        """PyYAML's constructors raise bare Python errors for values that do not fit an explicit
        tag (`!!int` with no digits, `!!float x`, `!!bool` empty); report them at the node."""
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, TypeError, IndexError, KeyError, AttributeError, OverflowError) as exc:
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            value = node.value if isinstance(node, yaml.ScalarNode) else None
            what = f"not a valid {tag} value" if value is None else f"{json.dumps(value)} is not a valid {tag} value"
            raise yaml.constructor.ConstructorError(None, None, what, node.start_mark) from exc


class WorkflowLoader(_WorkflowConstruction, yaml.SafeLoader):
    """The pure-Python loader: its errors name the line and column of what is wrong."""


_FAST_LOADER: type[yaml.CSafeLoader] | None = None
if yaml.__with_libyaml__:  # PyYAML built without libyaml has no CSafeLoader

    class _FastWorkflowLoader(_WorkflowConstruction, yaml.CSafeLoader):
        """The same loader on libyaml's parser, 5x faster on a 1,000-step workflow: a document
        it cannot read is read again by `WorkflowLoader`, for PyYAML's own message."""

    _FAST_LOADER = _FastWorkflowLoader


@dataclass(slots=True)
class Document:
    """The values of a YAML document and the problems found reading it.

    `readable` is False when the problems leave nothing worth validating (syntax errors, an empty
    document, absurd size); `data` is then None.
    """

    data: Any = None
    readable: bool = False
    problems: list[Problem] = field(default_factory=list)


def key_path(path: str, key: object) -> str:
    """The path of a mapping entry: `agents[0].name`, `nodeSelector["kubernetes.io/arch"]`."""
    text = str(key)
    parent = "" if path == ROOT else path
    if _KEY_RE.fullmatch(text):
        return f"{parent}.{text}" if parent else text
    return f"{parent}[{json.dumps(text)}]"


def load_document(text: str) -> Document:
    if _FAST_LOADER is not None and not yaml.reader.Reader.NON_PRINTABLE.search(text):
        fast = _read(text, _FAST_LOADER)
        if fast.readable:
            return fast
    return _read(text, WorkflowLoader)  # what is wrong, in PyYAML's words


def _read(text: str, loader_type: type[yaml.SafeLoader] | type[yaml.CSafeLoader]) -> Document:
    doc = Document()
    loader: yaml.SafeLoader | yaml.CSafeLoader | None = None
    try:
        loader = loader_type(text)  # the pure-Python reader checks every character first
        node = loader.get_single_node()
        if node is None:
            doc.problems.append(Problem(ROOT, "the document is empty (expected a workflow mapping)"))
        elif _check_nodes(node, doc.problems):
            doc.data = loader.construct_document(node)
            doc.readable = True
    except yaml.MarkedYAMLError as exc:
        doc.problems.append(Problem(ROOT, _yaml_error(exc)))
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow (NUL, a lone surrogate)
        doc.problems.append(Problem(ROOT, _reader_error(text, exc)))
    except yaml.YAMLError as exc:  # pragma: no cover - every PyYAML parse error carries a mark
        doc.problems.append(Problem(ROOT, f"invalid YAML: {exc}"))
    except RecursionError:
        doc.problems.append(Problem(ROOT, "the document is nested too deeply"))
    finally:
        if loader is not None:
            loader.dispose()
    return doc


def _reader_error(text: str, exc: yaml.reader.ReaderError) -> str:
    before = text[: exc.position]
    line = before.count("\n") + 1
    column = exc.position - (before.rfind("\n") + 1) + 1
    char = exc.character if isinstance(exc.character, int) else ord(exc.character)
    return f"invalid YAML at line {line}, column {column}: character #x{char:04x} is not allowed ({exc.reason})"


def _yaml_error(exc: yaml.MarkedYAMLError) -> str:
    mark = exc.problem_mark or exc.context_mark
    what = exc.problem or exc.context or "cannot be parsed"
    if mark is None:  # pragma: no cover - defensive
        return f"invalid YAML: {what}"
    reason = f"invalid YAML at line {mark.line + 1}, column {mark.column + 1}: {what}"
    context, at = exc.context, exc.context_mark
    if exc.problem and context and at is not None and (at.line, at.column) != (mark.line, mark.column):
        reason += f" ({context} started at line {at.line + 1}, column {at.column + 1})"
    return reason


def _check_nodes(root: yaml.Node, problems: list[Problem]) -> bool:
    """Report duplicate mapping keys by path; False when the document is too big or deep to read."""
    count = 0
    stack: list[tuple[yaml.Node, str, int]] = [(root, "", 0)]
    while stack:
        node, path, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            reason = f"the document has more than {MAX_NODES} values (aliases included)"
            problems.append(Problem(ROOT, reason))
            return False
        if depth > MAX_DEPTH:
            problems.append(Problem(path or ROOT, f"nested more than {MAX_DEPTH} levels deep"))
            return False
        children: list[tuple[yaml.Node, str]] = []
        if isinstance(node, yaml.MappingNode):
            first_line: dict[tuple[str, str], int] = {}
            for key_node, value_node in node.value:
                if key_node.tag == _MERGE_TAG or not isinstance(key_node, yaml.ScalarNode):
                    children.append((value_node, path))  # merged entries belong to this mapping
                    continue
                key = (key_node.tag, key_node.value)
                line = key_node.start_mark.line + 1
                if key in first_line:
                    reason = f'duplicate key "{key_node.value}" (line {line}; first on line {first_line[key]})'
                    problems.append(Problem(path or ROOT, reason))
                else:
                    first_line[key] = line
                children.append((value_node, key_path(path, key_node.value)))
        elif isinstance(node, yaml.SequenceNode):
            children = [(item, f"{path}[{i}]") for i, item in enumerate(node.value)]
        stack.extend((child, child_path, depth + 1) for child, child_path in reversed(children))
    return True
