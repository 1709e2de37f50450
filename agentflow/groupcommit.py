"""Group commit on one SQLite connection: many short transactions, one fsync.

A daemon's state changes come in small transactions (a result, a placement, a heartbeat), and
each of them must be durable before anything that depends on it leaves the process (an ack, an
assignment, a result sent upstream). Committing each on its own costs an fsync apiece; here they
share one:

- `transaction()` runs its body as a *logical* transaction: a SAVEPOINT inside the open
  *physical* transaction (BEGIN IMMEDIATE when none is open), released when the body ends and
  rolled back alone when it raises, so one failing body never undoes another. Its statements run
  synchronously on the caller's thread: a point query on a warm page cache takes microseconds,
  far less than a hop to another thread and back.
- On leaving the body the caller waits until the physical transaction has committed (or raises
  what the commit raised: every logical transaction of a failed commit fails with it, and the
  database is as it was before any of them).
- `commit()` commits the open physical transaction, in a thread of its own, so the event loop
  goes on while the disk syncs; logical transactions that start meanwhile wait for it and form
  the next group. Who calls `commit()` is the committer's choice: by default a task of this
  object, started by the first logical transaction of a group, commits it on the next turn of the
  event loop; an owner with a loop of its own (the control plane's scheduler, which adds its
  placements to the group first) takes over with `set_committer`.

With `PRAGMA synchronous=FULL` in WAL mode the WAL is fsynced at every physical commit, so what a
caller saw committed survives a power loss, not only a crash of the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import NoReturn

ErrorFactory = Callable[[str, sqlite3.Error], Exception]
"""Turns a failed statement into the daemon's typed error: (what failed, the sqlite3 error)."""

SAVEPOINT = "logical"
LAZY_COMMIT_S = 0.005
"""How long a group of transactions nobody waits for may stay open for others to join (real
time, not a test's clock: it only decides how much is committed at once, never what)."""


class _Group:
    """The logical transactions of one physical transaction, waiting for its commit."""

    def __init__(self) -> None:
        self.committed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.members = 0

    def settle(self, error: Exception | None) -> None:
        if self.committed.done():
            return
        if error is None:
            self.committed.set_result(None)
        else:
            self.committed.set_exception(error)
            self.committed.exception()  # a group nobody waits for must not warn as unretrieved


class GroupCommit:
    """Logical transactions on `conn` (opened with `isolation_level=None` and
    `check_same_thread=False`), committed in groups. `label` names the file in errors."""

    def __init__(self, conn: sqlite3.Connection, *, label: str, error: ErrorFactory) -> None:
        self._conn = conn
        self._label = label
        self._error = error
        self._lock = asyncio.Lock()
        self._group: _Group | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-commit")
        self._request: Callable[[], None] | None = None
        self._auto: asyncio.Task[None] | None = None
        self._later: asyncio.TimerHandle | None = None
        self.commits = 0  # physical commits so far
        self.grouped = 0  # logical transactions they carried

    def set_committer(self, request: Callable[[], None] | None) -> None:
        """`request` is called whenever a group waits to be committed; its owner then calls
        `commit()` soon. None: this object commits on its own again."""
        self._request = request
        if request is not None and self._group is not None:
            request()
        elif request is None and self._group is not None:
            self._commit_soon()

    @asynccontextmanager
    async def transaction(self, *, wait: bool = True, urgent: bool = True) -> AsyncIterator[sqlite3.Connection]:
        """One logical transaction; on exit, wait for its group to commit (unless `wait` is
        False: the caller commits, or waits, itself). One that is not `urgent` (nothing waits on
        it: a notice, a heartbeat) lets its group stay open up to `LAZY_COMMIT_S` for more to
        join, unless an urgent one or the committer's owner commits it sooner."""
        async with self._lock:
            group = self._open()
            self._conn.execute(f"SAVEPOINT {SAVEPOINT}")
            try:
                yield self._conn
            except sqlite3.Error as exc:
                self._undo()
                self._raise_typed("write failed", exc)
            except BaseException:
                self._undo()
                raise
            finally:
                if self._group is not None:  # ended either way: the group may be committed
                    self._requested() if urgent else self._request_later()
            try:
                self._conn.execute(f"RELEASE {SAVEPOINT}")
            except sqlite3.Error as exc:
                self._undo()
                self._raise_typed("write failed", exc)
            group.members += 1
        if wait:
            await asyncio.shield(group.committed)

    def pending(self) -> asyncio.Future[None]:
        """The commit of the group that the logical transaction which just ended (with
        `wait=False`, and nothing awaited since) joined: done when it is durable, or failed."""
        if self._group is None:
            raise RuntimeError("no group waits to be committed")
        return self._group.committed

    async def commit(self) -> None:
        """Commit the open group, if any; raises what the commit raised."""
        async with self._lock:
            group, self._group = self._group, None
            if self._later is not None:
                self._later.cancel()
                self._later = None
            if group is None:
                return
            if group.members == 0:  # every body of the group rolled itself back
                self._rollback()
                group.settle(None)
                return
            loop = asyncio.get_running_loop()
            done = loop.run_in_executor(self._thread, self._conn.execute, "COMMIT")
            try:
                with contextlib.suppress(Exception):  # the group gets the error from `done`
                    await asyncio.shield(done)
            except asyncio.CancelledError:
                with contextlib.suppress(Exception):
                    await done  # the statement runs to its end before anything else may
                self._finish(group, done)
                raise
            self._finish(group, done)
        if (error := group.committed.exception()) is not None:
            raise error

    def _finish(self, group: _Group, done: asyncio.Future[sqlite3.Cursor]) -> None:
        exc = done.exception()
        if exc is None:
            self.commits += 1
            self.grouped += group.members
            group.settle(None)
            return
        self._rollback()
        if isinstance(exc, sqlite3.Error):
            group.settle(self._error(f"{self._label}: commit failed", exc))
        else:
            group.settle(exc if isinstance(exc, Exception) else RuntimeError(str(exc)))

    async def close(self) -> None:
        """Commit what is open, then stop the commit thread."""
        if self._auto is not None:
            with contextlib.suppress(Exception):
                await self._auto
        with contextlib.suppress(Exception):
            await self.commit()
        self._thread.shutdown(wait=True)

    def _raise_typed(self, what: str, exc: sqlite3.Error) -> NoReturn:
        """Raise the factory's error for `exc`, caused by it (or `exc` itself, if the factory
        keeps sqlite3's errors as they are)."""
        error = self._error(f"{self._label}: {what}", exc)
        if error is exc:
            raise exc
        raise error from exc

    def _open(self) -> _Group:
        if self._group is None:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                self._raise_typed("cannot begin a transaction", exc)
            self._group = _Group()
        return self._group

    def _undo(self) -> None:
        """Roll back the failed body alone; if SQLite already rolled back the whole physical
        transaction (it does on errors such as SQLITE_FULL), the group fails with it."""
        if self._conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute(f"ROLLBACK TO {SAVEPOINT}")
                self._conn.execute(f"RELEASE {SAVEPOINT}")
                return
        group, self._group = self._group, None
        self._rollback()
        if group is not None:
            group.settle(self._error(f"{self._label}: write failed", sqlite3.OperationalError("rolled back")))

    def _rollback(self) -> None:
        if self._conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")

    def _requested(self) -> None:
        if self._request is not None:
            self._request()
        else:
            self._commit_soon()

    def _request_later(self) -> None:
        if self._later is None:
            self._later = asyncio.get_running_loop().call_later(LAZY_COMMIT_S, self._lazy_due)

    def _lazy_due(self) -> None:
        self._later = None
        if self._group is not None:
            self._requested()

    def _commit_soon(self) -> None:
        if self._auto is None or self._auto.done():
            self._auto = asyncio.get_running_loop().create_task(self._commit_quietly(), name="group-commit")

    async def _commit_quietly(self) -> None:
        """The default committer: the logical transactions' callers see the error, not this task."""
        with contextlib.suppress(Exception):
            await self.commit()
