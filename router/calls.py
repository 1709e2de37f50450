"""An upstream call in flight, which any number of clients follow, and the registry that coalesces them.

The call runs in its own task, not in the handler of the client that started it: a client that
goes away mid-call does not stop it, and its answer is still cached, journaled and billed. Each
follower reads the call's text deltas from the start, then its final `Completion` (or its error).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from router.completion import Completion
from router.errors import Error


class Call:
    __slots__ = ("_changed", "_deltas", "_done", "completion", "error", "model", "provider", "tickets", "upstream_s")

    def __init__(self) -> None:
        self._deltas: list[str] = []
        self._changed: asyncio.Event | None = None  # made by the first stream follower
        self._done = asyncio.get_running_loop().create_future()
        self.completion: Completion | None = None
        self.error: Error | None = None
        self.tickets: list[Any] = []  # the engine's tickets of every client following this call
        self.provider = ""
        self.model = ""  # the model name streams announce, set before the first delta
        self.upstream_s = 0.0

    @property
    def done(self) -> bool:
        return self._done.done()

    @property
    def streamed(self) -> bool:
        return bool(self._deltas)

    def _event(self) -> asyncio.Event:
        if self._changed is None:
            self._changed = asyncio.Event()
        return self._changed

    def publish(self, text: str) -> None:
        self._deltas.append(text)
        if self._changed is not None:
            self._changed.set()

    def finish(self, completion: Completion) -> None:
        self.completion = completion
        self._done.set_result(None)
        if self._changed is not None:
            self._changed.set()

    def fail(self, error: Error) -> None:
        self.error = error
        self._done.set_result(None)
        if self._changed is not None:
            self._changed.set()

    async def result(self) -> Completion:
        await asyncio.shield(self._done)
        if self.error is not None:
            raise self.error
        assert self.completion is not None
        return self.completion

    async def first(self) -> None:
        """Wait until there is something to send: a first delta, the answer or the error."""
        changed = self._event()
        while not self._deltas and not self._done.done():
            changed.clear()
            await changed.wait()

    async def deltas(self) -> AsyncIterator[str]:
        """Every delta from the first; ends when the call is done (then read `completion`/`error`)."""
        sent = 0
        changed = self._event()
        while True:
            while sent < len(self._deltas):
                yield self._deltas[sent]
                sent += 1
            if self._done.done():
                return
            changed.clear()
            await changed.wait()


class Inflight:
    """Identical cacheable requests in flight share one `Call`, keyed by their request hash."""

    def __init__(self) -> None:
        self._calls: dict[str, Call] = {}

    def __len__(self) -> int:
        return len(self._calls)

    def get(self, key: str) -> Call | None:
        return self._calls.get(key)

    def add(self, key: str, call: Call) -> None:
        self._calls[key] = call

    def remove(self, key: str, call: Call) -> None:
        if self._calls.get(key) is call:
            del self._calls[key]
