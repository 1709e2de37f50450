"""The exact cache: canonical request hash → answer, with a TTL and a size cap, in SQLite.

Every key's size and expiry are held in memory (so a miss costs a dict lookup), and the most
recently used answers up to `memory_size` bytes are held too (so most hits never touch the disk).
Past `max_size` bytes the least recently used entries are evicted.
"""

from __future__ import annotations

import sqlite3
from collections import OrderedDict
from dataclasses import dataclass

from agentflow.clock import Clock
from router.completion import Completion
from router.config import CacheConfig
from router.store import Database


@dataclass(slots=True)
class _Entry:
    size: int
    expires: float
    completion: Completion | None  # None: only on disk


class ExactCache:
    def __init__(self, db: Database, config: CacheConfig, clock: Clock) -> None:
        self._db = db
        self._config = config
        self._clock = clock
        self._ttl = config.ttl.total_seconds()
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._bytes = 0
        self._memory_bytes = 0
        self.evictions = 0

    @property
    def enabled(self) -> bool:
        return self._config.enabled

    @property
    def nondeterministic(self) -> bool:
        return self._config.nondeterministic

    @property
    def entries(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        return self._bytes

    async def load(self) -> None:
        now = self._clock.time()

        def read(conn: sqlite3.Connection) -> list[tuple[str, int, float]]:
            conn.execute("DELETE FROM cache WHERE expires <= ?", (now,))
            return conn.execute("SELECT key, size, expires FROM cache ORDER BY created").fetchall()

        for key, size, expires in await self._db.query(read):
            self._entries[key] = _Entry(size=size, expires=expires, completion=None)
            self._bytes += size
        self._evict()

    async def get(self, key: str) -> Completion | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires <= self._clock.time():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        if entry.completion is not None:
            return entry.completion

        def read(conn: sqlite3.Connection) -> bytes | None:
            row = conn.execute("SELECT completion FROM cache WHERE key = ?", (key,)).fetchone()
            return bytes(row[0]) if row else None

        data = await self._db.query(read)
        if data is None:
            self._drop(key)
            return None
        completion = Completion.decode(data)
        if key in self._entries:
            self._hold(self._entries[key], completion)
        return completion

    def put(self, key: str, completion: Completion) -> None:
        data = completion.encode()
        size = len(data)
        if size > self._config.max_size:
            return
        if key in self._entries:
            self._drop(key, persist=False)
        now = self._clock.time()
        entry = _Entry(size=size, expires=now + self._ttl, completion=None)
        self._entries[key] = entry
        self._bytes += size
        self._hold(entry, completion)
        self._db.write(
            "INSERT OR REPLACE INTO cache (key, completion, size, created, expires) VALUES (?, ?, ?, ?, ?)",
            (key, data, size, now, entry.expires),
        )
        self._evict()

    def _hold(self, entry: _Entry, completion: Completion) -> None:
        entry.completion = completion
        self._memory_bytes += entry.size
        if self._memory_bytes > self._config.memory_size:
            for other in self._entries.values():  # oldest first
                if self._memory_bytes <= self._config.memory_size:
                    break
                if other.completion is not None and other is not entry:
                    other.completion = None
                    self._memory_bytes -= other.size

    def _drop(self, key: str, *, persist: bool = True) -> None:
        entry = self._entries.pop(key)
        self._bytes -= entry.size
        if entry.completion is not None:
            self._memory_bytes -= entry.size
        if persist:
            self._db.write("DELETE FROM cache WHERE key = ?", (key,))

    def _evict(self) -> None:
        while self._bytes > self._config.max_size and self._entries:
            key = next(iter(self._entries))
            self._drop(key)
            self.evictions += 1
