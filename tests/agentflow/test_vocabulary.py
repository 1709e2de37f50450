"""The vocabulary and the protobuf enums never drift apart: every member has its wire value."""

from __future__ import annotations

import enum

import pytest

from agentflow import vocabulary as v
from agentflow import wire
from agentflow.v1 import types_pb2

pytestmark = pytest.mark.unit

PAIRS = [
    (v.RunStatus, types_pb2.RunStatus),
    (v.StepStatus, types_pb2.StepStatus),
    (v.NodeStatus, types_pb2.NodeStatus),
    (v.Isolation, types_pb2.Isolation),
    (v.StepOutcome, types_pb2.StepOutcome),
    (v.FailureKind, types_pb2.FailureKind),
    (v.ResourceLimit, types_pb2.ResourceLimit),
    (v.SandboxLayer, types_pb2.SandboxLayer),
]


@pytest.mark.parametrize(("cls", "pb_enum"), PAIRS, ids=[c.__name__ for c, _ in PAIRS])
def test_every_member_round_trips_and_every_wire_value_has_a_member(cls: type[enum.Enum], pb_enum) -> None:
    assert [wire.from_pb(cls, pb_enum, wire.to_pb(m, pb_enum), field="f") for m in cls] == list(cls)
    wire_values = [n for n in pb_enum.values() if n != 0]
    assert sorted(wire.to_pb(m, pb_enum) for m in cls) == sorted(wire_values)


def test_unset_and_unknown_wire_values_are_invalid_fields() -> None:
    with pytest.raises(wire.InvalidField, match=r"result\.outcome: must be set"):
        wire.from_pb(v.StepOutcome, types_pb2.StepOutcome, 0, field="result.outcome")
    with pytest.raises(wire.InvalidField, match=r"result\.failure_kind: 99 is not a known value"):
        wire.from_pb(v.FailureKind, types_pb2.FailureKind, 99, field="result.failure_kind")


def test_limit_kinds_are_the_ones_that_raise_limit_hit_events() -> None:
    assert {k: k.limit for k in v.FailureKind if k.is_limit} == {
        "memory": "memory",
        "timeout": "wall time",
        "output_limit": "output",
        "host_call_limit": "host calls",
    }
    # Every limit that can stop a step is some failure kind's; fetch size only cuts a response.
    assert {k.limit for k in v.FailureKind if k.limit} == set(v.ResourceLimit) - {v.ResourceLimit.FETCH_SIZE}


def test_event_types_are_unique_dotted_names() -> None:
    values = [e.value for e in v.EventType]
    assert len(values) == len(set(values))
    assert all(e.value == e.name.lower().replace("_", ".", 1) for e in v.EventType)
