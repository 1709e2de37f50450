"""DrainState: what the control plane last said about draining, and waiting for its next word."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry

from noded.drain import DrainState
from noded.metrics import NodeMetrics

pytestmark = pytest.mark.component


async def test_waiters_wake_on_the_next_update_only() -> None:
    registry = CollectorRegistry()
    state = DrainState(NodeMetrics(registry))
    seen = state.updates
    waiters = [asyncio.create_task(state.next_update(seen)) for _ in range(2)]
    for _ in range(3):  # let them run to where they wait
        await asyncio.sleep(0)
    assert not any(w.done() for w in waiters)

    deadline = datetime(2026, 1, 1, tzinfo=UTC)
    state.update(True, deadline)
    async with asyncio.timeout(5):
        await asyncio.gather(*waiters)
    assert (state.draining, state.deadline, state.updates) == (True, deadline, seen + 1)
    assert registry.get_sample_value("agentflow_node_draining") == 1.0

    # an update that changes nothing still counts as an answer
    later = asyncio.create_task(state.next_update(state.updates))
    state.update(True, deadline)
    async with asyncio.timeout(5):
        await later
    state.update(False, None)
    assert registry.get_sample_value("agentflow_node_draining") == 0.0
    await asyncio.wait_for(state.next_update(seen), timeout=1)  # already past: returns at once
