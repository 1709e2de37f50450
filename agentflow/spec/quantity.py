"""CPU and memory quantities, written the way Kubernetes writes them ("100m", "0.5", "64Mi", "1G")."""

from __future__ import annotations

import math
import re
from decimal import Decimal, localcontext

from agentflow.spec.errors import kind_of

MAX_CPU_CORES = 1_000_000
MAX_CPU_MILLIS = MAX_CPU_CORES * 1000
MAX_MEMORY_BYTES = 2**63 - 1  # what fits the int64 of the wire format

CPU_HINT = "use e.g. 100m, 0.5 or 2"
MEMORY_HINT = "use e.g. 64Mi, 1Gi, 512M or a byte count"

_NUMBER = r"(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)"
_CPU_RE = re.compile(rf"({_NUMBER})(m?)")
_MEMORY_RE = re.compile(rf"({_NUMBER})([A-Za-z]*)")

# Suffix -> multiplier, binary first so formatting prefers them on a tie.
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}
_MEMORY_SUFFIXES = {"": 1, **_BINARY, **_DECIMAL}

# Longer texts are refused so that decimal arithmetic below is always exact.
_MAX_TEXT = 64


def _number_text(value: object, what: str, hint: str) -> str:
    """The text of a quantity given as a YAML string or number."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"must be a {what} quantity ({hint}), got {kind_of(value)}")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value} is not a {what} quantity ({hint})")
        text = format(Decimal(repr(value)), "f")
    else:
        text = str(value).strip()
    if len(text) > _MAX_TEXT:
        raise ValueError(f"a {what} quantity of {len(text)} characters is not plausible ({hint})")
    return text


def parse_cpu(value: object) -> int:
    """Millicores of a CPU quantity: "100m" -> 100, "0.5" -> 500, 2 -> 2000."""
    text = _number_text(value, "CPU", CPU_HINT)
    if text.startswith("-"):
        raise ValueError(f'CPU must be greater than zero, got "{text}"')
    match = _CPU_RE.fullmatch(text)
    if match is None:
        raise ValueError(f'"{text}" is not a CPU quantity ({CPU_HINT})')
    number, milli = match.groups()
    with localcontext(prec=200):
        millis = Decimal(number) if milli else Decimal(number) * 1000
    if millis == 0:
        raise ValueError(f'CPU must be greater than zero, got "{text}"')
    if millis != millis.to_integral_value():
        raise ValueError(f'"{text}" is finer than a millicore (the smallest CPU amount is 1m)')
    if millis > MAX_CPU_MILLIS:
        raise ValueError(f'"{text}" is more than {MAX_CPU_CORES} cores')
    return int(millis)


def parse_memory(value: object) -> int:
    """Bytes of a memory quantity: "64Mi" -> 67108864, "1G" -> 10**9, 4096 -> 4096."""
    text = _number_text(value, "memory", MEMORY_HINT)
    if text.startswith("-"):
        raise ValueError(f'memory must be greater than zero, got "{text}"')
    match = _MEMORY_RE.fullmatch(text)
    if match is None or match.group(2) not in _MEMORY_SUFFIXES:
        raise ValueError(f'"{text}" is not a memory quantity ({MEMORY_HINT})')
    number, suffix = match.groups()
    with localcontext(prec=200):
        amount = Decimal(number) * _MEMORY_SUFFIXES[suffix]
    if amount == 0:
        raise ValueError(f'memory must be greater than zero, got "{text}"')
    if amount != amount.to_integral_value():
        raise ValueError(f'"{text}" is not a whole number of bytes')
    if amount > MAX_MEMORY_BYTES:
        raise ValueError(f'"{text}" is too large (at most {MAX_MEMORY_BYTES} bytes)')
    return int(amount)


def format_cpu(millis: int) -> str:
    """The canonical form of a CPU amount: whole cores as "2", anything else as "1500m"."""
    if millis <= 0:
        raise ValueError(f"CPU must be greater than zero, got {millis} millicores")
    if millis % 1000 == 0:
        return str(millis // 1000)
    return f"{millis}m"


def format_bytes(n: int) -> str:
    """A size to read, not to parse back: ``64Mi``, ``1Gi``, ``512Ki``, ``3.1Mi``, ``17B``."""
    for unit, size in (("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)):
        if n >= size:
            return f"{n // size}{unit}" if n % size == 0 else f"{n / size:.1f}{unit}"
    return f"{n}B"


def format_memory(num_bytes: int) -> str:
    """The shortest exact form of a byte count ("64Mi", "1G", "1000"), binary suffixes on a tie."""
    if num_bytes <= 0:
        raise ValueError(f"memory must be greater than zero, got {num_bytes} bytes")
    best = str(num_bytes)
    for suffix, factor in (_BINARY | _DECIMAL).items():
        if num_bytes % factor == 0:
            candidate = f"{num_bytes // factor}{suffix}"
            if len(candidate) < len(best):
                best = candidate
    return best
