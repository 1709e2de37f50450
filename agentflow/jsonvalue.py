"""Strict JSON as steps exchange it: exactly one standard JSON value (no NaN or Infinity).

A step's output becomes its dependents' input, so the node checks it when the attempt ends and
the control plane checks it again when the result arrives; a run's input is held to the same rule.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON value")


def loads(text: str) -> Any:
    """Parse strict JSON; ValueError (or RecursionError for absurd nesting) when it is not."""
    return json.loads(text, parse_constant=_reject_constant)


def output_problem(text: str) -> str | None:
    """Why `text` is not exactly one strict JSON value, as a step's error reads; None when it is."""
    try:
        loads(text)
    except RecursionError:
        return "output is not valid JSON: nested too deeply"
    except ValueError as exc:
        return f"output is not valid JSON: {exc}"
    return None


def normalize_output(raw: bytes) -> tuple[str | None, str]:
    """(compact JSON, "") for exactly one strict JSON value in UTF-8, else (None, the problem)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"output is not valid UTF-8: {exc}"
    try:
        value = loads(text)
        compact = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except RecursionError:
        return None, "output is not valid JSON: nested too deeply"
    except ValueError as exc:  # JSONDecodeError, out-of-range numbers
        return None, f"output is not valid JSON: {exc}"
    try:
        compact.encode("utf-8")
    except UnicodeEncodeError:  # a \ud800-style lone surrogate: keep it escaped
        compact = json.dumps(value, separators=(",", ":"), allow_nan=False)
    return compact, ""
