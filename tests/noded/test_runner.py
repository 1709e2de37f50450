"""StepRunner with a real worker pool, real module files and wasmtime; the link is a list."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from disks import fill, mounted_tmpfs
from google.protobuf.duration_pb2 import Duration
from prometheus_client import CollectorRegistry

from agentflow.clock import Clock, ManualClock
from agentflow.v1 import node_pb2, types_pb2
from agentflow.vocabulary import Isolation
from noded.cgroups import CgroupStats, NoneDriver, StepLimits
from noded.drain import DrainState
from noded.errors import StateFull
from noded.metrics import NodeMetrics
from noded.modules import ModuleStore
from noded.runner import OUTBOX_RETRY_INTERVAL, StepRunner
from noded.state import FailingNodeState, MemoryNodeState, NodeState, ResultKey, SqliteNodeState
from noded.workers import WorkerPool

pytestmark = pytest.mark.component

MiB = 1024 * 1024


class Sent:
    """Messages the runner sent up, with a way to wait for one."""

    def __init__(self) -> None:
        self.messages: list[node_pb2.NodeMessage] = []
        self._changed = asyncio.Event()

    def __call__(self, message: node_pb2.NodeMessage) -> bool:
        self.messages.append(message)
        self._changed.set()
        return True

    async def result(self, step: str) -> types_pb2.StepResult:
        async with asyncio.timeout(30):
            while True:
                for m in self.messages:
                    if m.WhichOneof("kind") == "result" and m.result.step == step:
                        return m.result
                self._changed.clear()
                await self._changed.wait()

    async def changed(self) -> None:
        self._changed.clear()
        await self._changed.wait()

    def kinds(self, step: str) -> list[str]:
        out = []
        for m in self.messages:
            kind = m.WhichOneof("kind")
            if (kind == "result" and m.result.step == step) or (kind == "started" and m.started.attempt.step == step):
                out.append(kind)
        return out


class OomKillingCgroup:
    """Stands in for the kernel's OOM killer: kills the worker it is given, reports the kill."""

    def __init__(self, name: str) -> None:
        self.name = name

    def attach(self, pid: int) -> None:
        os.kill(pid, signal.SIGKILL)

    def release(self, pid: int | None) -> CgroupStats:
        return CgroupStats(memory_peak_bytes=192 * MiB, oom_kills=1, cpu_usage_ns=None)


class OomDriver(NoneDriver):
    mode = Isolation.CGROUP1

    def create(self, name: str, limits: StepLimits) -> OomKillingCgroup:  # type: ignore[override]
        return OomKillingCgroup(name)


def digest_of(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
async def make_runner(
    tmp_path: Path, built_agents: Path
) -> AsyncIterator[Callable[..., Awaitable[tuple[StepRunner, Sent]]]]:
    library = {digest_of(p): p for p in (built_agents / "tests" / "agents").glob("*.wasm")}
    pools: list[WorkerPool] = []

    async def fetch(digest: str) -> AsyncIterator[bytes]:
        yield library[digest].read_bytes()

    async def make(
        *, state: NodeState | None = None, cgroups: NoneDriver | None = None, clock: Clock | None = None
    ) -> tuple[StepRunner, Sent]:
        pool = WorkerPool(tmp_path / f"compiled-{len(pools)}", warm=1, max_workers=2)
        pools.append(pool)
        await pool.start()
        sent = Sent()
        metrics = NodeMetrics(CollectorRegistry())
        runner = StepRunner(
            pool=pool,
            modules=ModuleStore(tmp_path / "modules", fetch),
            state=state or MemoryNodeState(),
            scratch_root=tmp_path / "scratch",
            send=sent,
            metrics=metrics,
            cgroups=cgroups or NoneDriver(node_name="test"),
            drain=DrainState(metrics),
            clock=clock,
        )
        return runner, sent

    yield make
    for pool in pools:
        await pool.shutdown()


def assignment(
    built_agents: Path, agent: str, *, step: str = "s", attempt: int = 1, **stdin: object
) -> types_pb2.Assignment:
    path = built_agents / "tests" / "agents" / f"{agent}.wasm"
    document = {"input": stdin or None, "upstream": {}, "step": {"run": "r1", "name": step, "attempt": attempt}}
    return types_pb2.Assignment(
        run_id="r1",
        step=step,
        attempt=attempt,
        module_digest=digest_of(path),
        stdin_json=json.dumps(document),
        resources=types_pb2.Resources(cpu_millis=100, memory_bytes=64 * MiB),
        timeout=Duration(seconds=30),
        workflow_name="wf",
    )


async def test_result_is_kept_until_acked(make_runner, built_agents: Path) -> None:
    state = MemoryNodeState()
    runner, sent = await make_runner(state=state)
    runner.on_assign(assignment(built_agents, "echo", greeting="hi"))
    result = await sent.result("s")
    assert result.outcome == types_pb2.STEP_OUTCOME_SUCCEEDED
    assert json.loads(result.output_json)["input"] == {"greeting": "hi"}
    assert sent.kinds("s") == ["started", "result"]
    key = ResultKey("r1", "s", 1)
    assert [k for k, _ in await state.pending_results()] == [key]
    assert runner.unacked()[0][0] == key and runner.in_flight() == []

    # Delivered again (e.g. after a reconnect): the stored result is resent, the step is not rerun.
    runner.on_assign(assignment(built_agents, "echo", greeting="hi"))
    assert sent.kinds("s") == ["started", "result", "result"]

    await runner.on_ack(key, stale=False)
    assert await state.pending_results() == [] and runner.unacked() == []


async def test_full_disk_still_sends_the_result(make_runner, built_agents: Path) -> None:
    runner, sent = await make_runner(state=FailingNodeState())
    runner.on_assign(assignment(built_agents, "echo"))
    result = await sent.result("s")
    assert result.outcome == types_pb2.STEP_OUTCOME_SUCCEEDED
    assert [k for k, _ in runner.unacked()] == [ResultKey("r1", "s", 1)]  # kept in memory for a resend


async def test_on_a_real_full_disk_the_result_is_sent_and_saved_once_space_returns(
    make_runner, built_agents: Path, tmp_path: Path
) -> None:
    clock = ManualClock()
    with mounted_tmpfs(tmp_path / "disk", size="4m") as disk:
        state = await SqliteNodeState.open(disk / "noded.db")
        try:
            await state.set_node_id("n1")  # the database and its WAL exist before the disk fills
            runner, sent = await make_runner(state=state, clock=clock)
            saver = asyncio.create_task(runner.save_refused_results())
            filler = fill(disk)
            runner.on_assign(assignment(built_agents, "echo", greeting="full"))

            result = await sent.result("s")  # sent at once, not held until a reconnect
            assert result.outcome == types_pb2.STEP_OUTCOME_SUCCEEDED
            assert json.loads(result.output_json)["input"] == {"greeting": "full"}
            assert runner.unsaved_count == 1
            with pytest.raises(StateFull, match="the disk is full"):
                await state.put_result(ResultKey("r1", "other", 1), b"x")

            await clock.wait_for_sleepers()
            await clock.advance(OUTBOX_RETRY_INTERVAL)  # still full: it stays in memory, unsaved
            assert await state.pending_results() == []
            assert [k for k, _ in runner.unacked()] == [ResultKey("r1", "s", 1)]

            filler.unlink()  # space is back: the next retry writes it to the outbox
            await clock.wait_for_sleepers()
            await clock.advance(OUTBOX_RETRY_INTERVAL)
            saved = await state.pending_results()
            assert [k for k, _ in saved] == [ResultKey("r1", "s", 1)]
            assert types_pb2.StepResult.FromString(saved[0][1]) == result
            assert runner.unsaved_count == 0
            saver.cancel()
            await asyncio.gather(saver, return_exceptions=True)
        finally:
            await state.close()


async def test_kernel_oom_kill_is_reported_as_the_memory_limit(make_runner, built_agents: Path) -> None:
    runner, sent = await make_runner(cgroups=OomDriver(node_name="test"))
    runner.on_assign(assignment(built_agents, "echo"))
    result = await sent.result("s")
    assert result.outcome == types_pb2.STEP_OUTCOME_FAILED
    assert result.failure_kind == types_pb2.FAILURE_KIND_MEMORY
    assert result.error == "memory limit reached: the worker was killed by the kernel at its cgroup limit of 192Mi"


async def test_cancel_kills_the_running_step(make_runner, built_agents: Path) -> None:
    runner, sent = await make_runner()
    runner.on_assign(assignment(built_agents, "spin"))
    async with asyncio.timeout(30):
        while "started" not in sent.kinds("s"):
            await sent.changed()
    runner.on_cancel(ResultKey("r1", "s", 1))
    result = await sent.result("s")
    assert result.outcome == types_pb2.STEP_OUTCOME_CANCELLED
    assert runner.in_flight() == []


async def test_module_with_the_wrong_bytes_fails_the_step(make_runner, built_agents: Path, tmp_path: Path) -> None:
    runner, sent = await make_runner()
    bad = assignment(built_agents, "echo")
    bad.module_digest = "sha256:" + "0" * 64  # nothing in the library hashes to this
    runner.on_assign(bad)
    result = await sent.result("s")
    assert result.outcome == types_pb2.STEP_OUTCOME_FAILED
    assert result.failure_kind == types_pb2.FAILURE_KIND_MODULE
    assert "sha256:" + "0" * 64 in result.error
    assert not list((tmp_path / "modules").glob("*.wasm"))


async def test_guest_failure_carries_exit_code_and_stderr(make_runner, built_agents: Path) -> None:
    runner, sent = await make_runner()
    runner.on_assign(assignment(built_agents, "fail"))
    result = await sent.result("s")
    assert (result.outcome, result.failure_kind, result.exit_code) == (
        types_pb2.STEP_OUTCOME_FAILED,
        types_pb2.FAILURE_KIND_EXIT,
        3,
    )
    assert "boom" in result.stderr
    assert result.duration.ToTimedelta().total_seconds() > 0
