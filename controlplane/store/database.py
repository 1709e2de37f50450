"""The SQLite file: opening it in WAL mode, migrating it, and serialised transactions."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite

from agentflow.storage import is_disk_full
from controlplane.errors import StorageError, StorageFull
from controlplane.store.migrations import MIGRATIONS

BUSY_TIMEOUT_MS = 5000


class Database:
    """Two connections to one WAL file: a writer used only inside `transaction()` (one at a
    time, so read-modify-write is atomic) and a reader that sees committed data only."""

    def __init__(self, conn: aiosqlite.Connection, reader: aiosqlite.Connection, path: Path) -> None:
        self._conn = conn
        self._reader = reader
        self._write_lock = asyncio.Lock()
        self.path = path

    @classmethod
    async def open(cls, path: Path) -> Database:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = await _connect(path)
        try:
            await conn.execute("PRAGMA journal_mode=WAL")
            await conn.execute("PRAGMA foreign_keys=ON")
            db = cls(conn, await _connect(path), path)
        except BaseException:
            await conn.close()
            raise
        try:
            await db._migrate()
        except BaseException:
            await db.close()
            raise
        return db

    async def _migrate(self) -> None:
        async with self._conn.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        current = int(row[0]) if row else 0
        if current > len(MIGRATIONS):
            raise StorageError(
                f"{self.path}: schema version {current} is newer than this build knows "
                f"({len(MIGRATIONS)}); upgrade agentflow"
            )
        for version in range(current + 1, len(MIGRATIONS) + 1):
            script = MIGRATIONS[version - 1]
            # executescript commits on its own, so the version bump lives inside the script.
            await self._conn.executescript(f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version={version};\nCOMMIT;")

    async def schema_version(self) -> int:
        async with self._conn.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """BEGIN IMMEDIATE … COMMIT, rolled back on any exception (cancellation included).

        The statements that open and close a transaction always run to their end, even when
        the awaiting task is cancelled: aiosqlite executes them on its own thread anyway, and
        a BEGIN that completed unseen would leave the connection inside a transaction.
        """
        async with self._write_lock:
            try:
                await self._statement("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise storage_error(f"{self.path}: cannot begin a transaction", exc) from exc
            try:
                yield self._conn
            except sqlite3.Error as exc:
                await self._rollback()
                raise storage_error(f"{self.path}: write failed", exc) from exc
            except BaseException:
                await self._rollback()
                raise
            try:
                await self._statement("COMMIT")
            except sqlite3.Error as exc:
                await self._rollback()
                raise storage_error(f"{self.path}: commit failed", exc) from exc

    async def _rollback(self) -> None:
        """Roll back the open transaction, if SQLite has not already done so itself (it does
        on errors such as SQLITE_FULL)."""
        if self._conn.in_transaction:
            await self._statement("ROLLBACK")

    async def _statement(self, sql: str) -> None:
        """Run a transaction-control statement to completion, then deliver any cancellation."""
        done = asyncio.ensure_future(self._conn.execute(sql))
        try:
            await asyncio.shield(done)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await done
            if sql.startswith("BEGIN") and done.done() and not done.cancelled() and done.exception() is None:
                with contextlib.suppress(Exception):
                    await self._conn.execute("ROLLBACK")
            raise

    @property
    def reader(self) -> aiosqlite.Connection:
        return self._reader

    async def close(self) -> None:
        """Close both connections once the transaction in progress, if any, has ended."""
        async with self._write_lock:
            await self._reader.close()
            await self._conn.close()


def storage_error(what: str, exc: sqlite3.Error) -> StorageError:
    """A typed error for a failed statement: `StorageFull` when the disk ran out of space."""
    if is_disk_full(exc):
        return StorageFull(f"{what}: the disk is full ({exc}); nothing was changed")
    return StorageError(f"{what}: {exc}")


async def _connect(path: Path) -> aiosqlite.Connection:
    try:
        conn = await aiosqlite.connect(path, isolation_level=None)
        conn.row_factory = aiosqlite.Row
        await conn.execute("PRAGMA synchronous=NORMAL")
        await conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    except sqlite3.Error as exc:
        raise StorageError(f"{path}: cannot open database: {exc}") from exc
    return conn
