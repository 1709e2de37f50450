"""The SQLite file: opening it in WAL mode, migrating it, and group-committed transactions."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

from agentflow.groupcommit import GroupCommit
from agentflow.storage import is_disk_full
from controlplane.errors import StorageError, StorageFull
from controlplane.store.migrations import MIGRATIONS

BUSY_TIMEOUT_MS = 5000
SYNCHRONOUS = "FULL"
"""WAL with synchronous=FULL fsyncs the WAL at every commit: a result the control plane has
committed (and then acked, so the node deleted its copy) survives a power loss, not only a
crash. NORMAL would keep it across a crash of the process but could lose the last commits to a
power cut. Group commit (`agentflow.groupcommit`) pays that fsync once for everything committed
together."""


class Database:
    """Two connections to one WAL file: a writer used only through `transaction()` (logical
    transactions, group-committed) and a reader that sees committed data only.

    Statements run on the event loop's thread: they are point queries and small writes that
    take microseconds; only the commit, which syncs the disk, runs in a thread of its own.
    """

    def __init__(self, conn: sqlite3.Connection, reader: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self._reader = reader
        self.path = path
        self._groups = GroupCommit(conn, label=str(path), error=storage_error)

    @classmethod
    async def open(cls, path: Path) -> Database:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = _connect(path)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA foreign_keys=ON")
            _migrate(conn, path)
            reader = _connect(path)
        except sqlite3.Error as exc:
            conn.close()
            raise StorageError(f"{path}: cannot open database: {exc}") from exc
        except BaseException:
            conn.close()
            raise
        return cls(conn, reader, path)

    async def schema_version(self) -> int:
        return _user_version(self._conn)

    def transaction(self, *, wait: bool = True, urgent: bool = True) -> AbstractAsyncContextManager[sqlite3.Connection]:
        """A logical transaction: rolled back alone on any exception (cancellation included),
        durable when the `async with` ends (see `GroupCommit.transaction`)."""
        return self._groups.transaction(wait=wait, urgent=urgent)

    def pending(self) -> asyncio.Future[None]:
        return self._groups.pending()

    async def commit(self) -> None:
        """Commit the logical transactions that wait (group commit)."""
        await self._groups.commit()

    def set_committer(self, request: Callable[[], None] | None) -> None:
        self._groups.set_committer(request)

    @property
    def reader(self) -> sqlite3.Connection:
        return self._reader

    async def close(self) -> None:
        """Commit what waits, then close both connections."""
        await self._groups.close()
        self._reader.close()
        self._conn.close()


def storage_error(what: str, exc: sqlite3.Error) -> StorageError:
    """A typed error for a failed statement: `StorageFull` when the disk ran out of space."""
    if is_disk_full(exc):
        return StorageFull(f"{what}: the disk is full ({exc}); nothing was changed")
    return StorageError(f"{what}: {exc}")


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    current = _user_version(conn)
    if current > len(MIGRATIONS):
        raise StorageError(
            f"{path}: schema version {current} is newer than this build knows ({len(MIGRATIONS)}); upgrade agentflow"
        )
    for version in range(current + 1, len(MIGRATIONS) + 1):
        script = MIGRATIONS[version - 1]
        # executescript commits on its own, so the version bump lives inside the script.
        conn.executescript(f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version={version};\nCOMMIT;")


def _user_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("PRAGMA user_version").fetchone()
    return int(row[0]) if row else 0


def _connect(path: Path) -> sqlite3.Connection:
    try:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA synchronous={SYNCHRONOUS}")
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    except sqlite3.Error as exc:
        raise StorageError(f"{path}: cannot open database: {exc}") from exc
    return conn
