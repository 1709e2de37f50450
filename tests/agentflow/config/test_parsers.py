"""Table tests for the value parsers of `agentflow.config.parsers`."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from agentflow.config import parsers

pytestmark = pytest.mark.unit

ADDRESSES = {
    "ipv4": ("127.0.0.1:7070", "127.0.0.1:7070"),
    "port-zero": ("127.0.0.1:0", "127.0.0.1:0"),
    "highest-port": ("0.0.0.0:65535", "0.0.0.0:65535"),
    "host-name": ("localhost:9470", "localhost:9470"),
    "ipv6-bracketed": ("[::1]:7070", "[::1]:7070"),
    "ipv6-any": ("[::]:0", "[::]:0"),
    "surrounding-blanks": ("  10.0.0.1:80 \n", "10.0.0.1:80"),
}


@pytest.mark.parametrize(("raw", "expected"), ADDRESSES.values(), ids=ADDRESSES.keys())
def test_address_accepts(raw: str, expected: str) -> None:
    assert parsers.address(raw) == expected


BAD_ADDRESSES = {
    "no-port": ("localhost", "is not an address"),
    "no-host": (":7070", "is not an address"),
    "empty": ("", "is not an address"),
    "empty-port": ("localhost:", "port must be a number from 0 to 65535"),
    "port-too-big": ("localhost:65536", "port must be a number from 0 to 65535"),
    "negative-port": ("localhost:-1", "port must be a number from 0 to 65535"),
    "signed-port": ("localhost:+80", "port must be a number from 0 to 65535"),
    "named-port": ("localhost:http", "port must be a number from 0 to 65535"),
    "superscript-port": ("localhost:\u00b2", "port must be a number from 0 to 65535"),
    "arabic-indic-port": ("localhost:\u0663", "port must be a number from 0 to 65535"),
    "ipv6-without-brackets": ("::1:7070", "write an IPv6 address in brackets"),
    "unclosed-bracket": ("[::1:7070", "is not a host name or IP address"),
    "empty-brackets": ("[]:7070", "is not a host name or IP address"),
    "blank-in-host": ("local host:7070", "is not a host name or IP address"),
}


@pytest.mark.parametrize(("raw", "reason"), BAD_ADDRESSES.values(), ids=BAD_ADDRESSES.keys())
def test_address_rejects(raw: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason) as info:
        parsers.address(raw)
    assert f'"{raw.strip()}"' in str(info.value)


SPLITS = {
    "ipv4": ("127.0.0.1:7070", ("127.0.0.1", 7070)),
    "port-zero": ("localhost:0", ("localhost", 0)),
    "ipv6": ("[::1]:9470", ("::1", 9470)),
}


@pytest.mark.parametrize(("raw", "expected"), SPLITS.values(), ids=SPLITS.keys())
def test_split_address(raw: str, expected: tuple[str, int]) -> None:
    assert parsers.split_address(parsers.address(raw)) == expected


LABELS = {
    "one": ("zone=eu", {"zone": "eu"}),
    "two": ("zone=eu,gpu=a100", {"zone": "eu", "gpu": "a100"}),
    "blanks-around-parts": (" zone = eu , gpu=a100 ", {"zone": "eu", "gpu": "a100"}),
    "empty-parts-skipped": ("zone=eu,,gpu=a100,", {"zone": "eu", "gpu": "a100"}),
    "empty-string": ("", {}),
    "empty-value": ("spot=", {"spot": ""}),
    "equals-in-value": ("expr=a=b", {"expr": "a=b"}),
    "prefixed-key": ("kubernetes.io/arch=amd64", {"kubernetes.io/arch": "amd64"}),
    "last-wins": ("zone=eu,zone=us", {"zone": "us"}),
    "toml-table": ({"zone": "eu", "gpu": "a100"}, {"zone": "eu", "gpu": "a100"}),
    "empty-toml-table": ({}, {}),
}


@pytest.mark.parametrize(("raw", "expected"), LABELS.values(), ids=LABELS.keys())
def test_labels_accept(raw: Any, expected: dict[str, str]) -> None:
    assert parsers.labels(raw) == expected


BAD_LABELS = {
    "no-equals": ("zone", 'label "zone" is not key=value'),
    "no-key": ("=eu", 'label "=eu" is not key=value'),
    "second-part-bad": ("zone=eu,gpu", 'label "gpu" is not key=value'),
    "blank-in-key": ("my zone=eu", 'label key "my zone" may only hold'),
    "non-ascii-key": ("zon\u00e9=eu", 'label key "zon\u00e9" may only hold'),
    "toml-empty-key": ({"": "eu"}, 'label key "" may only hold'),
    "toml-bad-key": ({"a b": "eu"}, 'label key "a b" may only hold'),
    "toml-integer-value": ({"cores": 4}, 'label "cores" must be a string, got an integer'),
    "toml-boolean-value": ({"gpu": True}, 'label "gpu" must be a string, got a boolean'),
    "toml-nested-table": ({"zone": {"a": "b"}}, 'label "zone" must be a string, got a mapping'),
}


@pytest.mark.parametrize(("raw", "reason"), BAD_LABELS.values(), ids=BAD_LABELS.keys())
def test_labels_reject(raw: Any, reason: str) -> None:
    with pytest.raises(ValueError) as info:
        parsers.labels(raw)
    assert reason in str(info.value)


DURATIONS = {
    "seconds": ("30s", timedelta(seconds=30)),
    "minutes-and-seconds": ("1m30s", timedelta(seconds=90)),
    "milliseconds": ("500ms", timedelta(milliseconds=500)),
    "fractional-hours": ("1.5h", timedelta(minutes=90)),
    "blanks": (" 2s ", timedelta(seconds=2)),
}


@pytest.mark.parametrize(("raw", "expected"), DURATIONS.values(), ids=DURATIONS.keys())
def test_duration_accepts(raw: str, expected: timedelta) -> None:
    assert parsers.duration(raw) == expected


BAD_DURATIONS = {
    "no-unit": ("5", "missing a unit"),
    "toml-integer": (5, "missing a unit"),
    "zero": ("0s", "must be greater than zero"),
    "negative": ("-1s", "must not be negative"),
    "days": ("1d", "days are not supported"),
    "unknown-unit": ("5x", 'unknown unit "x"'),
    "words": ("soon", "is not a duration"),
    "empty": ("", "must not be empty"),
}


@pytest.mark.parametrize(("raw", "reason"), BAD_DURATIONS.values(), ids=BAD_DURATIONS.keys())
def test_duration_rejects(raw: Any, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parsers.duration(raw)


NODE_NAMES = {
    "simple": ("node-1", "node-1"),
    "dots-and-underscores": ("rack_2.node-3", "rack_2.node-3"),
    "longest": ("n" * 63, "n" * 63),
    "blanks-trimmed": (" worker ", "worker"),
    "toml-integer": (7, "7"),
}


@pytest.mark.parametrize(("raw", "expected"), NODE_NAMES.values(), ids=NODE_NAMES.keys())
def test_node_name_accepts(raw: Any, expected: str) -> None:
    assert parsers.node_name(raw) == expected


BAD_NODE_NAMES = {
    "empty": "",
    "blank": "   ",
    "too-long": "n" * 64,
    "inner-blank": "node 1",
    "slash": "rack/node",
    "colon": "node:1",
    "non-ascii": "n\u00f6de",
}


@pytest.mark.parametrize("raw", BAD_NODE_NAMES.values(), ids=BAD_NODE_NAMES.keys())
def test_node_name_rejects(raw: str) -> None:
    with pytest.raises(ValueError, match="is not a node name"):
        parsers.node_name(raw)


def test_default_node_name_is_a_valid_node_name() -> None:
    name = parsers.default_node_name()
    assert "." not in name
    assert parsers.node_name(name) == name


POSITIVE_INTS = {"string": ("4", 4), "toml-integer": (16, 16), "blanks": (" 2 ", 2)}


@pytest.mark.parametrize(("raw", "expected"), POSITIVE_INTS.values(), ids=POSITIVE_INTS.keys())
def test_positive_int_accepts(raw: Any, expected: int) -> None:
    assert parsers.positive_int(raw) == expected


BAD_POSITIVE_INTS = {
    "zero": (0, "got 0"),
    "negative": ("-3", "got -3"),
    "fraction": ("1.5", 'got "1.5"'),
    "word": ("many", 'got "many"'),
    "toml-boolean": (True, "got True"),
}


@pytest.mark.parametrize(("raw", "reason"), BAD_POSITIVE_INTS.values(), ids=BAD_POSITIVE_INTS.keys())
def test_positive_int_rejects(raw: Any, reason: str) -> None:
    with pytest.raises(ValueError, match="must be a positive integer") as info:
        parsers.positive_int(raw)
    assert reason in str(info.value)


def test_choice_folds_case_and_names_the_allowed_values() -> None:
    parse = parsers.choice("auto", "none")
    assert parse(" AUTO ") == "auto"
    with pytest.raises(ValueError, match='"cgroup3" is not one of auto, none'):
        parse("cgroup3")


QUANTITIES = {
    "cpu-auto": (parsers.optional_cpu, "auto", None),
    "cpu-empty": (parsers.optional_cpu, "", None),
    "cpu-cores": (parsers.optional_cpu, "4", 4000),
    "cpu-millis": (parsers.optional_cpu, "3500m", 3500),
    "cpu-toml-integer": (parsers.optional_cpu, 2, 2000),
    "memory-auto": (parsers.optional_memory, "auto", None),
    "memory-binary": (parsers.optional_memory, "8Gi", 8 * 2**30),
    "memory-toml-integer": (parsers.optional_memory, 4096, 4096),
}


@pytest.mark.parametrize(("parse", "raw", "expected"), QUANTITIES.values(), ids=QUANTITIES.keys())
def test_optional_quantities(parse: Any, raw: Any, expected: int | None) -> None:
    assert parse(raw) == expected


@pytest.mark.parametrize(
    ("parse", "raw"),
    [(parsers.optional_cpu, "lots"), (parsers.optional_memory, "8GB"), (parsers.optional_memory, "0")],
    ids=["cpu-word", "memory-bad-suffix", "memory-zero"],
)
def test_optional_quantities_reject(parse: Any, raw: str) -> None:
    with pytest.raises(ValueError):
        parse(raw)


def test_path_expands_home_and_rejects_empty() -> None:
    assert parsers.path("~/data") == Path.home() / "data"
    assert parsers.path(" /var/lib/agentflow ") == Path("/var/lib/agentflow")
    with pytest.raises(ValueError, match="empty string"):
        parsers.path("  ")
