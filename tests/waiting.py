"""Waiting for a condition, with a deadline, instead of sleeping and hoping (async tiers)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any

WAIT_S = 5.0  # the longest any single expected message or state may take to show up
POLL_S = 0.02


async def eventually(check: Callable[[], Any | Awaitable[Any]], *, within: float = WAIT_S, what: str = "") -> Any:
    """Call `check` (sync or async) until it returns something truthy; fail after `within` seconds."""
    deadline = time.monotonic() + within
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if inspect.isawaitable(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(POLL_S)
    raise AssertionError(f"not within {within}s: {what or check!r} (last: {last!r})")
