"""Value parsers for settings: each accepts a string or a native TOML value."""

from __future__ import annotations

import socket
from datetime import timedelta
from pathlib import Path
from typing import Any

from agentflow.spec.duration import parse_duration
from agentflow.spec.errors import kind_of
from agentflow.spec.quantity import parse_cpu, parse_memory


def address(value: Any) -> str:
    """`host:port` with port 0..65535 (0 picks a free port); `[::1]:7070` for IPv6."""
    text = str(value).strip()
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise ValueError(f'"{text}" is not an address (expected host:port, e.g. 127.0.0.1:7070)')
    if not (port.isascii() and port.isdigit()) or int(port) > 65535:
        raise ValueError(f'"{text}": port must be a number from 0 to 65535')
    bracketed = host.startswith("[") and host.endswith("]")
    inner = host[1:-1] if bracketed else host
    if not inner or any(c.isspace() or c in "[]" for c in inner):
        raise ValueError(f'"{text}": "{host}" is not a host name or IP address')
    if ":" in inner and not bracketed:
        raise ValueError(f'"{text}": write an IPv6 address in brackets, e.g. [::1]:7070')
    return text


def nats_url(value: Any) -> str:
    """A NATS server URL (`nats://host:port`, `tls://host:port`), or "" for none."""
    text = str(value).strip()
    if not text:
        return ""
    scheme, sep, rest = text.partition("://")
    if not sep or scheme not in ("nats", "tls"):
        raise ValueError(f'"{text}" is not a NATS URL (expected nats://host:port or tls://host:port)')
    hostport = rest.rpartition("@")[2].rstrip("/")
    host, colon, port = hostport.rpartition(":")
    if not hostport or (colon and not (port.isdigit() and 0 < int(port) <= 65535)) or (colon and not host):
        raise ValueError(f'"{text}" is not a NATS URL: expected a host and an optional port from 1 to 65535')
    return text


def split_address(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    return host.strip("[]"), int(port)


def path(value: Any) -> Path:
    text = str(value).strip()
    if not text:
        raise ValueError("must be a path, got an empty string")
    return Path(text).expanduser()


def duration(value: Any) -> timedelta:
    return parse_duration(str(value))


def duration_or_zero(value: Any) -> timedelta:
    return parse_duration(str(value), allow_zero=True)


def positive_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"must be a positive integer, got {value!r}")
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ValueError(f'must be a positive integer, got "{value}"') from None
    if number < 1:
        raise ValueError(f"must be a positive integer, got {number}")
    return number


def optional_cpu(value: Any) -> int | None:
    return None if str(value).strip() in ("", "auto") else parse_cpu(value)


def optional_memory(value: Any) -> int | None:
    return None if str(value).strip() in ("", "auto") else parse_memory(value)


def labels(value: Any) -> dict[str, str]:
    """`k=v,k2=v2` or a TOML table."""
    if isinstance(value, dict):
        items = []
        for key, val in value.items():
            if not isinstance(val, str):
                raise ValueError(f'label "{key}" must be a string, got {kind_of(val)}')
            items.append((str(key), val))
    else:
        items = []
        for part in str(value).split(","):
            part = part.strip()
            if not part:
                continue
            key, sep, val = part.partition("=")
            if not sep or not key.strip():
                raise ValueError(f'label "{part}" is not key=value')
            items.append((key.strip(), val.strip()))
    for key, _ in items:
        bare = key.replace("-", "").replace("_", "").replace(".", "").replace("/", "")
        if not (bare.isascii() and bare.isalnum()):
            raise ValueError(f'label key "{key}" may only hold letters, digits, "-", "_", "." and "/"')
    return dict(items)


def choice(*allowed: str) -> Any:
    def parse(value: Any) -> str:
        text = str(value).strip().lower()
        if text not in allowed:
            raise ValueError(f'"{value}" is not one of {", ".join(allowed)}')
        return text

    return parse


def node_name(value: Any) -> str:
    text = str(value).strip()
    if not text or len(text) > 63 or not all(c.isascii() and (c.isalnum() or c in "-_.") for c in text):
        raise ValueError(f'"{text}" is not a node name (1-63 letters, digits, "-", "_", ".")')
    return text


def default_node_name() -> str:
    return socket.gethostname().split(".")[0] or "node"
