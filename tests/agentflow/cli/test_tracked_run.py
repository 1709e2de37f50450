"""The run `--wait` holds while watching: whole runs replace it, changed steps are merged in."""

from __future__ import annotations

import pytest

from agentflow.cli.commands import _TrackedRun
from agentflow.v1 import controlplane_pb2, types_pb2

pytestmark = pytest.mark.unit

PENDING = types_pb2.STEP_STATUS_PENDING
RUNNING = types_pb2.STEP_STATUS_RUNNING
SUCCEEDED = types_pb2.STEP_STATUS_SUCCEEDED


def _step(name: str, status: int = types_pb2.STEP_STATUS_PENDING) -> types_pb2.Step:
    return types_pb2.Step(name=name, status=status)


def _whole(*steps: types_pb2.Step, status: int = types_pb2.RUN_STATUS_RUNNING) -> controlplane_pb2.WatchRunResponse:
    return controlplane_pb2.WatchRunResponse(run=types_pb2.Run(id="r1", status=status, steps=steps))


def test_changed_steps_are_merged_in_the_runs_order_and_whole_runs_replace() -> None:
    tracked = _TrackedRun()
    tracked.apply(_whole(_step("a"), _step("b"), _step("c")))
    delta = controlplane_pb2.WatchRunResponse(
        run=types_pb2.Run(id="r1", status=types_pb2.RUN_STATUS_RUNNING),
        steps=[_step("c", RUNNING), _step("a", SUCCEEDED), _step("zz", RUNNING)],  # zz: not of this run
    )
    tracked.apply(delta)
    run = tracked.run()
    assert [(s.name, s.status) for s in run.steps] == [("a", SUCCEEDED), ("b", PENDING), ("c", RUNNING)]
    assert tracked.head is not None and list(tracked.head.steps) == []

    tracked.apply(_whole(_step("a", SUCCEEDED), status=types_pb2.RUN_STATUS_SUCCEEDED))
    run = tracked.run()
    assert run.status == types_pb2.RUN_STATUS_SUCCEEDED
    assert [s.name for s in run.steps] == ["a"]
