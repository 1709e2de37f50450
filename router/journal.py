"""The replay journal: each attributed call (run, step, attempt, call index, request hash → answer).

A later attempt of the same (run, step) that asks at call index i exactly what the latest earlier
attempt asked at i gets that answer back (`x-agentflow-cache: replay`, no cost), call after call,
until its first call that differs; from then on nothing more is replayed in that attempt.
Entries carry a `seq` so that the node can tail them (`after_seq`) and ship them to the control
plane; entries seeded from elsewhere (`POST /v1/agentflow/journal`) keep their key and are
ignored when already present, so seeding is idempotent.
"""

from __future__ import annotations

import sqlite3
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from agentflow.clock import Clock
from agentflow.llm import Attribution, CacheResult
from router.completion import Completion
from router.errors import InvalidRequest
from router.store import Database

ORIGIN_LOCAL = "local"
ORIGIN_SEEDED = "seeded"
MAX_TRACKED_ATTEMPTS = 100_000
MAX_PAGE = 1000

_INSERT = (
    "INSERT OR IGNORE INTO journal (run, step, attempt, call_index, workflow, request_hash, model, provider,"
    " completion, cost_usd, cache, origin, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_COLUMNS = (
    "seq, run, step, attempt, call_index, workflow, request_hash, model, provider, completion, cost_usd,"
    " cache, origin, created"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class JournalEntry:
    seq: int
    run: str
    step: str
    attempt: int
    call_index: int
    workflow: str
    request_hash: str
    model: str
    provider: str
    completion: Completion
    cost_usd: float
    cache: str
    origin: str
    created: float

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "run": self.run,
            "step": self.step,
            "attempt": self.attempt,
            "call_index": self.call_index,
            "workflow": self.workflow,
            "request_hash": self.request_hash,
            "model": self.model,
            "provider": self.provider,
            "response": self.completion.to_json(),
            "cost_usd": self.cost_usd,
            "cache": self.cache,
            "origin": self.origin,
            "created": self.created,
        }


def _entry(row: tuple[Any, ...]) -> JournalEntry:
    seq, run, step, attempt, idx, workflow, rh, model, provider, completion, cost, cache, origin, created = row
    return JournalEntry(
        seq=seq,
        run=run,
        step=step,
        attempt=attempt,
        call_index=idx,
        workflow=workflow,
        request_hash=rh,
        model=model,
        provider=provider,
        completion=Completion.decode(bytes(completion)),
        cost_usd=cost,
        cache=cache,
        origin=origin,
        created=created,
    )


class Journal:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock
        # attempts that have asked something new (no more replays), and the next automatic call index
        self._diverged: OrderedDict[tuple[str, str, int], bool] = OrderedDict()
        self._next_index: OrderedDict[tuple[str, str, int], int] = OrderedDict()

    def call_index(self, who: Attribution) -> int:
        """The call's index: the one it names, else the next in arrival order within its attempt."""
        key = (who.run, who.step, who.attempt)
        index = who.call if who.call is not None else self._next_index.get(key, 0)
        self._next_index[key] = max(self._next_index.get(key, 0), index + 1)
        if len(self._next_index) > MAX_TRACKED_ATTEMPTS:
            self._next_index.popitem(last=False)
        return index

    def diverge(self, who: Attribution) -> None:
        self._diverged[(who.run, who.step, who.attempt)] = True
        if len(self._diverged) > MAX_TRACKED_ATTEMPTS:
            self._diverged.popitem(last=False)

    async def replay(self, who: Attribution, index: int, request_hash: str) -> JournalEntry | None:
        """The earlier answer to replay for this call, or None (and the attempt has diverged)."""
        key = (who.run, who.step, who.attempt)
        if who.attempt <= 1 or self._diverged.get(key):
            return None

        def find(conn: sqlite3.Connection) -> tuple[tuple[Any, ...] | None, bool]:
            fresh = conn.execute(
                "SELECT 1 FROM journal WHERE run = ? AND step = ? AND attempt = ? AND call_index < ?"
                " AND cache != 'replay' LIMIT 1",
                (who.run, who.step, who.attempt, index),
            ).fetchone()
            if fresh:
                return None, True
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM journal WHERE run = ? AND step = ? AND call_index = ? AND attempt ="
                " (SELECT MAX(attempt) FROM journal WHERE run = ? AND step = ? AND attempt < ?)",
                (who.run, who.step, index, who.run, who.step, who.attempt),
            ).fetchone()
            return row, False

        row, diverged = await self._db.query(find)
        if diverged:
            self.diverge(who)
            return None
        if row is None or row[6] != request_hash:
            self.diverge(who)
            return None
        return _entry(row)

    def record(
        self,
        who: Attribution,
        index: int,
        *,
        request_hash: str,
        model: str,
        provider: str,
        completion: Completion,
        cost_usd: float,
        cache: CacheResult,
    ) -> None:
        data = completion.encode()
        self._db.write(
            _INSERT,
            (
                who.run,
                who.step,
                who.attempt,
                index,
                who.workflow,
                request_hash,
                model,
                provider,
                data,
                cost_usd,
                cache.value,
                ORIGIN_LOCAL,
                self._clock.time(),
            ),
        )

    async def entries(self, *, run: str, step: str | None, after_seq: int, limit: int = MAX_PAGE) -> list[JournalEntry]:
        def read(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            if step is None:
                sql = f"SELECT {_COLUMNS} FROM journal WHERE run = ? AND seq > ? ORDER BY seq LIMIT ?"
                return conn.execute(sql, (run, after_seq, limit)).fetchall()
            sql = f"SELECT {_COLUMNS} FROM journal WHERE run = ? AND step = ? AND seq > ? ORDER BY seq LIMIT ?"
            return conn.execute(sql, (run, step, after_seq, limit)).fetchall()

        return [_entry(r) for r in await self._db.query(read)]

    async def seed(self, items: list[Any]) -> int:
        """Store entries that came from another node; answers how many were new."""
        rows = [_seed_row(i, item, self._clock.time()) for i, item in enumerate(items)]

        def insert(conn: sqlite3.Connection) -> int:
            before = conn.total_changes
            conn.executemany(_INSERT, rows)
            return conn.total_changes - before

        return await self._db.query(insert)


def _seed_row(i: int, item: Any, now: float) -> tuple[Any, ...]:
    where = f"entries[{i}]"
    if not isinstance(item, dict):
        raise InvalidRequest(f"{where} must be an object")
    try:
        for key in ("run", "step", "request_hash"):
            if not isinstance(item.get(key), str) or not item[key]:
                raise InvalidRequest(f"{where}.{key} must be a non-empty string", param=f"{where}.{key}")
        attempt, index = item.get("attempt"), item.get("call_index")
        if not isinstance(attempt, int) or isinstance(attempt, bool) or attempt < 1:
            raise InvalidRequest(f"{where}.attempt must be an integer of at least 1", param=f"{where}.attempt")
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise InvalidRequest(f"{where}.call_index must be a non-negative integer", param=f"{where}.call_index")
        completion = Completion.from_json(item["response"])
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, InvalidRequest):
            raise
        raise InvalidRequest(f"{where}.response is not a journal response: {exc}", param=f"{where}.response") from None
    data = completion.encode()
    cost = item.get("cost_usd", 0.0)
    cache = item.get("cache", CacheResult.MISS.value)
    return (
        item["run"],
        item["step"],
        attempt,
        index,
        str(item.get("workflow", "")),
        item["request_hash"],
        str(item.get("model", "")),
        str(item.get("provider", "")),
        data,
        float(cost) if isinstance(cost, int | float) else 0.0,
        cache if cache in {c.value for c in CacheResult} else CacheResult.MISS.value,
        ORIGIN_SEEDED,
        now,
    )
