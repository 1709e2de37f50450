"""ResourceUsage in its stored form and on the wire."""

from __future__ import annotations

import math

import pytest

from agentflow import wire
from agentflow.usage import NO_USAGE, ResourceUsage, UsageResource
from agentflow.usage_pb import usage_from_pb, usage_to_pb
from agentflow.v1 import types_pb2
from agentflow.vocabulary import ResourceLimit

pytestmark = pytest.mark.unit

USAGE = ResourceUsage(
    cpu_seconds=0.125,
    peak_memory_bytes=5 << 20,
    wall_seconds=2.5,
    fetched_bytes=512 * 1024,
    host_calls=12,
    limits_hit=(ResourceLimit.FETCH_SIZE, ResourceLimit.WALL_TIME),
)


def test_stored_form_round_trips_and_names_every_figure() -> None:
    assert ResourceUsage.from_json(USAGE.to_json()) == USAGE
    assert set(USAGE.to_dict()) == {*UsageResource, "limits_hit"}
    assert USAGE.to_dict()["limits_hit"] == ["fetch size", "wall time"]
    assert ResourceUsage.from_json("") is NO_USAGE


def test_figures_are_the_metric_s_resources() -> None:
    assert USAGE.figures() == {
        UsageResource.CPU_SECONDS: 0.125,
        UsageResource.PEAK_MEMORY_BYTES: float(5 << 20),
        UsageResource.WALL_SECONDS: 2.5,
        UsageResource.FETCHED_BYTES: 512 * 1024.0,
        UsageResource.HOST_CALLS: 12.0,
    }


def test_wire_form_round_trips() -> None:
    assert usage_from_pb(usage_to_pb(USAGE), field="result.usage") == USAGE
    assert usage_from_pb(types_pb2.ResourceUsage(), field="result.usage") == NO_USAGE


@pytest.mark.parametrize(
    ("message", "problem"),
    [
        (types_pb2.ResourceUsage(cpu_seconds=-1), r"result\.usage\.cpu_seconds: -1\.0 is not a non-negative number"),
        (types_pb2.ResourceUsage(wall_seconds=math.nan), r"result\.usage\.wall_seconds: nan is not"),
        (types_pb2.ResourceUsage(host_calls=-3), r"result\.usage\.host_calls: -3 is not"),
        (types_pb2.ResourceUsage(limits_hit=[1, 77]), r"result\.usage\.limits_hit\[1\]: 77 is not a known value"),
        (types_pb2.ResourceUsage(limits_hit=[0]), r"result\.usage\.limits_hit\[0\]: must be set"),
    ],
    ids=["negative-cpu", "nan-wall", "negative-calls", "unknown-limit", "unset-limit"],
)
def test_a_peer_s_bad_figures_are_invalid_fields(message: types_pb2.ResourceUsage, problem: str) -> None:
    with pytest.raises(wire.InvalidField, match=problem):
        usage_from_pb(message, field="result.usage")
