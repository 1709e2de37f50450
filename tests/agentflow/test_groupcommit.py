"""Group commit on a real SQLite file: logical transactions in savepoints, one commit for many."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from disks import fill, mounted_tmpfs

from agentflow.groupcommit import GroupCommit


class Failed(Exception):
    """The typed error the factory makes of a failed statement."""

    def __init__(self, what: str, exc: sqlite3.Error) -> None:
        super().__init__(f"{what}: {exc}")
        self.cause = exc


def connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v TEXT NOT NULL)")
    return conn


def committed(path: Path) -> dict[str, str]:
    """What another connection sees: committed rows only."""
    other = sqlite3.connect(path)
    try:
        return dict(other.execute("SELECT k, v FROM t").fetchall())
    finally:
        other.close()


@pytest.fixture
async def groups(tmp_path: Path) -> AsyncIterator[GroupCommit]:
    conn = connect(tmp_path / "g.db")
    groups = GroupCommit(conn, label="g.db", error=Failed)
    try:
        yield groups
    finally:
        await groups.close()
        conn.close()


async def insert(groups: GroupCommit, key: str, value: str = "v", **kwargs: bool) -> None:
    async with groups.transaction(**kwargs) as conn:
        conn.execute("INSERT INTO t (k, v) VALUES (?, ?)", (key, value))


async def test_transactions_that_end_together_share_one_commit(groups: GroupCommit, tmp_path: Path) -> None:
    await asyncio.gather(*(insert(groups, f"k{i}") for i in range(20)))
    assert committed(tmp_path / "g.db") == {f"k{i}": "v" for i in range(20)}
    assert (groups.commits, groups.grouped) == (1, 20)


async def test_a_failing_body_is_rolled_back_alone(groups: GroupCommit, tmp_path: Path) -> None:
    async def failing() -> None:
        async with groups.transaction() as conn:
            conn.execute("INSERT INTO t (k, v) VALUES ('bad', 'half')")
            raise ValueError("the body gave up")

    results = await asyncio.gather(insert(groups, "a"), failing(), insert(groups, "b"), return_exceptions=True)
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], ValueError)
    assert committed(tmp_path / "g.db") == {"a": "v", "b": "v"}
    assert (groups.commits, groups.grouped) == (1, 2)


async def test_a_failing_statement_raises_the_typed_error_and_spares_the_group(
    groups: GroupCommit, tmp_path: Path
) -> None:
    await insert(groups, "a")
    results = await asyncio.gather(insert(groups, "a"), insert(groups, "b"), return_exceptions=True)
    assert isinstance(results[0], Failed) and "UNIQUE constraint failed" in str(results[0])
    assert isinstance(results[0].cause, sqlite3.IntegrityError)
    assert results[1] is None
    assert committed(tmp_path / "g.db") == {"a": "v", "b": "v"}


async def test_nothing_is_visible_to_others_before_the_commit(groups: GroupCommit, tmp_path: Path) -> None:
    async with groups.transaction(wait=False) as conn:
        conn.execute("INSERT INTO t (k, v) VALUES ('a', 'v')")
    pending = groups.pending()
    assert not pending.done()
    assert committed(tmp_path / "g.db") == {}
    await pending  # the default committer commits on the next turn of the loop
    assert committed(tmp_path / "g.db") == {"a": "v"}


async def test_an_owner_commits_when_it_chooses(groups: GroupCommit, tmp_path: Path) -> None:
    requested = asyncio.Event()
    groups.set_committer(requested.set)
    waiting = asyncio.gather(insert(groups, "a"), insert(groups, "b"))
    await asyncio.wait_for(requested.wait(), 5)
    await asyncio.sleep(0)  # the second one ends its body too
    assert not waiting.done()
    assert committed(tmp_path / "g.db") == {}
    async with groups.transaction(wait=False) as conn:  # the owner's own work joins the group
        conn.execute("INSERT INTO t (k, v) VALUES ('owner', 'v')")
    await groups.commit()
    await waiting
    assert committed(tmp_path / "g.db") == {"a": "v", "b": "v", "owner": "v"}
    assert (groups.commits, groups.grouped) == (1, 3)


async def test_a_lazy_transaction_waits_for_an_urgent_one(groups: GroupCommit, tmp_path: Path) -> None:
    requested = asyncio.Event()
    groups.set_committer(requested.set)
    async with groups.transaction(wait=False, urgent=False) as conn:
        conn.execute("INSERT INTO t (k, v) VALUES ('notice', 'v')")
    assert not requested.is_set()  # nobody waits on it: the group stays open for others to join
    urgent = asyncio.ensure_future(insert(groups, "result"))
    await asyncio.wait_for(requested.wait(), 5)
    await groups.commit()
    await urgent
    assert committed(tmp_path / "g.db") == {"notice": "v", "result": "v"}
    assert (groups.commits, groups.grouped) == (1, 2)


async def test_a_lazy_transaction_alone_is_still_committed(groups: GroupCommit, tmp_path: Path) -> None:
    async with groups.transaction(wait=False, urgent=False) as conn:
        conn.execute("INSERT INTO t (k, v) VALUES ('notice', 'v')")
    await groups.pending()
    assert committed(tmp_path / "g.db") == {"notice": "v"}


async def test_a_transaction_during_a_commit_joins_the_next_group(groups: GroupCommit, tmp_path: Path) -> None:
    groups.set_committer(lambda: None)
    first = asyncio.ensure_future(insert(groups, "a"))
    await asyncio.sleep(0)
    committing = asyncio.ensure_future(groups.commit())
    second = asyncio.ensure_future(insert(groups, "b"))
    await first
    await committing
    assert committed(tmp_path / "g.db") == {"a": "v"}
    assert not second.done()
    await groups.commit()
    await second
    assert committed(tmp_path / "g.db") == {"a": "v", "b": "v"}
    assert groups.commits == 2


async def test_a_cancelled_waiter_does_not_stop_the_commit(groups: GroupCommit, tmp_path: Path) -> None:
    groups.set_committer(lambda: None)
    waiter = asyncio.ensure_future(insert(groups, "a"))
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await groups.commit()
    assert committed(tmp_path / "g.db") == {"a": "v"}


async def test_a_commit_on_a_full_disk_fails_every_member_and_keeps_nothing(tmp_path: Path) -> None:
    with mounted_tmpfs(tmp_path / "disk", size="2m") as disk:
        conn = connect(disk / "g.db")
        groups = GroupCommit(conn, label="g.db", error=Failed)
        try:
            await insert(groups, "before")
            fill(disk)
            results = await asyncio.gather(
                *(insert(groups, f"k{i}", "x" * 4096) for i in range(4)), return_exceptions=True
            )
            assert all(isinstance(r, Failed) for r in results), results
            assert all("database or disk is full" in str(r) for r in results)
            assert committed(disk / "g.db") == {"before": "v"}
            assert not conn.in_transaction
        finally:
            await groups.close()
            conn.close()
