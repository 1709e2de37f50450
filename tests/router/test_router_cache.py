"""The exact cache: TTL on the injected clock, size cap with LRU eviction, answers kept on disk."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from agentflow.clock import ManualClock
from router.cache import ExactCache
from router.completion import Completion, Shape, Usage
from router.config import CacheConfig
from router.store import Database

pytestmark = [pytest.mark.component, pytest.mark.timeout(10)]


def answer(text: str, *, raw: bytes | None = None) -> Completion:
    return Completion(id="c1", model="m", text=text, finish_reason="stop", created=1,
                      usage=Usage(input_tokens=3, cached_input_tokens=1, output_tokens=2), raw=raw,
                      raw_shape=Shape.OPENAI if raw else None)  # fmt: skip


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(tmp_path / "router.db")
    try:
        yield database
    finally:
        await database.close()


async def test_entries_expire_after_their_ttl(db: Database) -> None:
    clock = ManualClock()
    cache = ExactCache(db, CacheConfig(ttl=timedelta(minutes=10)), clock)
    cache.put("k", answer("v"))
    clock.tick(599)
    assert (await cache.get("k")) == answer("v")
    clock.tick(1)
    assert await cache.get("k") is None
    assert cache.entries == 0 and cache.bytes == 0


async def test_the_least_recently_used_entries_go_past_the_size_cap(db: Database) -> None:
    probe = ExactCache(db, CacheConfig(), ManualClock())
    probe.put("p", answer("p" * 100))
    size = probe.bytes
    cache = ExactCache(db, CacheConfig(max_size=3 * size + 10), ManualClock())  # room for three
    for key in ("a", "b", "c"):
        cache.put(key, answer(key * 100))
    assert (cache.entries, cache.evictions) == (3, 0)
    await cache.get("a")  # a is now the most recently used
    cache.put("d", answer("d" * 100))
    assert await cache.get("b") is None
    assert (await cache.get("a")) is not None and (await cache.get("d")) is not None
    assert cache.evictions >= 1


async def test_answers_survive_a_reopen_and_are_read_back_from_disk(tmp_path: Path) -> None:
    clock = ManualClock()
    db = await Database.open(tmp_path / "router.db")
    cache = ExactCache(db, CacheConfig(), clock)
    cache.put("k", answer("kept", raw=b'{"raw": true}'))
    cache.put("old", answer("stale"))
    await db.close()
    db = await Database.open(tmp_path / "router.db")
    try:
        clock.tick(0)
        again = ExactCache(db, CacheConfig(), clock)
        await again.load()
        assert again.entries == 2
        got = await again.get("k")
        assert got == answer("kept", raw=b'{"raw": true}')
    finally:
        await db.close()


async def test_memory_holds_only_memory_size_and_the_rest_is_read_from_disk(db: Database) -> None:
    size = len(answer("a" * 150).encode())
    cache = ExactCache(db, CacheConfig(memory_size=size + size // 2), ManualClock())  # room for one
    for key in "abcde":
        cache.put(key, answer(key * 150))
    held = [k for k, e in cache._entries.items() if e.completion is not None]
    assert held == ["e"]
    assert (await cache.get("a")) == answer("a" * 150)  # from disk
    assert cache.entries == 5


async def test_reloading_drops_expired_entries(tmp_path: Path) -> None:
    clock = ManualClock()
    db = await Database.open(tmp_path / "router.db")
    ExactCache(db, CacheConfig(ttl=timedelta(seconds=5)), clock).put("k", answer("v"))
    await db.flush()
    clock.tick(10)
    cache = ExactCache(db, CacheConfig(ttl=timedelta(seconds=5)), clock)
    await cache.load()
    assert cache.entries == 0
    await db.close()


@pytest.mark.unit
@pytest.mark.parametrize("raw", [None, b'{"id":\n"x"}'], ids=["rendered", "raw-body"])
def test_the_storage_form_round_trips(raw: bytes | None) -> None:
    original = answer("two\nlines, “quotes” and ünïcode", raw=raw)
    assert Completion.decode(original.encode()) == original
