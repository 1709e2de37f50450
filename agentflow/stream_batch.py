"""Several stream messages sent as one: what waits in a sender's queue goes out together.

Each message on a gRPC stream costs both ends a fixed amount of work (framing, flow control, a
wake-up of the reader and of the writer), whatever its size. When messages pile up (the acks of
one group commit, the assignments of one scheduling pass, the results of steps that ended
together) a sender takes every one that waits and writes them as one batch message, cut so that
no batch holds more than `MAX_BATCH_MESSAGES` messages or `MAX_BATCH_BYTES` bytes. A message
that waits alone goes out alone, as before, so a quiet stream sends exactly what it did.

Both ends of the node stream say in their metadata that they read batches (see
`agentflow.transport.BATCHES_METADATA`); a peer that did not say so gets only single messages.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from typing import Protocol, TypeVar

MAX_BATCH_MESSAGES = 256
MAX_BATCH_BYTES = 4 * 1024 * 1024
"""A batch stays far below the stream's message limit (`transport.MAX_MESSAGE_BYTES`); one
message larger than this is sent alone."""

T = TypeVar("T")


class Sized(Protocol):
    def ByteSize(self) -> int: ...  # protobuf's name


M = TypeVar("M", bound=Sized)


def take_waiting(queue: asyncio.Queue[T], first: T, *, limit: int = MAX_BATCH_MESSAGES) -> list[T]:
    """`first` (just taken from `queue`) and what else waits in it now, up to `limit` in all,
    in queue order; never waits."""
    taken = [first]
    while len(taken) < limit:
        try:
            taken.append(queue.get_nowait())
        except asyncio.QueueEmpty:
            break
    return taken


def groups(messages: Sequence[M], *, max_bytes: int = MAX_BATCH_BYTES) -> Iterator[Sequence[M]]:
    """`messages` in order, cut into runs of at most `max_bytes` together (a larger message is a
    run of its own)."""
    start, size = 0, 0
    for i, message in enumerate(messages):
        n = message.ByteSize()
        if i > start and size + n > max_bytes:
            yield messages[start:i]
            start, size = i, 0
        size += n
    if start < len(messages):
        yield messages[start:]
