"""Typed queries over the state database.

`Reader` answers from committed data; `Tx` (from `StateStore.transaction()`) adds the writes and
reads its own uncommitted changes, so a read-modify-write inside one transaction is atomic.
Queries are synchronous (see `controlplane.store.database`); only a transaction's end awaits.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agentflow.llm import NO_LLM_USAGE, Grant, LLMUsage
from agentflow.spec import WorkflowSpec, spec_from_dict, spec_to_dict
from agentflow.tracecontext import TraceRef
from agentflow.vocabulary import (
    AttemptStatus,
    EventType,
    Isolation,
    NodeStatus,
    Role,
    RunStatus,
    SandboxLayer,
    StepStatus,
)
from controlplane.domain import Resources
from controlplane.store.database import Database
from controlplane.store.records import (
    AttemptRecord,
    EventRecord,
    EventWhere,
    JournalRecord,
    ModuleRecord,
    NodeRecord,
    ReadyRow,
    RunRecord,
    RunTrace,
    StepRecord,
    WorkflowRecord,
)
from controlplane.tokens import TokenRecord

_RUN_COLUMNS = (
    "r.seq, r.id, r.workflow_id, w.name AS workflow_name, w.version AS workflow_version, "
    "r.status, r.input_json, r.error, r.created_at, r.finished_at, r.reserved_usd, r.reserved_tokens, "
    "r.thresholds_met, r.llm_calls, r.llm_input_tokens, r.llm_output_tokens, r.llm_cost_usd, r.llm_cache_hits, "
    "r.llm_replays, r.llm_upstream_calls, r.open_steps, r.unsucceeded_steps, "
    "r.trace_id, r.span_id, r.parent_span_id, r.span_started_at"
)


def ts(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat(timespec="microseconds")


def parse_ts(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _required_ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


class Reader:
    """Read queries; shared by the committed-data reader and transactions."""

    def __init__(self, conn: sqlite3.Connection, specs: dict[str, WorkflowSpec]) -> None:
        self._conn = conn
        self._specs = specs  # workflow id -> spec; workflows are immutable, so caching is safe

    def _one(self, sql: str, args: Sequence[Any] = ()) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self._conn.execute(sql, args).fetchone()
        return row

    def _all(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        return list(self._conn.execute(sql, args).fetchall())

    # workflows ------------------------------------------------------------------------------

    def workflow(self, workflow_id: str) -> WorkflowRecord | None:
        row = self._one("SELECT * FROM workflows WHERE id = ?", (workflow_id,))
        return None if row is None else self._workflow(row)

    def workflow_by_digest(self, digest: str) -> WorkflowRecord | None:
        row = self._one("SELECT * FROM workflows WHERE digest = ?", (digest,))
        return None if row is None else self._workflow(row)

    def spec(self, workflow_id: str) -> WorkflowSpec:
        cached = self._specs.get(workflow_id)
        if cached is not None:
            return cached
        record = self.workflow(workflow_id)
        if record is None:
            raise KeyError(workflow_id)
        return record.spec

    def _workflow(self, row: sqlite3.Row) -> WorkflowRecord:
        spec = self._specs.get(row["id"])
        if spec is None:
            spec = spec_from_dict(json.loads(row["spec_json"]))
            self._specs[row["id"]] = spec
        return WorkflowRecord(
            id=row["id"],
            name=row["name"],
            version=row["version"],
            digest=row["digest"],
            spec=spec,
            created_at=_required_ts(row["created_at"]),
        )

    # runs ------------------------------------------------------------------------------------

    def run(self, run_id: str) -> RunRecord | None:
        row = self._one(
            f"SELECT {_RUN_COLUMNS} FROM runs r JOIN workflows w ON w.id = r.workflow_id WHERE r.id = ?",
            (run_id,),
        )
        return None if row is None else _run(row)

    def runs(self, *, limit: int, workflow_name: str = "") -> list[RunRecord]:
        where, args = ("WHERE w.name = ?", [workflow_name]) if workflow_name else ("", [])
        rows = self._all(
            f"SELECT {_RUN_COLUMNS} FROM runs r JOIN workflows w ON w.id = r.workflow_id {where} "
            "ORDER BY r.seq DESC LIMIT ?",
            (*args, limit),
        )
        return [_run(r) for r in rows]

    def active_runs(self) -> list[RunRecord]:
        rows = self._all(
            f"SELECT {_RUN_COLUMNS} FROM runs r JOIN workflows w ON w.id = r.workflow_id "
            "WHERE r.status = ? ORDER BY r.seq",
            (RunStatus.RUNNING.value,),
        )
        return [_run(r) for r in rows]

    # steps -----------------------------------------------------------------------------------

    def steps(self, run_id: str) -> list[StepRecord]:
        rows = self._all("SELECT * FROM steps WHERE run_id = ? ORDER BY idx", (run_id,))
        return [_step(r) for r in rows]

    def step_names_with_status(self, run_id: str, status: StepStatus) -> list[str]:
        rows = self._all("SELECT name FROM steps WHERE run_id = ? AND status = ? ORDER BY idx", (run_id, status.value))
        return [r["name"] for r in rows]

    def step(self, run_id: str, name: str) -> StepRecord | None:
        row = self._one("SELECT * FROM steps WHERE run_id = ? AND name = ?", (run_id, name))
        return None if row is None else _step(row)

    def steps_with_status(self, *statuses: StepStatus) -> list[tuple[int, StepRecord]]:
        """Steps in any of the statuses with their run's sequence number, oldest run first."""
        marks = ",".join("?" * len(statuses))
        rows = self._all(
            f"SELECT s.*, r.seq AS run_seq FROM steps s JOIN runs r ON r.id = s.run_id "
            f"WHERE s.status IN ({marks}) ORDER BY r.seq, s.idx",
            [s.value for s in statuses],
        )
        return [(int(r["run_seq"]), _step(r)) for r in rows]

    def ready_steps(self, *, now: datetime, limit: int) -> tuple[list[ReadyRow], datetime | None]:
        """Up to `limit` ready steps that may be placed now (oldest run first), and the earliest
        time one still backing off may be: a scheduling pass reads what it could place. Both
        come from an index in queue order, so their cost is `limit`, not the queue's length."""
        rows = self._all(
            "SELECT run_id, name, idx, attempt, cpu_millis, memory_bytes, node_selector, not_before, blocked, run_seq"
            " FROM steps INDEXED BY steps_queue WHERE status = ? AND (not_before IS NULL OR not_before <= ?)"
            " ORDER BY run_seq, idx LIMIT ?",
            (StepStatus.READY.value, ts(now), limit),
        )
        wake = self._one(
            "SELECT MIN(not_before) AS t FROM steps WHERE status = ? AND not_before > ?",
            (StepStatus.READY.value, ts(now)),
        )
        return [_ready(r) for r in rows], parse_ts(wake["t"]) if wake else None

    def ready_counts(self, *, now: datetime, limit: int) -> tuple[int, int]:
        """How many ready steps may be placed now (counted up to `limit`), and how many of those
        the last pass could not place (they hold a reason): counted in SQLite, no row decoded."""
        row = self._one(
            "SELECT COUNT(*) AS n, COALESCE(SUM(blocked != ''), 0) AS b FROM (SELECT blocked FROM steps"
            " INDEXED BY steps_queue WHERE status = ? AND (not_before IS NULL OR not_before <= ?) LIMIT ?)",
            (StepStatus.READY.value, ts(now), limit),
        )
        return (int(row["n"]), int(row["b"])) if row else (0, 0)

    def allocations(self) -> dict[str, tuple[Resources, dict[str, int]]]:
        """Per node: the sum of the requests of the steps placed on it, and how many per run."""
        rows = self._all(
            "SELECT node_id, run_id, SUM(cpu_millis) AS cpu, SUM(memory_bytes) AS mem, COUNT(*) AS n FROM steps "
            "WHERE status IN (?, ?) AND node_id IS NOT NULL GROUP BY node_id, run_id",
            (StepStatus.ASSIGNED.value, StepStatus.RUNNING.value),
        )
        out: dict[str, tuple[Resources, dict[str, int]]] = {}
        for r in rows:
            total, per_run = out.get(r["node_id"], (Resources(), {}))
            per_run[r["run_id"]] = int(r["n"])
            out[r["node_id"]] = (total + Resources(cpu_millis=r["cpu"], memory_bytes=r["mem"], slots=r["n"]), per_run)
        return out

    def node_allocation(self, node_id: str) -> Resources:
        """The sum of the requests of the steps placed on one node."""
        row = self._one(
            "SELECT COALESCE(SUM(cpu_millis), 0) AS cpu, COALESCE(SUM(memory_bytes), 0) AS mem, COUNT(*) AS n"
            " FROM steps WHERE node_id = ? AND status IN (?, ?)",
            (node_id, StepStatus.ASSIGNED.value, StepStatus.RUNNING.value),
        )
        return Resources() if row is None else Resources(cpu_millis=row["cpu"], memory_bytes=row["mem"], slots=row["n"])

    def has_steps_with_status(self, status: StepStatus) -> bool:
        return self._one("SELECT 1 FROM steps WHERE status = ? LIMIT 1", (status.value,)) is not None

    def steps_on_node(self, node_id: str) -> list[StepRecord]:
        rows = self._all(
            "SELECT * FROM steps WHERE node_id = ? AND status IN (?, ?)",
            (node_id, StepStatus.ASSIGNED.value, StepStatus.RUNNING.value),
        )
        return [_step(r) for r in rows]

    def attempt(self, run_id: str, step: str, attempt: int) -> AttemptRecord | None:
        row = self._one("SELECT * FROM attempts WHERE run_id = ? AND step = ? AND attempt = ?", (run_id, step, attempt))
        if row is None:
            return None
        return AttemptRecord(
            run_id=row["run_id"],
            step=row["step"],
            attempt=row["attempt"],
            node_id=row["node_id"],
            status=AttemptStatus(row["status"]),
            error=row["error"],
        )

    def failed_nodes(self, run_id: str, step: str) -> frozenset[str]:
        rows = self._all(
            "SELECT DISTINCT node_id FROM attempts WHERE run_id = ? AND step = ? AND status IN (?, ?)",
            (run_id, step, AttemptStatus.FAILED.value, AttemptStatus.LOST.value),
        )
        return frozenset(r["node_id"] for r in rows)

    # nodes -----------------------------------------------------------------------------------

    def nodes(self) -> list[NodeRecord]:
        return [_node(r) for r in self._all("SELECT * FROM nodes ORDER BY name")]

    def draining_nodes(self) -> list[NodeRecord]:
        return [_node(r) for r in self._all("SELECT * FROM nodes WHERE draining = 1 ORDER BY name")]

    def nodes_token(self) -> str:
        """Changes whenever a node changes in a way `nodes()` shows, except its last heartbeat."""
        row = self._one("SELECT value FROM meta WHERE key = 'nodes_token'")
        assert row is not None, "schema 12 inserts the nodes token"
        return str(row["value"])

    def node(self, node_id: str) -> NodeRecord | None:
        row = self._one("SELECT * FROM nodes WHERE id = ?", (node_id,))
        return None if row is None else _node(row)

    def node_by_name(self, name: str) -> NodeRecord | None:
        row = self._one("SELECT * FROM nodes WHERE name = ?", (name,))
        return None if row is None else _node(row)

    # modules ---------------------------------------------------------------------------------

    def module(self, digest: str) -> ModuleRecord | None:
        row = self._one("SELECT * FROM modules WHERE digest = ?", (digest,))
        return None if row is None else _module(row)

    def modules(self) -> list[ModuleRecord]:
        return [_module(r) for r in self._all("SELECT * FROM modules ORDER BY created_at, digest")]

    # the LLM replay journal ------------------------------------------------------------------

    def journal(self, run_id: str, step: str, *, before_attempt: int) -> list[JournalRecord]:
        """The journaled LLM calls of a step's attempts before `before_attempt`, in order."""
        rows = self._all(
            "SELECT * FROM llm_journal WHERE run_id = ? AND step = ? AND attempt < ? ORDER BY attempt, call_index",
            (run_id, step, before_attempt),
        )
        return [
            JournalRecord(run_id=r["run_id"], step=r["step"], attempt=r["attempt"], call_index=r["call_index"],
                          entry_json=r["entry_json"])
            for r in rows
        ]  # fmt: skip

    # events ----------------------------------------------------------------------------------

    def events(self, *, run_id: str, after_seq: int = 0) -> list[EventRecord]:
        rows = self._all("SELECT * FROM events WHERE run_id = ? AND seq > ? ORDER BY seq", (run_id, after_seq))
        return [_event(r) for r in rows]

    def events_after(self, after_seq: int, *, limit: int, where: EventWhere | None = None) -> list[EventRecord]:
        """Up to `limit` events after `after_seq`, oldest first, that match `where`."""
        sql, args = _event_where(where)
        rows = self._all(f"SELECT * FROM events WHERE seq > ?{sql} ORDER BY seq LIMIT ?", (after_seq, *args, limit))
        return [_event(r) for r in rows]

    def events_tail(self, count: int, *, after_seq: int = 0, where: EventWhere | None = None) -> list[EventRecord]:
        """The last `count` events after `after_seq` that match `where`, oldest first."""
        sql, args = _event_where(where)
        rows = self._all(
            f"SELECT * FROM events WHERE seq > ?{sql} ORDER BY seq DESC LIMIT ?", (after_seq, *args, count)
        )
        return [_event(r) for r in reversed(rows)]

    def last_event_seq(self) -> int:
        row = self._one("SELECT COALESCE(MAX(seq), 0) AS seq FROM events")
        return int(row["seq"]) if row is not None else 0

    def delivered_seq(self, sink: str) -> int:
        """How far `sink` has delivered the events table (0: nothing yet)."""
        row = self._one("SELECT seq FROM event_deliveries WHERE sink = ?", (sink,))
        return 0 if row is None else int(row["seq"])

    def store_id(self) -> str:
        """This store's identity, made once when its schema was created."""
        row = self._one("SELECT value FROM meta WHERE key = 'store_id'")
        if row is None:
            raise RuntimeError("the state database has no store_id (schema older than version 9?)")
        return str(row["value"])

    # tokens ---------------------------------------------------------------------------------

    def tokens(self) -> list[TokenRecord]:
        return [_token(row) for row in self._all("SELECT * FROM tokens ORDER BY created_at, id")]


class Tx(Reader):
    """Writes inside one logical transaction. Events are collected for publishing.

    A run or step read in the transaction is kept until the transaction itself writes to it
    (a step's write drops its run too: triggers count the run's open steps), so the reads of
    one result (fencing, settling, arming the next link) decode each record once. Records
    are frozen, and only this transaction writes while it is open (one writer connection),
    so what is kept is what SQLite would answer.
    """

    def __init__(self, conn: sqlite3.Connection, specs: dict[str, WorkflowSpec]) -> None:
        super().__init__(conn, specs)
        self.emitted: list[EventRecord] = []  # published once the transaction commits
        self.committed: asyncio.Future[None] | None = None  # with wait=False: its group's commit
        self._runs: dict[str, RunRecord | None] = {}
        self._steps: dict[tuple[str, str], StepRecord | None] = {}

    def _exec(self, sql: str, args: Sequence[Any] = ()) -> int:
        return self._conn.execute(sql, args).rowcount

    def run(self, run_id: str) -> RunRecord | None:
        try:
            return self._runs[run_id]
        except KeyError:
            record = self._runs[run_id] = super().run(run_id)
            return record

    def step(self, run_id: str, name: str) -> StepRecord | None:
        key = (run_id, name)
        try:
            return self._steps[key]
        except KeyError:
            record = self._steps[key] = super().step(run_id, name)
            return record

    def _changed(self, run_id: str, step: str | None = None) -> None:
        """Drop what is kept of a run (and one of its steps) that this transaction writes."""
        self._runs.pop(run_id, None)
        if step is not None:
            self._steps.pop((run_id, step), None)

    def insert_token(self, token: TokenRecord) -> None:
        self._exec(
            "INSERT INTO tokens (id, role, digest, description, created_at, expires_at, single_use) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (token.id, token.role.value, token.digest, token.description, ts(token.created_at),
             ts(token.expires_at), int(token.single_use)),
        )  # fmt: skip

    def mark_token(self, token_id: str, *, used_at: datetime | None = None, revoked_at: datetime | None = None) -> None:
        """Record a single-use token's use, or a revocation (whichever is given)."""
        if used_at is not None:
            self._exec("UPDATE tokens SET used_at = ? WHERE id = ?", (ts(used_at), token_id))
        if revoked_at is not None:
            self._exec("UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                             (ts(revoked_at), token_id))  # fmt: skip

    def insert_workflow(
        self, *, workflow_id: str, spec: WorkflowSpec, digest: str, source_yaml: str, now: datetime
    ) -> WorkflowRecord:
        self._exec(
            "INSERT INTO workflows (id, name, version, digest, spec_json, source_yaml, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                workflow_id,
                spec.name,
                spec.version,
                digest,
                json.dumps(spec_to_dict(spec), separators=(",", ":")),
                source_yaml,
                ts(now),
            ),
        )
        self._specs[workflow_id] = spec
        return WorkflowRecord(
            id=workflow_id, name=spec.name, version=spec.version, digest=digest, spec=spec, created_at=now
        )

    def insert_run(self, *, run_id: str, workflow_id: str, input_json: str, now: datetime, trace: RunTrace) -> None:
        self._changed(run_id)
        self._exec(
            "INSERT INTO runs (id, workflow_id, status, input_json, created_at, trace_id, span_id, parent_span_id,"
            " span_started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (run_id, workflow_id, RunStatus.RUNNING.value, input_json, ts(now), trace.span.trace_id,
             trace.span.span_id, trace.parent.span_id if trace.parent else "", ts(trace.started_at)),
        )  # fmt: skip

    def begin_run_span(self, run_id: str, *, span_id: str, now: datetime) -> None:
        """A new workflow.execute span for the run (a retry), in the same trace."""
        self._changed(run_id)
        self._exec("UPDATE runs SET span_id = ?, span_started_at = ? WHERE id = ?", (span_id, ts(now), run_id))

    def set_run_status(self, run_id: str, status: RunStatus, *, error: str = "", now: datetime | None = None) -> None:
        self._changed(run_id)
        self._exec(
            "UPDATE runs SET status = ?, error = ?, finished_at = ? WHERE id = ?",
            (status.value, error, ts(now) if status.terminal else None, run_id),
        )

    def insert_step(
        self,
        *,
        run_id: str,
        name: str,
        idx: int,
        depends_on: Iterable[str],
        max_attempts: int,
        request: Resources,
        node_selector: dict[str, str],
    ) -> None:
        self._changed(run_id, name)
        self._exec(
            "INSERT INTO steps (run_id, name, idx, depends_on, status, max_attempts, cpu_millis, "
            "memory_bytes, node_selector, run_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, "
            "(SELECT seq FROM runs WHERE id = ?))",
            (
                run_id,
                name,
                idx,
                json.dumps(list(depends_on)),
                StepStatus.PENDING.value,
                max_attempts,
                request.cpu_millis,
                request.memory_bytes,
                json.dumps(node_selector, sort_keys=True),
                run_id,
            ),
        )

    def update_step(self, run_id: str, name: str, **fields: Any) -> None:
        """Set the given columns of one step; enums and datetimes are converted."""
        if not fields:
            return
        self._changed(run_id, name)
        names = sorted(fields)
        values = [_column_value(fields[n]) for n in names]
        assignments = ", ".join(f"{n} = ?" for n in names)
        self._exec(f"UPDATE steps SET {assignments} WHERE run_id = ? AND name = ?", (*values, run_id, name))

    def add_llm_usage(self, run_id: str, step: str, usage: LLMUsage) -> None:
        """Count LLM calls against the step and its run (increments: no read of other steps)."""
        values = (usage.calls, usage.input_tokens, usage.output_tokens, usage.cost_usd, usage.cache_hits,
                  usage.replays, usage.upstream_calls)  # fmt: skip
        self._changed(run_id, step)
        self._exec(f"UPDATE steps SET {_LLM_INCREMENTS} WHERE run_id = ? AND name = ?", (*values, run_id, step))
        self._exec(f"UPDATE runs SET {_LLM_INCREMENTS} WHERE id = ?", (*values, run_id))

    def set_grant(self, run_id: str, step: str, grant: Grant | None, *, previous: Grant | None) -> None:
        """Reserve `grant` for the step's attempt (None: release), adjusting the run's reservation."""

        def part(g: Grant | None) -> tuple[float, int]:
            return (g.usd or 0.0, g.tokens or 0) if g is not None else (0.0, 0)

        (new_usd, new_tokens), (old_usd, old_tokens) = part(grant), part(previous)
        self._changed(run_id, step)
        self._exec(
            "UPDATE steps SET grant_usd = ?, grant_tokens = ? WHERE run_id = ? AND name = ?",
            (None if grant is None else grant.usd, None if grant is None else grant.tokens, run_id, step),
        )
        self._exec(
            "UPDATE runs SET reserved_usd = MAX(0, reserved_usd + ?), reserved_tokens = MAX(0, reserved_tokens + ?)"
            " WHERE id = ?",
            (new_usd - old_usd, new_tokens - old_tokens, run_id),
        )

    def set_thresholds_met(self, run_id: str, count: int) -> None:
        self._changed(run_id)
        self._exec("UPDATE runs SET thresholds_met = ? WHERE id = ?", (count, run_id))

    def insert_attempt(self, *, run_id: str, step: str, attempt: int, node_id: str, now: datetime) -> None:
        self._exec(
            "INSERT INTO attempts (run_id, step, attempt, node_id, status, assigned_at) VALUES (?, ?, ?, ?, ?, ?)",
            (run_id, step, attempt, node_id, AttemptStatus.ASSIGNED.value, ts(now)),
        )

    def finish_attempt(
        self, run_id: str, step: str, attempt: int, *, status: AttemptStatus, error: str = "", now: datetime
    ) -> None:
        self._exec(
            "UPDATE attempts SET status = ?, error = ?, finished_at = ? WHERE run_id = ? AND step = ? AND attempt = ?",
            (status.value, error, ts(now), run_id, step, attempt),
        )

    def start_attempt(self, run_id: str, step: str, attempt: int, *, now: datetime) -> None:
        self._exec(
            "UPDATE attempts SET status = ?, started_at = ? WHERE run_id = ? AND step = ? AND attempt = ?",
            (AttemptStatus.RUNNING.value, ts(now), run_id, step, attempt),
        )

    def upsert_node(self, node: NodeRecord) -> None:
        self._exec(
            "INSERT INTO nodes (id, name, status, isolation, sandbox_layers, labels, cpu_millis, memory_bytes, "
            "slots, version, registered_at, last_heartbeat) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET name = excluded.name, status = excluded.status, "
            "isolation = excluded.isolation, sandbox_layers = excluded.sandbox_layers, labels = excluded.labels, "
            "cpu_millis = excluded.cpu_millis, memory_bytes = excluded.memory_bytes, slots = excluded.slots, "
            "version = excluded.version, last_heartbeat = excluded.last_heartbeat",
            (
                node.id,
                node.name,
                node.status.value,
                node.isolation.value,
                ",".join(sorted(node.sandbox_layers)),
                json.dumps(node.labels, sort_keys=True),
                node.capacity.cpu_millis,
                node.capacity.memory_bytes,
                node.capacity.slots,
                node.version,
                ts(node.registered_at),
                ts(node.last_heartbeat),
            ),
        )

    def set_node_status(self, node_id: str, status: NodeStatus) -> None:
        self._exec("UPDATE nodes SET status = ? WHERE id = ?", (status.value, node_id))

    def set_node_drain(self, node_id: str, *, draining: bool, deadline: datetime | None) -> None:
        self._exec(
            "UPDATE nodes SET draining = ?, drain_deadline = ? WHERE id = ?",
            (int(draining), ts(deadline) if draining else None, node_id),
        )

    def touch_node(self, node_id: str, *, now: datetime) -> None:
        self._exec("UPDATE nodes SET last_heartbeat = ? WHERE id = ?", (ts(now), node_id))

    def add_journal(self, entries: Sequence[JournalRecord]) -> None:
        """Store journal entries; one already stored (a resend) is left as it is."""
        for e in entries:
            self._exec(
                "INSERT OR IGNORE INTO llm_journal (run_id, step, attempt, call_index, entry_json) VALUES (?, ?, ?, ?, ?)",
                (e.run_id, e.step, e.attempt, e.call_index, e.entry_json),
            )

    def insert_module(self, module: ModuleRecord) -> None:
        self._exec(
            "INSERT OR IGNORE INTO modules (digest, size, name, created_at) VALUES (?, ?, ?, ?)",
            (module.digest, module.size, module.name, ts(module.created_at)),
        )

    def set_delivered(self, sink: str, seq: int) -> None:
        """Record that `sink` has delivered every event up to `seq` (never moves back)."""
        self._exec(
            "INSERT INTO event_deliveries (sink, seq) VALUES (?, ?)"
            " ON CONFLICT(sink) DO UPDATE SET seq = MAX(seq, excluded.seq)",
            (sink, seq),
        )

    def prune_events(self, *, before: datetime, up_to_seq: int | None, limit: int) -> int:
        """Delete up to `limit` of the oldest events older than `before` (and, when given, not
        after `up_to_seq`); answers how many."""
        sql = "SELECT seq FROM events WHERE time < ?"
        args: list[Any] = [ts(before)]
        if up_to_seq is not None:
            sql += " AND seq <= ?"
            args.append(up_to_seq)
        return self._exec(f"DELETE FROM events WHERE seq IN ({sql} ORDER BY seq LIMIT ?)", (*args, limit))

    def add_event(
        self,
        type: EventType,
        *,
        now: datetime,
        run_id: str = "",
        step: str = "",
        attempt: int = 0,
        node: str = "",
        data: dict[str, Any] | None = None,
    ) -> EventRecord:
        payload = data or {}
        seq = self._conn.execute(
            "INSERT INTO events (type, run_id, step, attempt, node, data_json, time) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (type, run_id, step, attempt, node, json.dumps(payload, sort_keys=True), ts(now)),
        ).lastrowid
        event = EventRecord(
            seq=int(seq or 0),
            type=type,
            run_id=run_id,
            step=step,
            attempt=attempt,
            node=node,
            data=payload,
            time=now,
        )
        self.emitted.append(event)
        return event


class StateStore:
    """The control plane's durable state: one SQLite file in WAL mode."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._specs: dict[str, WorkflowSpec] = {}
        self.read = Reader(db.reader, self._specs)

    @classmethod
    async def open(cls, path: Path) -> StateStore:
        return cls(await Database.open(path))

    @property
    def path(self) -> Path:
        return self._db.path

    async def schema_version(self) -> int:
        return await self._db.schema_version()

    @asynccontextmanager
    async def transaction(self, *, wait: bool = True, urgent: bool = True) -> AsyncIterator[Tx]:
        """A logical transaction, durable once the `async with` ends; with `wait=False` it
        joins the open group and returns at once (the caller then calls `commit()`); one not
        `urgent` may wait a little for others to join its group (see `GroupCommit`)."""
        async with self._db.transaction(wait=wait, urgent=urgent) as conn:
            tx = Tx(conn, self._specs)
            yield tx
        if not wait:
            tx.committed = self._db.pending()

    async def commit(self) -> None:
        """Commit every logical transaction that waits, with one fsync."""
        await self._db.commit()

    def set_committer(self, request: Callable[[], None] | None) -> None:
        """Hand the group commit to an owner who calls `commit()` after `request()` (None:
        transactions commit on their own)."""
        self._db.set_committer(request)

    async def close(self) -> None:
        await self._db.close()


def _column_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return ts(value)
    if isinstance(value, StepStatus | RunStatus | NodeStatus):
        return value.value
    return value


_LLM_INCREMENTS = (
    "llm_calls = llm_calls + ?, llm_input_tokens = llm_input_tokens + ?, llm_output_tokens = llm_output_tokens + ?,"
    " llm_cost_usd = llm_cost_usd + ?, llm_cache_hits = llm_cache_hits + ?, llm_replays = llm_replays + ?,"
    " llm_upstream_calls = llm_upstream_calls + ?"
)


def _run(row: sqlite3.Row) -> RunRecord:
    return RunRecord(
        seq=row["seq"],
        id=row["id"],
        workflow_id=row["workflow_id"],
        workflow_name=row["workflow_name"],
        workflow_version=row["workflow_version"],
        status=_RUN_STATUS[row["status"]],
        input_json=row["input_json"],
        error=row["error"],
        created_at=_required_ts(row["created_at"]),
        finished_at=parse_ts(row["finished_at"]),
        llm=_llm_usage(row),
        reserved=Grant(usd=row["reserved_usd"], tokens=row["reserved_tokens"]),
        thresholds_met=row["thresholds_met"],
        open_steps=row["open_steps"],
        unsucceeded_steps=row["unsucceeded_steps"],
        trace=_run_trace(row),
    )


def _llm_usage(row: sqlite3.Row) -> LLMUsage:
    if not (row["llm_calls"] or row["llm_cost_usd"] or row["llm_input_tokens"] or row["llm_output_tokens"]
            or row["llm_cache_hits"] or row["llm_replays"] or row["llm_upstream_calls"]):  # fmt: skip
        return NO_LLM_USAGE  # most steps make no LLM call: one shared (frozen) record
    return LLMUsage(
        calls=row["llm_calls"],
        input_tokens=row["llm_input_tokens"],
        output_tokens=row["llm_output_tokens"],
        cost_usd=row["llm_cost_usd"],
        cache_hits=row["llm_cache_hits"],
        replays=row["llm_replays"],
        upstream_calls=row["llm_upstream_calls"],
    )


_STEP_STATUS = {s.value: s for s in StepStatus}  # a dict lookup, several times cheaper than StepStatus(value)
_RUN_STATUS = {s.value: s for s in RunStatus}
_NO_DEPENDENCIES: tuple[str, ...] = ()
_NO_SELECTOR = "{}"


def _step(row: sqlite3.Row) -> StepRecord:
    return StepRecord(
        run_id=row["run_id"],
        name=row["name"],
        idx=row["idx"],
        depends_on=_NO_DEPENDENCIES if (deps := row["depends_on"]) == "[]" else tuple(json.loads(deps)),
        status=_STEP_STATUS[row["status"]],
        attempt=row["attempt"],
        max_attempts=row["max_attempts"],
        failures=row["failures"],
        losses=row["losses"],
        request=Resources(cpu_millis=row["cpu_millis"], memory_bytes=row["memory_bytes"], slots=1),
        node_selector={} if (selector := row["node_selector"]) == _NO_SELECTOR else json.loads(selector),
        node_id=row["node_id"],
        output_json=row["output_json"],
        error=row["error"],
        exit_code=row["exit_code"],
        stderr=row["stderr"],
        blocked=row["blocked"],
        not_before=parse_ts(row["not_before"]),
        started_at=parse_ts(row["started_at"]),
        finished_at=parse_ts(row["finished_at"]),
        grant=None
        if row["grant_usd"] is None and row["grant_tokens"] is None
        else Grant(usd=row["grant_usd"], tokens=row["grant_tokens"]),
        llm=_llm_usage(row),
        usage_json=row["usage"],
    )


def _ready(row: sqlite3.Row) -> ReadyRow:
    selector = row["node_selector"]
    return ReadyRow(
        run_id=row["run_id"],
        name=row["name"],
        idx=row["idx"],
        attempt=row["attempt"],
        request=Resources(cpu_millis=row["cpu_millis"], memory_bytes=row["memory_bytes"], slots=1),
        node_selector={} if selector == _NO_SELECTOR else json.loads(selector),
        not_before=parse_ts(row["not_before"]),
        blocked=row["blocked"],
        run_seq=row["run_seq"],
    )


def _token(row: sqlite3.Row) -> TokenRecord:
    return TokenRecord(
        id=row["id"],
        role=Role(row["role"]),
        digest=row["digest"],
        description=row["description"],
        created_at=parse_ts(row["created_at"]) or datetime.min.replace(tzinfo=UTC),
        expires_at=parse_ts(row["expires_at"]),
        single_use=bool(row["single_use"]),
        used_at=parse_ts(row["used_at"]),
        revoked_at=parse_ts(row["revoked_at"]),
    )


def _node(row: sqlite3.Row) -> NodeRecord:
    return NodeRecord(
        id=row["id"],
        name=row["name"],
        status=NodeStatus(row["status"]),
        isolation=Isolation(row["isolation"]),
        sandbox_layers=frozenset(SandboxLayer(layer) for layer in row["sandbox_layers"].split(",") if layer),
        labels=json.loads(row["labels"]),
        capacity=Resources(cpu_millis=row["cpu_millis"], memory_bytes=row["memory_bytes"], slots=row["slots"]),
        version=row["version"],
        registered_at=_required_ts(row["registered_at"]),
        last_heartbeat=parse_ts(row["last_heartbeat"]),
        draining=bool(row["draining"]),
        drain_deadline=parse_ts(row["drain_deadline"]),
    )


def _module(row: sqlite3.Row) -> ModuleRecord:
    return ModuleRecord(
        digest=row["digest"], size=row["size"], name=row["name"], created_at=_required_ts(row["created_at"])
    )


def _run_trace(row: sqlite3.Row) -> RunTrace | None:
    if not row["trace_id"] or not row["span_id"]:
        return None
    parent = TraceRef(trace_id=row["trace_id"], span_id=row["parent_span_id"]) if row["parent_span_id"] else None
    started = parse_ts(row["span_started_at"]) or _required_ts(row["created_at"])
    return RunTrace(span=TraceRef(trace_id=row["trace_id"], span_id=row["span_id"]), parent=parent, started_at=started)


def _event_where(where: EventWhere | None) -> tuple[str, list[Any]]:
    """The SQL condition (after "AND") and arguments of an event filter."""
    if where is None:
        return "", []
    sql = ""
    args: list[Any] = []
    if where.run_id:
        sql += " AND run_id = ?"
        args.append(where.run_id)
    if where.types or where.prefixes:
        terms = ["type = ?"] * len(where.types) + ["type LIKE ?"] * len(where.prefixes)
        sql += f" AND ({' OR '.join(terms)})"
        args += [str(t) for t in where.types]
        args += [f"{prefix}.%" for prefix in where.prefixes]
    return sql, args


def _event(row: sqlite3.Row) -> EventRecord:
    return EventRecord(
        seq=row["seq"],
        type=EventType(row["type"]),
        run_id=row["run_id"],
        step=row["step"],
        attempt=row["attempt"],
        node=row["node"],
        data=json.loads(row["data_json"]),
        time=_required_ts(row["time"]),
    )
