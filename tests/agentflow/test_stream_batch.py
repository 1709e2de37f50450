"""Taking what waits in a queue, and cutting messages into batches by size."""

from __future__ import annotations

import asyncio

import pytest

from agentflow.stream_batch import groups, take_waiting
from agentflow.v1 import node_pb2

pytestmark = pytest.mark.unit


async def test_take_waiting_takes_what_is_queued_in_order_up_to_the_limit() -> None:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(1, 6):
        queue.put_nowait(i)
    assert take_waiting(queue, 0, limit=4) == [0, 1, 2, 3]
    assert take_waiting(queue, 9) == [9, 4, 5]
    assert take_waiting(queue, 7) == [7]  # nothing else waits: never blocks
    assert queue.empty()


def _message(size: int) -> node_pb2.NodeMessage:
    return node_pb2.NodeMessage(journal=node_pb2.Journal(entries=[{"entry_json": "x" * size}]))


def test_groups_cut_by_size_in_order_and_a_large_message_goes_alone() -> None:
    small = [_message(100) for _ in range(5)]
    each = small[0].ByteSize()
    assert [len(g) for g in groups(small, max_bytes=each * 2)] == [2, 2, 1]
    assert [len(g) for g in groups(small, max_bytes=each * 5)] == [5]
    big = _message(10_000)
    cut = list(groups([small[0], big, small[1]], max_bytes=each * 3))
    assert [list(g) for g in cut] == [[small[0]], [big], [small[1]]]
    assert list(groups([], max_bytes=10)) == []
