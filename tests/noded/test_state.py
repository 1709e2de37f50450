"""The node-state contract, run against the SQLite and in-memory implementations alike."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from disks import fill, mounted_tmpfs

from agentflow.attempt import AttemptKey
from agentflow.usage import ResourceUsage
from agentflow.vocabulary import FailureKind, ResourceLimit, StepOutcome
from noded.errors import StateError, StateFull
from noded.messages import StepResult
from noded.state import FailingNodeState, MemoryNodeState, NodeState, SqliteNodeState

pytestmark = [pytest.mark.unit, pytest.mark.timeout(10)]

A1 = AttemptKey("run-a", "fetch", 1)
A2 = AttemptKey("run-a", "fetch", 2)
B1 = AttemptKey("run-b", "count", 1)
C1 = AttemptKey("run-c", "shout", 1)


def ok(key: AttemptKey, output: str) -> StepResult:
    return StepResult(key=key, outcome=StepOutcome.SUCCEEDED, output_json=json.dumps(output))


@pytest.fixture(params=["sqlite", "memory"])
async def state(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[NodeState]:
    impl: NodeState
    if request.param == "sqlite":
        impl = await SqliteNodeState.open(tmp_path / "state" / "noded.db")
    else:
        impl = MemoryNodeState()
    try:
        yield impl
    finally:
        await impl.close()


async def test_node_id_starts_unset_and_round_trips(state: NodeState) -> None:
    assert await state.node_id() is None
    await state.set_node_id("node-123")
    assert await state.node_id() == "node-123"
    await state.set_node_id("node-456")
    assert await state.node_id() == "node-456"


async def test_outbox_starts_empty(state: NodeState) -> None:
    assert await state.pending_results() == []


async def test_pending_results_in_put_order(state: NodeState) -> None:
    await state.put_result(ok(C1, "c"))
    await state.put_result(ok(A1, "a1"))
    await state.put_result(ok(B1, "b"))
    await state.put_result(ok(A2, "a2"))
    assert await state.pending_results() == [ok(C1, "c"), ok(A1, "a1"), ok(B1, "b"), ok(A2, "a2")]


async def test_attempts_of_one_step_are_separate_results(state: NodeState) -> None:
    await state.put_result(ok(A1, "first"))
    await state.put_result(ok(A2, "second"))
    await state.delete_result(A1)
    assert await state.pending_results() == [ok(A2, "second")]


async def test_put_on_the_same_key_replaces_and_moves_to_the_end(state: NodeState) -> None:
    await state.put_result(ok(A1, "old"))
    await state.put_result(ok(B1, "b"))
    await state.put_result(ok(AttemptKey("run-a", "fetch", 1), "new"))
    assert await state.pending_results() == [ok(B1, "b"), ok(A1, "new")]


async def test_delete_removes_only_that_result(state: NodeState) -> None:
    for key in (A1, B1, C1):
        await state.put_result(ok(key, key.step))
    await state.delete_result(B1)
    assert await state.pending_results() == [ok(A1, "fetch"), ok(C1, "shout")]


async def test_delete_of_an_unknown_key_is_a_no_op(state: NodeState) -> None:
    await state.put_result(ok(A1, "a"))
    await state.delete_result(AttemptKey("run-x", "nope", 9))
    await state.delete_result(A1)
    await state.delete_result(A1)
    assert await state.pending_results() == []


async def test_results_round_trip_exactly(state: NodeState) -> None:
    failed = StepResult(
        key=A1,
        outcome=StepOutcome.FAILED,
        failure_kind=FailureKind.MEMORY,
        error="memory limit of 32Mi reached",
        exit_code=137,
        stderr="\x00 a NUL, \u2603 and a new line\n" * 100,
        duration=timedelta(seconds=1, microseconds=250),
        denied_host_calls=3,
        usage=ResourceUsage(
            cpu_seconds=0.5,
            peak_memory_bytes=33 * 1024 * 1024,
            wall_seconds=1.25,
            fetched_bytes=10,
            host_calls=7,
            limits_hit=(ResourceLimit.FETCH_SIZE, ResourceLimit.MEMORY),
        ),
    )
    cancelled = StepResult(key=B1, outcome=StepOutcome.CANCELLED, error="cancelled by the control plane")
    await state.put_result(failed)
    await state.put_result(cancelled)
    assert await state.pending_results() == [failed, cancelled]


async def test_sqlite_state_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / "noded.db"
    first = await SqliteNodeState.open(path)
    await first.set_node_id("node-abc")
    await first.put_result(ok(B1, "b"))
    await first.put_result(ok(A1, "a"))
    await first.put_result(ok(C1, "c"))
    await first.delete_result(C1)
    await first.close()

    second = await SqliteNodeState.open(path)
    try:
        assert await second.node_id() == "node-abc"
        assert await second.pending_results() == [ok(B1, "b"), ok(A1, "a")]
        await second.put_result(ok(C1, "after"))
        assert [r.key for r in await second.pending_results()] == [B1, A1, C1]
    finally:
        await second.close()


async def test_sqlite_files_of_different_paths_are_independent(tmp_path: Path) -> None:
    one = await SqliteNodeState.open(tmp_path / "one.db")
    two = await SqliteNodeState.open(tmp_path / "two.db")
    try:
        await one.set_node_id("one")
        await one.put_result(ok(A1, "a"))
        assert (await two.node_id(), await two.pending_results()) == (None, [])
    finally:
        await one.close()
        await two.close()


@pytest.fixture(params=["sqlite-on-a-full-disk", "failing"])
async def full_state(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[NodeState]:
    """A state whose disk is full: the real store on a filled tmpfs, and the fault-injection fake."""
    if request.param == "failing":
        yield FailingNodeState()
        return
    with mounted_tmpfs(tmp_path / "disk", size="2m") as disk:
        impl = await SqliteNodeState.open(disk / "noded.db")
        await impl.set_node_id("before")
        fill(disk)
        try:
            yield impl
        finally:
            await impl.close()


async def test_a_full_disk_refuses_results_with_the_same_typed_error(full_state: NodeState) -> None:
    with pytest.raises(StateFull, match="cannot write a result to the outbox: the disk is full") as info:
        await full_state.put_result(ok(A1, "a" * 8192))
    assert isinstance(info.value, StateError)
    assert await full_state.pending_results() == []
