"""Errors of the spec package and how problems in a workflow document are reported."""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass

ROOT = "(root)"  # the path of a problem with the document as a whole


class SpecError(Exception):
    """Root of every error raised by `agentflow.spec`."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a workflow: where (`agents[2].dependsOn[0]`) and why."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


class InvalidWorkflow(SpecError):
    """A workflow document with one or more problems; `str()` lists all of them, one per line."""

    source: str
    problems: tuple[Problem, ...]

    def __init__(self, source: str, problems: Iterable[Problem]) -> None:
        self.source = source
        self.problems = tuple(problems)
        super().__init__(str(self))

    def lines(self) -> list[str]:
        return [f"{self.source}: {p.path}: {p.reason}" for p in self.problems]

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def __reduce__(self) -> tuple[type[InvalidWorkflow], tuple[str, tuple[Problem, ...]]]:
        return (type(self), (self.source, self.problems))


def kind_of(value: object) -> str:
    """How a problem names the type of a value it did not expect: "a mapping", "null", ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, datetime.datetime):
        return "a timestamp"
    if isinstance(value, datetime.date):
        return "a date"
    if isinstance(value, bytes):
        return "binary data"
    if isinstance(value, set | frozenset):
        return "a set"
    return f"a {type(value).__name__}"
