"""The SQLite state store: versioned migrations, WAL mode, all-or-nothing transactions."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sample_workflows import ONE_STEP

from agentflow.spec import load_workflow, resolve_modules
from agentflow.tracecontext import TraceRef
from agentflow.vocabulary import Isolation, NodeStatus
from controlplane.domain import Resources
from controlplane.errors import StorageError
from controlplane.store import ModuleRecord, NodeRecord, RunTrace, StateStore, Tx
from controlplane.store.migrations import MIGRATIONS

pytestmark = pytest.mark.component

NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
TRACE = RunTrace(span=TraceRef.new(), parent=None, started_at=NOW)
DIGEST = "sha256:" + "ab" * 32


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[StateStore]:
    store = await StateStore.open(tmp_path / "state.db")
    try:
        yield store
    finally:
        await store.close()


def schema(path: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT type, name FROM sqlite_master ORDER BY type, name").fetchall()


def count(path: Path, table: str) -> int:
    with sqlite3.connect(path) as db:
        return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def module(digest: str = DIGEST) -> ModuleRecord:
    return ModuleRecord(digest=digest, size=10, name="m.wasm", created_at=NOW)


async def test_migrations_reach_the_latest_version_and_reopening_is_a_no_op(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = await StateStore.open(path)
    try:
        assert await store.schema_version() == len(MIGRATIONS)
        async with store.transaction() as tx:
            tx.insert_module(module())
    finally:
        await store.close()
    tables = schema(path)
    assert {name for kind, name in tables if kind == "table"} >= {
        "workflows", "runs", "steps", "attempts", "nodes", "modules", "events",
    }  # fmt: skip

    store = await StateStore.open(path)
    try:
        assert await store.schema_version() == len(MIGRATIONS)
        assert store.read.module(DIGEST) == module()
    finally:
        await store.close()
    assert schema(path) == tables
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


async def test_a_database_newer_than_the_build_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    await (await StateStore.open(path)).close()
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(StorageError, match="newer than this build"):
        await StateStore.open(path)


async def test_the_database_is_in_wal_mode(store: StateStore) -> None:
    with sqlite3.connect(store.path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.path.with_name("state.db-wal").exists()


async def seed(tx: Tx) -> None:
    """A workflow, a run of it and its one step."""
    spec = resolve_modules(load_workflow(ONE_STEP, source="one.yaml"), {"./echo.wasm": DIGEST})
    tx.insert_workflow(workflow_id="wf-1", spec=spec, digest="sha256:" + "cd" * 32, source_yaml="", now=NOW)
    tx.insert_run(run_id="run-1", workflow_id="wf-1", input_json="null", now=NOW, trace=TRACE)
    tx.insert_step(
        run_id="run-1", name="only", idx=0, depends_on=(), max_attempts=1,
        request=Resources(cpu_millis=100, memory_bytes=1, slots=1), node_selector={},
    )  # fmt: skip
    tx.add_event("workflow.started", now=NOW, run_id="run-1")


async def test_a_transaction_that_raises_leaves_no_partial_writes(store: StateStore) -> None:
    with pytest.raises(RuntimeError, match="half way"):
        async with store.transaction() as tx:
            tx.insert_module(module())
            await seed(tx)
            # the transaction sees its own writes
            assert tx.module(DIGEST) is not None
            assert [s.name for s in tx.steps("run-1")] == ["only"]
            raise RuntimeError("half way")

    assert store.read.module(DIGEST) is None
    assert store.read.run("run-1") is None
    assert store.read.events(run_id="run-1") == []
    for table in ("modules", "workflows", "runs", "steps", "events"):
        assert count(store.path, table) == 0, table

    # the store is usable afterwards, and the same writes commit
    async with store.transaction() as tx:
        tx.insert_module(module())
        await seed(tx)
    assert store.read.module(DIGEST) == module()
    assert [s.name for s in store.read.steps("run-1")] == ["only"]


async def test_a_cancelled_transaction_leaves_no_partial_writes(store: StateStore) -> None:
    inside = asyncio.Event()

    async def writer() -> None:
        async with store.transaction() as tx:
            tx.insert_module(module())
            inside.set()
            await asyncio.sleep(60)

    task = asyncio.create_task(writer())
    async with asyncio.timeout(5):
        await inside.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert store.read.module(DIGEST) is None
    async with asyncio.timeout(5), store.transaction() as tx:
        tx.insert_module(module("sha256:" + "ef" * 32))
    assert [m.digest for m in store.read.modules()] == ["sha256:" + "ef" * 32]


async def test_readers_see_only_committed_data(store: StateStore) -> None:
    async with store.transaction() as tx:
        tx.insert_module(module())
        assert store.read.module(DIGEST) is None  # not committed yet
    assert store.read.module(DIGEST) == module()


async def test_transactions_are_serialised(store: StateStore) -> None:
    """Concurrent read-modify-write transactions never lose an update."""
    async with store.transaction() as tx:
        await seed(tx)

    async def increment() -> None:
        async with store.transaction() as tx:
            step = tx.step("run-1", "only")
            assert step is not None
            await asyncio.sleep(0)  # let the others try to interleave
            tx.update_step("run-1", "only", failures=step.failures + 1)

    async with asyncio.timeout(10):
        await asyncio.gather(*(increment() for _ in range(20)))
    step = store.read.step("run-1", "only")
    assert step is not None and step.failures == 20


async def test_the_run_counts_its_open_and_unsucceeded_steps_on_every_status_change(tmp_path) -> None:
    """Triggers keep the counters that let a run be settled without reading all its steps."""
    from agentflow.spec import load_workflow
    from agentflow.vocabulary import StepStatus as S
    from controlplane.domain import Resources as R
    from controlplane.store import StateStore

    store = await StateStore.open(tmp_path / "state.db")
    try:
        spec = load_workflow(ONE_STEP.replace("./echo.wasm", "sha256:" + "a" * 64), source="w")
        async with store.transaction() as tx:
            wf = tx.insert_workflow(workflow_id="wf", spec=spec, digest="sha256:" + "b" * 64,
                                          source_yaml="", now=NOW)  # fmt: skip
            tx.insert_run(run_id="r", workflow_id=wf.id, input_json="null", now=NOW, trace=TRACE)
            for i, name in enumerate(("a", "b", "c")):
                tx.insert_step(run_id="r", name=name, idx=i, depends_on=(), max_attempts=1,
                                     request=R(slots=1), node_selector={})  # fmt: skip

        async def counts() -> tuple[int, int]:
            run = store.read.run("r")
            assert run is not None
            return run.open_steps, run.unsucceeded_steps

        assert await counts() == (3, 0)
        changes = [("a", S.SUCCEEDED, (2, 0)), ("b", S.FAILED, (1, 1)), ("c", S.SKIPPED, (0, 2)),
                   ("b", S.FAILED, (0, 2)), ("b", S.PENDING, (1, 1)), ("c", S.READY, (2, 0))]  # fmt: skip
        for name, status, expected in changes:
            async with store.transaction() as tx:
                tx.update_step("r", name, status=status)
            assert await counts() == expected, (name, status)
    finally:
        await store.close()


async def test_a_transaction_keeps_what_it_read_until_it_writes_to_it(store: StateStore) -> None:
    """Runs and steps read in a transaction are decoded once, and read again after its own writes."""
    from agentflow.llm import Grant, LLMUsage
    from agentflow.vocabulary import EventType, RunStatus, StepStatus

    async with store.transaction() as tx:
        await seed(tx)
    async with store.transaction() as tx:
        run, step = tx.run("run-1"), tx.step("run-1", "only")
        assert run is not None and step is not None
        assert tx.run("run-1") is run and tx.step("run-1", "only") is step  # kept
        tx.add_event(EventType.AGENT_STARTED, now=NOW, run_id="run-1", step="only")  # writes neither
        assert tx.run("run-1") is run and tx.step("run-1", "only") is step
        tx.update_step("run-1", "only", status=StepStatus.SUCCEEDED)
        after, done = tx.run("run-1"), tx.step("run-1", "only")
        assert done is not None and done.status is StepStatus.SUCCEEDED
        assert after is not None and (after.open_steps, run.open_steps) == (0, 1)  # a trigger counted it
        tx.add_llm_usage("run-1", "only", LLMUsage(calls=2))
        assert (tx.run("run-1") or run).llm.calls == 2 and (tx.step("run-1", "only") or step).llm.calls == 2
        tx.set_grant("run-1", "only", Grant(usd=1.5), previous=None)
        assert (tx.step("run-1", "only") or step).grant == Grant(usd=1.5, tokens=None)
        assert (tx.run("run-1") or run).reserved.usd == 1.5
        tx.set_thresholds_met("run-1", 2)
        assert (tx.run("run-1") or run).thresholds_met == 2
        tx.set_run_status("run-1", RunStatus.SUCCEEDED, now=NOW)
        assert (tx.run("run-1") or run).status is RunStatus.SUCCEEDED
        assert tx.run("nope") is None and tx.step("run-1", "nope") is None
        tx.insert_run(run_id="nope", workflow_id="wf-1", input_json="null", now=NOW, trace=TRACE)
        assert tx.run("nope") is not None  # an absence is not kept past an insert
    assert store.read.run("run-1") == tx.run("run-1")


async def test_a_run_keeps_its_trace_and_a_retry_begins_a_new_span_in_it(store: StateStore) -> None:
    async with store.transaction() as tx:
        await seed(tx)
    run = store.read.run("run-1")
    assert run is not None and run.trace == TRACE
    later = NOW + timedelta(minutes=5)
    async with store.transaction() as tx:
        tx.begin_run_span("run-1", span_id="ab" * 8, now=later)
    again = store.read.run("run-1")
    assert again is not None and again.trace is not None
    assert again.trace.span == TraceRef(trace_id=TRACE.span.trace_id, span_id="ab" * 8)
    assert again.trace.started_at == later and again.trace.parent is None


def _add_run(tx: Tx, run_id: str, steps: int) -> None:
    tx.insert_run(run_id=run_id, workflow_id="wf-1", input_json="null", now=NOW, trace=TRACE)
    for i in range(steps):
        tx.insert_step(
            run_id=run_id, name=f"s{i}", idx=i, depends_on=(), max_attempts=1,
            request=Resources(cpu_millis=100, memory_bytes=1, slots=1), node_selector={"zone": "a"} if i else {},
        )  # fmt: skip
        tx.update_step(run_id, f"s{i}", status="ready")


async def test_the_ready_queue_is_read_in_order_from_an_index_without_a_sort(store: StateStore) -> None:
    async with store.transaction() as tx:
        await seed(tx)
        _add_run(tx, "run-2", 3)
        _add_run(tx, "run-3", 3)
        tx.update_step("run-2", "s1", status="ready", not_before=NOW + timedelta(seconds=5))
    rows, backoff = store.read.ready_steps(now=NOW, limit=4)
    assert [(r.run_id, r.name) for r in rows] == [("run-2", "s0"), ("run-2", "s2"), ("run-3", "s0"), ("run-3", "s1")]
    assert rows[1].node_selector == {"zone": "a"} and rows[0].node_selector == {}
    assert backoff == NOW + timedelta(seconds=5)
    with sqlite3.connect(store.path) as db:
        plan = " ".join(
            str(r[-1])
            for r in db.execute(
                "EXPLAIN QUERY PLAN SELECT run_id FROM steps INDEXED BY steps_queue WHERE status = 'ready'"
                " AND (not_before IS NULL OR not_before <= '') ORDER BY run_seq, idx LIMIT 4"
            )
        )
        assert "steps_queue" in plan and "TEMP B-TREE" not in plan, plan


async def test_ready_counts_count_what_may_be_placed_now_and_the_blocked_up_to_the_limit(store: StateStore) -> None:
    async with store.transaction() as tx:
        await seed(tx)
        _add_run(tx, "run-2", 4)
        tx.update_step("run-2", "s1", status="ready", not_before=NOW + timedelta(seconds=5))  # not yet
        tx.update_step("run-2", "s2", blocked="waiting for capacity")
        tx.update_step("run-2", "s3", blocked="no ready node matches nodeSelector zone=a")
    assert store.read.ready_counts(now=NOW, limit=100) == (3, 2)
    assert store.read.ready_counts(now=NOW + timedelta(seconds=6), limit=100) == (4, 2)
    assert store.read.ready_counts(now=NOW, limit=2)[0] == 2


async def test_migrating_to_version_11_gives_existing_steps_their_run_order(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with sqlite3.connect(path, isolation_level=None) as db:
        for version, script in enumerate(MIGRATIONS[:10], start=1):
            db.executescript(f"BEGIN;\n{script}\nPRAGMA user_version={version};\nCOMMIT;")
        db.execute("INSERT INTO workflows (id, name, version, digest, spec_json, source_yaml, created_at)"
                   " VALUES ('wf', 'w', '1', 'd', '{}', '', 't')")  # fmt: skip
        for run in ("old", "new"):
            db.execute("INSERT INTO runs (id, workflow_id, status, input_json, created_at) VALUES (?, 'wf', 'running',"
                       " 'null', 't')", (run,))  # fmt: skip
            db.execute("INSERT INTO steps (run_id, name, idx, depends_on, status, max_attempts, cpu_millis,"
                       " memory_bytes, node_selector) VALUES (?, 'a', 0, '[]', 'ready', 1, 100, 1, '{}')",
                       (run,))  # fmt: skip
    store = await StateStore.open(path)
    try:
        rows, _ = store.read.ready_steps(now=NOW, limit=10)
        assert [(r.run_id, r.run_seq) for r in rows] == [("old", 1), ("new", 2)]
    finally:
        await store.close()


def _node_record(node_id: str = "id-1", *, slots: int = 4) -> NodeRecord:
    return NodeRecord(id=node_id, name=f"n-{node_id}", status=NodeStatus.READY, isolation=Isolation.NONE,
                      labels={"zone": "a"}, capacity=Resources(cpu_millis=1000, memory_bytes=1 << 30, slots=slots),
                      version="1", registered_at=NOW, last_heartbeat=NOW)  # fmt: skip


async def test_the_nodes_token_changes_with_every_node_change_but_a_heartbeat(store: StateStore) -> None:
    tokens = [store.read.nodes_token()]

    async def changed(write: Callable[[Tx], None]) -> bool:
        async with store.transaction() as tx:
            write(tx)
        tokens.append(store.read.nodes_token())
        return tokens[-1] != tokens[-2]

    assert await changed(lambda tx: tx.upsert_node(_node_record()))
    assert await changed(lambda tx: tx.upsert_node(_node_record(slots=8)))  # registered again, more room
    assert await changed(lambda tx: tx.set_node_status("id-1", NodeStatus.DOWN))
    assert await changed(lambda tx: tx.set_node_drain("id-1", draining=True, deadline=None))
    assert not await changed(lambda tx: tx.touch_node("id-1", now=NOW + timedelta(seconds=5)))


async def test_a_rolled_back_node_change_leaves_the_token_it_found(store: StateStore) -> None:
    async with store.transaction() as tx:
        tx.upsert_node(_node_record())
    before = store.read.nodes_token()
    with pytest.raises(RuntimeError, match="after the drain"):
        async with store.transaction() as tx:
            tx.set_node_drain("id-1", draining=True, deadline=None)
            assert tx.nodes_token() != before  # seen inside the transaction that made it
            raise RuntimeError("after the drain")
    assert store.read.nodes_token() == before
    assert store.read.draining_nodes() == []
    async with store.transaction() as tx:
        tx.set_node_drain("id-1", draining=True, deadline=None)
    assert store.read.nodes_token() != before
    assert [n.id for n in store.read.draining_nodes()] == ["id-1"]
