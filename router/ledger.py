"""The spend ledger and the budget grants it enforces.

Calls are summed per (day, run, step, attempt, workflow, model, provider, cache result): one row
holds how many calls, their tokens and USD. Sums are kept in memory and upserted with each
database batch, so a burst of calls costs a few statements, not one per call.

A call under a grant first *reserves* its estimate (prompt size plus max_tokens, priced at the
dearest deployment it may reach); the check and the reservation happen together on the event loop,
so concurrent calls against one grant never take it past its limit. When the answer is in, the
reservation is settled to the real usage. When an attempt's spend crosses one of
`budget.thresholds` (fractions of its grant) the crossing is stored and shown by
`GET /v1/agentflow/spend` under `thresholds` (the control plane emits `cost.threshold_met`).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from agentflow.clock import Clock
from agentflow.llm import Attribution, CacheResult, Grant
from agentflow.vocabulary import EventType
from router.completion import Usage
from router.errors import BudgetExceeded
from router.store import Database

log = logging.getLogger("router.ledger")

MAX_TRACKED_ATTEMPTS = 100_000
_UPSERT = (
    "INSERT INTO ledger (day, run, step, attempt, workflow, model, provider, cache, calls, input_tokens,"
    " cached_input_tokens, output_tokens, cost_usd, first_at, last_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (run, step, attempt, day, workflow, model, provider, cache) DO UPDATE SET"
    " calls = calls + excluded.calls,"
    " input_tokens = input_tokens + excluded.input_tokens,"
    " cached_input_tokens = cached_input_tokens + excluded.cached_input_tokens,"
    " output_tokens = output_tokens + excluded.output_tokens, cost_usd = cost_usd + excluded.cost_usd,"
    " last_at = excluded.last_at"
)
_Key = tuple[str, str, str, int, str, str, str, str]


@dataclass(slots=True)
class _Attempt:
    usd: float = 0.0
    tokens: int = 0
    reserved_usd: float = 0.0
    reserved_tokens: int = 0
    grant: Grant | None = None


@dataclass(slots=True)
class Reservation:
    key: tuple[str, str, int]
    usd: float
    tokens: int
    settled: bool = False


_day_memo: tuple[int, str] = (-1, "")


def _day(ts: float) -> str:
    """The UTC date of `ts`, formatted once per day."""
    global _day_memo
    number = int(ts // 86400)
    if number != _day_memo[0]:
        _day_memo = (number, datetime.fromtimestamp(number * 86400, UTC).strftime("%Y-%m-%d"))
    return _day_memo[1]


class Ledger:
    def __init__(self, db: Database, clock: Clock, *, thresholds: tuple[float, ...]) -> None:
        self._db = db
        self._clock = clock
        self._thresholds = thresholds
        self._attempts: OrderedDict[tuple[str, str, int], _Attempt] = OrderedDict()
        self._loading: dict[tuple[str, str, int], asyncio.Future[_Attempt]] = {}
        self._today = ""
        self._today_usd = 0.0
        self._sums: dict[_Key, list[Any]] = {}  # key → [calls, input, cached, output, usd, first_at, last_at]
        db.collect(self._rows)

    def _rows(self) -> list[tuple[str, Any]]:
        sums, self._sums = self._sums, {}
        return [(_UPSERT, (*key, *values)) for key, values in sums.items()]

    async def load(self) -> None:
        day = _day(self._clock.time())

        def read(conn: sqlite3.Connection) -> float:
            return float(
                conn.execute("SELECT COALESCE(SUM(cost_usd), 0) FROM ledger WHERE day = ?", (day,)).fetchone()[0]
            )

        self._today, self._today_usd = day, await self._db.query(read)

    @property
    def spend_today_usd(self) -> float:
        if _day(self._clock.time()) != self._today:
            self._today, self._today_usd = _day(self._clock.time()), 0.0
        return self._today_usd

    async def _attempt(self, key: tuple[str, str, int]) -> _Attempt:
        found = self._attempts.get(key)
        if found is not None:
            return found
        pending = self._loading.get(key)
        if pending is None:
            pending = self._loading[key] = asyncio.ensure_future(self._read_attempt(key))
        try:
            state = await asyncio.shield(pending)
        finally:
            self._loading.pop(key, None)
        return self._attempts.setdefault(key, state)

    async def _read_attempt(self, key: tuple[str, str, int]) -> _Attempt:
        def read(conn: sqlite3.Connection) -> tuple[float, int]:
            row = conn.execute(
                "SELECT COALESCE(SUM(cost_usd), 0), COALESCE(SUM(input_tokens + output_tokens), 0) FROM ledger"
                " WHERE run = ? AND step = ? AND attempt = ? AND cache = 'miss'",
                key,
            ).fetchone()
            return float(row[0]), int(row[1])

        usd, tokens = await self._db.query(read)
        state = _Attempt(usd=usd, tokens=tokens)
        if len(self._attempts) >= MAX_TRACKED_ATTEMPTS:
            self._attempts.popitem(last=False)
        return state

    async def reserve(self, who: Attribution, grant: Grant, *, usd: float, tokens: int) -> Reservation:
        """Hold `usd` and `tokens` of the attempt's grant, or raise BudgetExceeded."""
        key = (who.run, who.step, who.attempt)
        state = await self._attempt(key)
        state.grant = grant
        if grant.tokens is not None and state.tokens + state.reserved_tokens + tokens > grant.tokens:
            raise BudgetExceeded(
                f"token budget exceeded: this call may use up to {tokens} tokens, the attempt has spent "
                f"{state.tokens} and holds {state.reserved_tokens} for calls in flight, of a grant of {grant.tokens}",
                tokens=True,
            )
        if grant.usd is not None and state.usd + state.reserved_usd + usd > grant.usd + 1e-12:
            raise BudgetExceeded(
                f"USD budget exceeded: this call may cost up to ${usd:.6f}, the attempt has spent ${state.usd:.6f} "
                f"and holds ${state.reserved_usd:.6f} for calls in flight, of a grant of ${grant.usd:.6f}",
                tokens=False,
            )
        state.reserved_usd += usd
        state.reserved_tokens += tokens
        return Reservation(key=key, usd=usd, tokens=tokens)

    def release(self, reservation: Reservation) -> None:
        """Give back a reservation whose call never reached upstream (or failed)."""
        self._settle(reservation, 0.0, 0)

    def _settle(self, reservation: Reservation, usd: float, tokens: int) -> None:
        if reservation.settled:
            return
        reservation.settled = True
        state = self._attempts.get(reservation.key)
        if state is None:
            return
        state.reserved_usd = max(0.0, state.reserved_usd - reservation.usd)
        state.reserved_tokens = max(0, state.reserved_tokens - reservation.tokens)
        before_usd, before_tokens = state.usd, state.tokens
        state.usd += usd
        state.tokens += tokens
        grant = state.grant
        if grant is not None:
            if grant.usd:
                self._crossed(reservation.key, "usd", before_usd, state.usd, grant.usd)
            if grant.tokens:
                self._crossed(reservation.key, "tokens", before_tokens, state.tokens, grant.tokens)

    def _crossed(self, key: tuple[str, str, int], kind: str, before: float, after: float, grant: float) -> None:
        for fraction in self._thresholds:
            if before < fraction * grant <= after:
                run, step, attempt = key
                self._db.write(
                    "INSERT OR IGNORE INTO thresholds (run, step, attempt, kind, fraction, spent, grant_value, at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (run, step, attempt, kind, fraction, after, grant, self._clock.time()),
                )
                log.info(
                    "spend crossed a threshold of the grant",
                    extra={
                        "event": EventType.COST_THRESHOLD_MET,
                        "run": run,
                        "step": step,
                        "attempt": attempt,
                        "kind": kind,
                        "fraction": fraction,
                        "spent": after,
                        "grant": grant,
                    },
                )

    def record(
        self,
        who: Attribution | None,
        *,
        model: str,
        provider: str,
        cache: CacheResult,
        usage: Usage,
        cost_usd: float,
        reservation: Reservation | None = None,
    ) -> None:
        """One ledger row; settles the call's reservation with what it really used."""
        now = self._clock.time()
        run, step, attempt, workflow = (who.run, who.step, who.attempt, who.workflow) if who else ("", "", 0, "")
        paid_tokens = usage.total_tokens if cache is CacheResult.MISS else 0
        key = (_day(now), run, step, attempt, workflow, model, provider, cache.value)
        sums = self._sums.get(key)
        if sums is None:
            self._sums[key] = [
                1,
                usage.input_tokens,
                usage.cached_input_tokens,
                usage.output_tokens,
                cost_usd,
                now,
                now,
            ]
            self._db.touch()
        else:
            sums[0] += 1
            sums[1] += usage.input_tokens
            sums[2] += usage.cached_input_tokens
            sums[3] += usage.output_tokens
            sums[4] += cost_usd
            sums[6] = now
        if cost_usd:
            _ = self.spend_today_usd
            self._today_usd += cost_usd
        if reservation is not None:
            self._settle(reservation, cost_usd, paid_tokens)
        elif who is not None and (cost_usd or paid_tokens):
            state = self._attempts.get((run, step, attempt))
            if state is not None:
                state.usd += cost_usd
                state.tokens += paid_tokens

    async def spend(self, *, run: str, step: str | None, attempt: int | None) -> dict[str, Any]:
        where = "run = ?"
        params: list[Any] = [run]
        if step is not None:
            where += " AND step = ?"
            params.append(step)
        if attempt is not None:
            where += " AND attempt = ?"
            params.append(attempt)

        def read(conn: sqlite3.Connection) -> dict[str, Any]:
            totals = conn.execute(
                "SELECT COALESCE(SUM(calls), 0), COALESCE(SUM(input_tokens), 0), COALESCE(SUM(cached_input_tokens), 0),"
                " COALESCE(SUM(output_tokens), 0), COALESCE(SUM(cost_usd), 0),"
                " COALESCE(SUM((cache = 'hit') * calls), 0), COALESCE(SUM((cache = 'replay') * calls), 0),"
                " COALESCE(SUM((cache = 'coalesced') * calls), 0), COALESCE(SUM((cache = 'miss') * calls), 0)"
                f" FROM ledger WHERE {where}",
                params,
            ).fetchone()
            by_model = conn.execute(
                "SELECT provider, model, SUM(calls), COALESCE(SUM(input_tokens + output_tokens), 0),"
                f" COALESCE(SUM(cost_usd), 0) FROM ledger WHERE {where}"
                " GROUP BY provider, model ORDER BY provider, model",
                params,
            ).fetchall()
            crossed = conn.execute(
                f"SELECT step, attempt, kind, fraction, spent, grant_value, at FROM thresholds WHERE {where}"
                " ORDER BY at, fraction",
                params,
            ).fetchall()
            return {
                "calls": totals[0],
                "tokens": {
                    "input": totals[1],
                    "cached_input": totals[2],
                    "output": totals[3],
                    "total": totals[1] + totals[3],
                },
                "cost_usd": round(totals[4], 10),
                "cache_hits": totals[5],
                "replays": totals[6],
                "coalesced": totals[7],
                "upstream_calls": totals[8],
                "by_model": [
                    {"provider": p, "model": m, "calls": c, "tokens": t, "cost_usd": round(u, 10)}
                    for p, m, c, t, u in by_model
                ],
                "thresholds": [
                    {
                        "event": EventType.COST_THRESHOLD_MET,
                        "step": s,
                        "attempt": a,
                        "kind": k,
                        "fraction": f,
                        "spent": sp,
                        "grant": g,
                        "at": at,
                    }
                    for s, a, k, f, sp, g, at in crossed
                ],
            }

        result = await self._db.query(read)
        result.update({"run": run, "step": step, "attempt": attempt})
        if step is not None and attempt is not None:
            state = self._attempts.get((run, step, attempt))
            if state is not None and state.grant is not None:
                result["grant"] = {
                    "usd": state.grant.usd,
                    "tokens": state.grant.tokens,
                    "reserved_usd": state.reserved_usd,
                    "reserved_tokens": state.reserved_tokens,
                }
        return result
