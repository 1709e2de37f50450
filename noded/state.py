"""The node's local state: its identity and the outbox of results not yet acknowledged.

A result is written here as it is sent and deleted when the control plane acks it, so a node
that restarts, or a stream that breaks, never loses a finished step the control plane lacks. Three
implementations: SQLite (the daemon's), in-memory (tests) and failing (fault injection).
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Protocol

from google.protobuf.message import DecodeError

from agentflow.attempt import AttemptKey
from agentflow.groupcommit import GroupCommit
from agentflow.storage import is_disk_full
from agentflow.v1 import types_pb2
from agentflow.wire import InvalidField
from noded import convert
from noded.errors import StateError, StateFull
from noded.messages import JournalEntry, StepResult

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
SCHEMA = """
CREATE TABLE IF NOT EXISTS identity (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    run_id  TEXT NOT NULL,
    step    TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    result  BLOB NOT NULL,
    PRIMARY KEY (run_id, step, attempt)
);
CREATE TABLE IF NOT EXISTS journal_outbox (
    run_id     TEXT NOT NULL,
    step       TEXT NOT NULL,
    attempt    INTEGER NOT NULL,
    call_index INTEGER NOT NULL,
    entry_json TEXT NOT NULL,
    PRIMARY KEY (run_id, step, attempt, call_index)
);
"""


class NodeState(Protocol):
    """Every method raises `StateError` (`StateFull` on a full disk) when the storage fails."""

    async def node_id(self) -> str | None: ...
    async def set_node_id(self, node_id: str) -> None: ...
    async def put_result(self, result: StepResult) -> None: ...
    async def delete_result(self, key: AttemptKey) -> None: ...
    async def pending_results(self) -> list[StepResult]:
        """In the order they were first put."""
        ...

    async def put_journal(self, entries: Sequence[JournalEntry]) -> None: ...
    async def delete_journal(self, entries: Sequence[JournalEntry]) -> None: ...
    async def pending_journal(self) -> list[JournalEntry]: ...

    async def close(self) -> None: ...


@asynccontextmanager
async def _failing_as(what: str) -> AsyncIterator[None]:
    """Turn what SQLite and the OS raise into the node's typed state errors."""
    try:
        yield
    except (sqlite3.Error, OSError) as exc:
        if is_disk_full(exc):
            raise StateFull(f"cannot {what}: the disk is full ({exc})") from exc
        raise StateError(f"cannot {what}: {exc}") from exc


class SqliteNodeState:
    """The daemon's outbox: one SQLite file in WAL mode with synchronous=FULL, so a result
    written here survives a power loss. Writes of results that finish together share one
    commit and one fsync (`agentflow.groupcommit`); a deletion (the result was acked) is not
    waited for: one lost to a crash is only sent once more, and acked as a repeat. Reads commit
    what was written before them, then see committed data only."""

    def __init__(self, conn: sqlite3.Connection, reader: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self._reader = reader  # sees committed data only
        self._groups = GroupCommit(conn, label=str(path), error=lambda what, exc: exc)  # named by _failing_as

    @classmethod
    async def open(cls, path: Path) -> SqliteNodeState:
        async with _failing_as(f"open {path}"):
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
                conn.executescript(f"BEGIN; {SCHEMA} PRAGMA user_version={SCHEMA_VERSION}; COMMIT;")
                reader = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            except BaseException:
                conn.close()
                raise
        return cls(conn, reader, path)

    async def node_id(self) -> str | None:
        async with _failing_as("read the node id"):
            row = self._reader.execute("SELECT value FROM identity WHERE key = 'node_id'").fetchone()
        return None if row is None else str(row[0])

    async def set_node_id(self, node_id: str) -> None:
        async with _failing_as("store the node id"), self._groups.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO identity (key, value) VALUES ('node_id', ?)", (node_id,))

    async def put_result(self, result: StepResult) -> None:
        key, blob = result.key, convert.result_to_pb(result).SerializeToString()
        async with _failing_as("write a result to the outbox"), self._groups.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO outbox (run_id, step, attempt, result) VALUES (?, ?, ?, ?)",
                (key.run_id, key.step, key.attempt, blob),
            )

    async def delete_result(self, key: AttemptKey) -> None:
        async with _failing_as("delete a result from the outbox"), self._groups.transaction(wait=False) as conn:
            conn.execute(
                "DELETE FROM outbox WHERE run_id = ? AND step = ? AND attempt = ?",
                (key.run_id, key.step, key.attempt),
            )

    async def _settle(self) -> None:
        """Commit what was written so far before reading it back (its writer sees any error)."""
        with contextlib.suppress(StateError, sqlite3.Error):
            await self._groups.commit()

    async def pending_results(self) -> list[StepResult]:
        await self._settle()
        async with _failing_as("read the outbox"):
            rows = self._reader.execute("SELECT result FROM outbox ORDER BY rowid").fetchall()
        results = []
        for (blob,) in rows:
            try:
                results.append(convert.result_from_pb(types_pb2.StepResult.FromString(bytes(blob))))
            except (DecodeError, InvalidField) as exc:  # written by another version: not ours to send
                log.error("dropping an unreadable result from the outbox", extra={"error": str(exc)})
        return results

    async def put_journal(self, entries: Sequence[JournalEntry]) -> None:
        rows = [(e.key.run_id, e.key.step, e.key.attempt, e.call_index, e.entry_json) for e in entries]
        async with _failing_as("write LLM journal entries to the outbox"), self._groups.transaction() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO journal_outbox (run_id, step, attempt, call_index, entry_json)"
                " VALUES (?, ?, ?, ?, ?)",
                rows,
            )

    async def delete_journal(self, entries: Sequence[JournalEntry]) -> None:
        rows = [(e.key.run_id, e.key.step, e.key.attempt, e.call_index) for e in entries]
        async with (
            _failing_as("delete LLM journal entries from the outbox"),
            self._groups.transaction(wait=False) as conn,
        ):
            conn.executemany(
                "DELETE FROM journal_outbox WHERE run_id = ? AND step = ? AND attempt = ? AND call_index = ?", rows
            )

    async def pending_journal(self) -> list[JournalEntry]:
        await self._settle()
        async with _failing_as("read the journal outbox"):
            rows = self._reader.execute(
                "SELECT run_id, step, attempt, call_index, entry_json FROM journal_outbox ORDER BY rowid"
            ).fetchall()
        return [
            JournalEntry(key=AttemptKey(r[0], r[1], int(r[2])), call_index=int(r[3]), entry_json=r[4]) for r in rows
        ]

    async def close(self) -> None:
        await self._groups.close()
        self._reader.close()
        self._conn.close()


class MemoryNodeState:
    def __init__(self) -> None:
        self._node_id: str | None = None
        self._outbox: dict[AttemptKey, StepResult] = {}
        self._journal: dict[JournalEntry, JournalEntry] = {}  # by key (entry_json does not compare)

    async def node_id(self) -> str | None:
        return self._node_id

    async def set_node_id(self, node_id: str) -> None:
        self._node_id = node_id

    async def put_result(self, result: StepResult) -> None:
        self._outbox.pop(result.key, None)  # a rewritten result moves to the end, as in SQLite
        self._outbox[result.key] = result

    async def delete_result(self, key: AttemptKey) -> None:
        self._outbox.pop(key, None)

    async def pending_results(self) -> list[StepResult]:
        return list(self._outbox.values())

    async def put_journal(self, entries: Sequence[JournalEntry]) -> None:
        for e in entries:
            self._journal[e] = e

    async def delete_journal(self, entries: Sequence[JournalEntry]) -> None:
        for e in entries:
            self._journal.pop(e, None)

    async def pending_journal(self) -> list[JournalEntry]:
        return list(self._journal.values())

    async def close(self) -> None:
        return None


class FailingNodeState(MemoryNodeState):
    """Like MemoryNodeState, but writes of results fail as SqliteNodeState's do on a full disk
    (until `full` is set to False: space came back)."""

    def __init__(self) -> None:
        super().__init__()
        self.full = True

    async def put_result(self, result: StepResult) -> None:
        if self.full:
            raise StateFull("cannot write a result to the outbox: the disk is full (database or disk is full)")
        await super().put_result(result)

    async def put_journal(self, entries: Sequence[JournalEntry]) -> None:
        if self.full:
            raise StateFull(
                "cannot write LLM journal entries to the outbox: the disk is full (database or disk is full)"
            )
        await super().put_journal(entries)
