"""The router's SQLite file (`router.db`): one connection on one thread, writes batched.

Writes are queued in memory and committed together, in one transaction, at most `FLUSH_INTERVAL_S`
later (or sooner, when `FLUSH_BATCH` statements are waiting); a query runs on the database thread
after every write queued before it, so a reader always sees what was recorded before it asked.
Batching keeps the database thread (and its GIL hand-offs) off the hot path: a few commits a second
instead of one per request. WAL mode, `synchronous=NORMAL`: a power cut may
lose the last moments of cache and ledger, never corrupt them.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
log = logging.getLogger("router.store")

FLUSH_INTERVAL_S = 0.05
FLUSH_BATCH = 2000

MIGRATIONS: Sequence[str] = (
    """
    CREATE TABLE cache (
        key TEXT PRIMARY KEY, completion TEXT NOT NULL, size INTEGER NOT NULL,
        created REAL NOT NULL, expires REAL NOT NULL
    );
    CREATE TABLE journal (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        run TEXT NOT NULL, step TEXT NOT NULL, attempt INTEGER NOT NULL, call_index INTEGER NOT NULL,
        workflow TEXT NOT NULL, request_hash TEXT NOT NULL, model TEXT NOT NULL, provider TEXT NOT NULL,
        completion TEXT NOT NULL, cost_usd REAL NOT NULL, cache TEXT NOT NULL, origin TEXT NOT NULL,
        created REAL NOT NULL,
        UNIQUE (run, step, attempt, call_index)
    );
    CREATE TABLE ledger (
        day TEXT NOT NULL, run TEXT NOT NULL, step TEXT NOT NULL, attempt INTEGER NOT NULL, workflow TEXT NOT NULL,
        model TEXT NOT NULL, provider TEXT NOT NULL, cache TEXT NOT NULL,
        calls INTEGER NOT NULL, input_tokens INTEGER NOT NULL, cached_input_tokens INTEGER NOT NULL,
        output_tokens INTEGER NOT NULL, cost_usd REAL NOT NULL, first_at REAL NOT NULL, last_at REAL NOT NULL,
        PRIMARY KEY (run, step, attempt, day, workflow, model, provider, cache)
    );
    CREATE INDEX ledger_day ON ledger (day);
    CREATE TABLE thresholds (
        run TEXT NOT NULL, step TEXT NOT NULL, attempt INTEGER NOT NULL, kind TEXT NOT NULL,
        fraction REAL NOT NULL, spent REAL NOT NULL, grant_value REAL NOT NULL, at REAL NOT NULL,
        PRIMARY KEY (run, step, attempt, kind, fraction)
    );
    """,
)


class Database:
    def __init__(self, conn: sqlite3.Connection, executor: ThreadPoolExecutor) -> None:
        self._conn = conn
        self._executor = executor
        self._pending: list[tuple[str, Sequence[Any]]] = []
        self._collectors: list[Callable[[], list[tuple[str, Sequence[Any]]]]] = []
        self._flush_scheduled = False
        self._timer: asyncio.TimerHandle
        self._closed = False

    @classmethod
    async def open(cls, path: Path) -> Database:
        path.parent.mkdir(parents=True, exist_ok=True)
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="router-db")
        loop = asyncio.get_running_loop()
        conn = await loop.run_in_executor(executor, _connect, path)
        return cls(conn, executor)

    def collect(self, collector: Callable[[], list[tuple[str, Sequence[Any]]]]) -> None:
        """Have `collector()` add its statements to every batch (for writers that aggregate in memory)."""
        self._collectors.append(collector)

    def touch(self) -> None:
        """Make sure a batch is committed soon (a collector has something)."""
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._timer = asyncio.get_running_loop().call_later(FLUSH_INTERVAL_S, self._flush_soon)

    def write(self, sql: str, params: Sequence[Any]) -> None:
        """Queue a statement; it commits with the next batch, within FLUSH_INTERVAL_S."""
        self._pending.append((sql, params))
        if len(self._pending) >= FLUSH_BATCH:
            self._flush_soon()
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            self._timer = asyncio.get_running_loop().call_later(FLUSH_INTERVAL_S, self._flush_soon)

    def _flush_soon(self) -> None:
        if self._flush_scheduled:
            self._flush_scheduled = False
            self._timer.cancel()
        if not self._closed:
            self._submit(None).add_done_callback(_report_failure)

    def _submit(self, job: Callable[[sqlite3.Connection], T] | None) -> asyncio.Future[T | None]:
        for collector in self._collectors:
            self._pending.extend(collector())
        batch, self._pending = self._pending, []
        return asyncio.get_running_loop().run_in_executor(self._executor, self._run, batch, job)

    def _run(self, batch: list[tuple[str, Sequence[Any]]], job: Callable[[sqlite3.Connection], T] | None) -> T | None:
        conn = self._conn
        if batch:
            with conn:
                start = 0
                for i in range(1, len(batch) + 1):  # runs of one statement go in one executemany
                    if i == len(batch) or batch[i][0] != batch[start][0]:
                        conn.executemany(batch[start][0], [p for _, p in batch[start:i]])
                        start = i
        if job is None:
            return None
        with conn:
            return job(conn)

    async def query(self, job: Callable[[sqlite3.Connection], T]) -> T:
        """Run `job(conn)` on the database thread after every write queued so far."""
        result = await self._submit(job)
        return result  # type: ignore[return-value]

    async def flush(self) -> None:
        await self._submit(None)

    async def close(self) -> None:
        if self._closed:
            return
        await self.flush()
        self._closed = True
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._conn.close)
        self._executor.shutdown(wait=True)


def _report_failure(future: asyncio.Future[Any]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("writing to the router database failed; this batch is lost", exc_info=future.exception())


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=5000")
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        conn.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
    return conn
