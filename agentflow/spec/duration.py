"""Durations written the way Go writes them: "30s", "1m30s", "500ms", "1.5h"."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal, localcontext

from agentflow.spec.errors import kind_of

HINT = 'use e.g. "30s", "1m30s", "500ms" or "2h"'

_MICROS = {"ms": 1_000, "s": 1_000_000, "m": 60_000_000, "h": 3_600_000_000}
_PART_RE = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)([^0-9.]*)")
_MAX_TEXT = 64  # keeps the decimal arithmetic below exact
_MAX_MICROS = timedelta.max // timedelta(microseconds=1)


def parse_duration(value: object, *, allow_zero: bool = False) -> timedelta:
    """A timedelta from a duration string; raises ValueError with the reason when it is not one."""
    if not isinstance(value, str):
        if isinstance(value, int | float) and not isinstance(value, bool):
            raise ValueError('must be a duration string such as "30s" (a unit is required)')
        raise ValueError(f'must be a duration string such as "30s", got {kind_of(value)}')
    text = value.strip()
    if not text:
        raise ValueError(f"must not be empty ({HINT})")
    if len(text) > _MAX_TEXT:
        raise ValueError(f"a duration of {len(text)} characters is not plausible ({HINT})")
    if text.startswith("-"):
        raise ValueError(f'must not be negative, got "{text}"')
    micros = Decimal(0)
    pos = 0
    while pos < len(text):
        match = _PART_RE.match(text, pos)
        if match is None:
            raise ValueError(f'"{text}" is not a duration ({HINT})')
        number, unit = match.groups()
        if not unit:
            where = "" if pos == 0 else f" after {text[:pos]}"
            raise ValueError(f'"{text}" is missing a unit{where} ({HINT})')
        if unit == "d":
            hours = (Decimal(number) * 24).normalize()
            raise ValueError(f'"{text}": days are not supported, use hours (e.g. "{hours:f}h")')
        if unit not in _MICROS:
            raise ValueError(f'"{text}": unknown unit "{unit}" (use ms, s, m or h)')
        with localcontext(prec=200):
            micros += Decimal(number) * _MICROS[unit]
        pos = match.end()
    if micros != micros.to_integral_value():
        raise ValueError(f'"{text}" is finer than a microsecond')
    if micros > _MAX_MICROS:
        raise ValueError(f'"{text}" is too long a duration')
    if micros == 0 and not allow_zero:
        raise ValueError(f'must be greater than zero, got "{text}"')
    return timedelta(microseconds=int(micros))


def format_duration(td: timedelta) -> str:
    """The shortest Go-style form of a duration: "1m30s", "500ms", "1.5s", "2h", "0s"."""
    micros = td // timedelta(microseconds=1)
    if micros == 0:
        return "0s"
    sign = "-" if micros < 0 else ""
    micros = abs(micros)
    if micros < _MICROS["s"]:
        return f"{sign}{_decimal(micros, _MICROS['ms'])}ms"
    hours, micros = divmod(micros, _MICROS["h"])
    minutes, micros = divmod(micros, _MICROS["m"])
    parts = [sign]
    if hours:
        parts.append(f"{hours}h")
    if minutes:
        parts.append(f"{minutes}m")
    if micros:
        parts.append(f"{_decimal(micros, _MICROS['s'])}s")
    return "".join(parts)


def _decimal(amount: int, unit: int) -> str:
    whole, rest = divmod(amount, unit)
    if not rest:
        return str(whole)
    digits = len(str(unit)) - 1
    return f"{whole}.{rest:0{digits}d}".rstrip("0")
