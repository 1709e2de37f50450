"""The nodes a scheduling pass places on: decoded again when a node changes, not on every pass."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agentflow.vocabulary import Isolation, NodeStatus
from controlplane.domain import Resources
from controlplane.engine.placement import PlacementNodes
from controlplane.store import NodeRecord, StateStore

pytestmark = pytest.mark.component

NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
LIVE = {"a": NodeStatus.READY, "b": NodeStatus.READY}


def record(node_id: str, *, slots: int = 4) -> NodeRecord:
    return NodeRecord(id=node_id, name=f"node-{node_id}", status=NodeStatus.READY, isolation=Isolation.NONE,
                      labels={}, capacity=Resources(cpu_millis=1000, memory_bytes=1 << 30, slots=slots),
                      version="1", registered_at=NOW, last_heartbeat=NOW)  # fmt: skip


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[StateStore]:
    store = await StateStore.open(tmp_path / "state.db")
    async with store.transaction() as tx:
        tx.upsert_node(record("a"))
        tx.upsert_node(record("b"))
    try:
        yield store
    finally:
        await store.close()


async def test_heartbeats_do_not_make_a_pass_decode_the_nodes_again(store: StateStore) -> None:
    nodes = PlacementNodes()
    async with store.transaction() as tx:
        first = nodes.records(tx)
        views = nodes.snapshot(tx, LIVE).nodes
    async with store.transaction() as tx:
        tx.touch_node("a", now=NOW + timedelta(seconds=5))
    async with store.transaction() as tx:
        assert nodes.records(tx) is first
        again = nodes.snapshot(tx, LIVE).nodes
    assert [v.node_id for v in again] == ["a", "b"]
    assert all(x is y for x, y in zip(views, again, strict=True))  # idle nodes keep their view


async def test_a_drain_a_new_capacity_and_a_lost_stream_show_in_the_next_pass(store: StateStore) -> None:
    nodes = PlacementNodes()
    async with store.transaction() as tx:
        nodes.snapshot(tx, LIVE)
        tx.set_node_drain("a", draining=True, deadline=None)
        tx.upsert_node(record("b", slots=9))
    async with store.transaction() as tx:
        a, b = nodes.snapshot(tx, LIVE).nodes
        assert (a.status, b.capacity.slots) == (NodeStatus.DRAINING, 9)
        a, b = nodes.snapshot(tx, {"a": NodeStatus.READY}).nodes  # b's stream is gone: not in the live set
        assert (a.status, b.status) == (NodeStatus.DRAINING, NodeStatus.DOWN)
        assert nodes.by_id(tx)["b"].capacity.slots == 9
