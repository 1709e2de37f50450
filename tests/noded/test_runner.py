"""StepRunner with a real worker pool, real module files and wasmtime; the link is a list."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import pytest
from disks import fill, mounted_tmpfs
from jobs import digest_of
from prometheus_client import CollectorRegistry
from waiting import eventually

from agentflow.attempt import AttemptKey
from agentflow.clock import Clock, ManualClock
from agentflow.vocabulary import FailureKind, Isolation, ResourceLimit, StepOutcome
from noded.cgroups import CgroupStats, NoneDriver, StepLimits
from noded.drain import DrainState
from noded.errors import StateFull
from noded.messages import Ack, Assignment, Started, StepResult, ToControlPlane
from noded.metrics import NodeMetrics
from noded.modules import ModuleStore
from noded.runner import OUTBOX_RETRY_INTERVAL, STARTED_NOTICE_DELAY, StepRunner
from noded.state import FailingNodeState, MemoryNodeState, NodeState, SqliteNodeState
from noded.workers import WorkerPool

pytestmark = pytest.mark.component

MiB = 1024 * 1024


class Sent:
    """Messages the runner sent up, with a way to wait for one."""

    def __init__(self) -> None:
        self.messages: list[ToControlPlane] = []
        self._changed = asyncio.Event()

    def __call__(self, message: ToControlPlane) -> bool:
        self.messages.append(message)
        self._changed.set()
        return True

    async def result(self, step: str) -> StepResult:
        async with asyncio.timeout(30):
            while True:
                for m in self.messages:
                    if isinstance(m, StepResult) and m.key.step == step:
                        return m
                self._changed.clear()
                await self._changed.wait()

    async def changed(self) -> None:
        self._changed.clear()
        await self._changed.wait()

    def kinds(self, step: str) -> list[str]:
        return [type(m).__name__ for m in self.messages if isinstance(m, StepResult | Started) and m.key.step == step]


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
        """A started runner (shut down after the test) and what it sends."""
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
        await stack.enter_async_context(runner)
        return runner, sent

    async with contextlib.AsyncExitStack() as stack:
        yield make
    for pool in pools:
        await pool.shutdown()


def assignment(built_agents: Path, agent: str, *, step: str = "s", attempt: int = 1, **stdin: object) -> Assignment:
    path = built_agents / "tests" / "agents" / f"{agent}.wasm"
    document = {"input": stdin or None, "upstream": {}, "step": {"run": "r1", "name": step, "attempt": attempt}}
    return Assignment(
        key=AttemptKey("r1", step, attempt),
        workflow="wf",
        module_digest=digest_of(path),
        stdin_json=json.dumps(document),
        cpu_millis=100,
        memory_bytes=64 * MiB,
        timeout=timedelta(seconds=30),
    )


async def test_result_is_kept_until_acked(make_runner, built_agents: Path) -> None:
    state = MemoryNodeState()
    runner, sent = await make_runner(state=state, clock=ManualClock())
    runner.on_assign(assignment(built_agents, "echo", greeting="hi"))
    result = await sent.result("s")
    assert result.outcome == StepOutcome.SUCCEEDED
    assert json.loads(result.output_json)["input"] == {"greeting": "hi"}
    assert sent.kinds("s") == ["StepResult"]  # a quick step: its result says it started
    key = AttemptKey("r1", "s", 1)
    assert [r.key for r in await state.pending_results()] == [key]
    assert runner.unacked() == [result] and runner.in_flight() == []

    # Delivered again (e.g. after a reconnect): the stored result is resent, the step is not rerun.
    runner.on_assign(assignment(built_agents, "echo", greeting="hi"))
    assert sent.kinds("s") == ["StepResult", "StepResult"]

    await runner.on_ack(Ack(key=key, stale=False))
    assert await state.pending_results() == [] and runner.unacked() == []


async def test_full_disk_still_sends_the_result(make_runner, built_agents: Path) -> None:
    runner, sent = await make_runner(state=FailingNodeState())
    runner.on_assign(assignment(built_agents, "echo"))
    result = await sent.result("s")
    assert result.outcome == StepOutcome.SUCCEEDED
    assert [r.key for r in runner.unacked()] == [AttemptKey("r1", "s", 1)]  # kept in memory for a resend


async def test_on_a_real_full_disk_the_result_is_sent_and_saved_once_space_returns(
    make_runner, built_agents: Path, tmp_path: Path
) -> None:
    clock = ManualClock()
    with mounted_tmpfs(tmp_path / "disk", size="4m") as disk:
        state = await SqliteNodeState.open(disk / "noded.db")
        try:
            await state.set_node_id("n1")  # the database and its WAL exist before the disk fills
            runner, sent = await make_runner(state=state, clock=clock)
            filler = fill(disk)
            runner.on_assign(assignment(built_agents, "echo", greeting="full"))

            result = await sent.result("s")  # sent at once, not held until a reconnect
            assert result.outcome == StepOutcome.SUCCEEDED
            assert json.loads(result.output_json)["input"] == {"greeting": "full"}
            await eventually(lambda: runner.unsaved_count == 1, what="the outbox refusing the result")
            with pytest.raises(StateFull, match="the disk is full"):
                await state.put_result(dataclasses.replace(result, key=AttemptKey("r1", "other", 1)))

            await clock.wait_for_sleepers()
            await clock.advance(OUTBOX_RETRY_INTERVAL)  # still full: it stays in memory, unsaved
            assert await state.pending_results() == []
            assert [r.key for r in runner.unacked()] == [AttemptKey("r1", "s", 1)]

            filler.unlink()  # space is back: the next retry writes it to the outbox
            await clock.wait_for_sleepers()
            await clock.advance(OUTBOX_RETRY_INTERVAL)
            await eventually(lambda: runner.unsaved_count == 0, what="the retry saving the result")
            assert await state.pending_results() == [result]
        finally:
            await state.close()


async def test_kernel_oom_kill_is_reported_as_the_memory_limit(make_runner, built_agents: Path) -> None:
    runner, sent = await make_runner(cgroups=OomDriver(node_name="test"))
    runner.on_assign(assignment(built_agents, "echo"))
    result = await sent.result("s")
    assert result.outcome == StepOutcome.FAILED
    assert result.failure_kind == FailureKind.MEMORY
    assert result.error == "memory limit reached: the worker was killed by the kernel at its cgroup limit of 192Mi"
    assert result.usage.limits_hit == (ResourceLimit.MEMORY,)
    assert result.usage.peak_memory_bytes == 192 * MiB  # the cgroup's figure


class MeasuredCgroup:
    """A step cgroup that reports what the kernel would have counted."""

    def __init__(self, name: str) -> None:
        self.name = name

    def attach(self, pid: int) -> None:
        pass

    def release(self, pid: int | None) -> CgroupStats:
        return CgroupStats(memory_peak_bytes=200 * MiB, oom_kills=0, cpu_usage_ns=1_500_000_000)


class MeasuredDriver(NoneDriver):
    mode = Isolation.CGROUP1

    def create(self, name: str, limits: StepLimits) -> MeasuredCgroup:  # type: ignore[override]
        return MeasuredCgroup(name)


async def test_without_a_cgroup_the_worker_measures_the_step(make_runner, built_agents: Path) -> None:
    runner, sent = await make_runner()
    runner.on_assign(assignment(built_agents, "hostcalls"))
    result = await sent.result("s")
    assert result.outcome == StepOutcome.SUCCEEDED, result
    usage = result.usage
    assert usage.host_calls == 4  # log, llm.complete, http.fetch and an unknown operation
    assert 0 < usage.cpu_seconds < usage.wall_seconds
    assert usage.wall_seconds == pytest.approx(result.duration.total_seconds(), abs=1e-6)
    assert usage.peak_memory_bytes >= 64 * 1024  # at least the guest's one page
    assert (usage.fetched_bytes, usage.limits_hit) == (0, ())


async def test_a_cgroup_s_figures_win_over_the_worker_s(make_runner, built_agents: Path) -> None:
    runner, sent = await make_runner(cgroups=MeasuredDriver(node_name="test"))
    runner.on_assign(assignment(built_agents, "echo"))
    usage = (await sent.result("s")).usage
    assert (usage.cpu_seconds, usage.peak_memory_bytes) == (1.5, 200 * MiB)


async def test_cancel_kills_the_running_step(make_runner, built_agents: Path) -> None:
    runner, sent = await make_runner()
    runner.on_assign(assignment(built_agents, "spin"))
    async with asyncio.timeout(30):
        while "Started" not in sent.kinds("s"):
            await sent.changed()
    runner.on_cancel(AttemptKey("r1", "s", 1))
    result = await sent.result("s")
    assert result.outcome == StepOutcome.CANCELLED
    assert runner.in_flight() == []


async def test_module_with_the_wrong_bytes_fails_the_step(make_runner, built_agents: Path, tmp_path: Path) -> None:
    runner, sent = await make_runner()
    bad = dataclasses.replace(assignment(built_agents, "echo"), module_digest="sha256:" + "0" * 64)  # unknown bytes
    runner.on_assign(bad)
    result = await sent.result("s")
    assert result.outcome == StepOutcome.FAILED
    assert result.failure_kind == FailureKind.MODULE
    assert "sha256:" + "0" * 64 in result.error
    assert not list((tmp_path / "modules").glob("*.wasm"))


async def test_guest_failure_carries_exit_code_and_stderr(make_runner, built_agents: Path) -> None:
    runner, sent = await make_runner()
    runner.on_assign(assignment(built_agents, "fail"))
    result = await sent.result("s")
    assert (result.outcome, result.failure_kind, result.exit_code) == (
        StepOutcome.FAILED,
        FailureKind.EXIT,
        3,
    )
    assert "boom" in result.stderr
    assert result.duration > timedelta(0)


def armed(built_agents: Path, agent: str, *, step: str, after: str) -> Assignment:
    """An assignment armed behind attempt 1 of step `after` (its output not yet in its input)."""
    return dataclasses.replace(assignment(built_agents, agent, step=step), after=AttemptKey("r1", after, 1))


async def test_an_armed_attempt_starts_when_the_one_it_waits_for_succeeds_with_its_output(
    make_runner, built_agents: Path
) -> None:
    runner, sent = await make_runner()
    runner.on_assign(assignment(built_agents, "sleep", step="a", ms=300))
    runner.on_assign(armed(built_agents, "echo", step="b", after="a"))
    assert runner.in_flight() == [AttemptKey("r1", "a", 1), AttemptKey("r1", "b", 1)]
    assert sent.kinds("b") == []  # held while a runs
    done = await sent.result("b")
    assert done.outcome == StepOutcome.SUCCEEDED
    assert json.loads(done.output_json)["upstream"] == {"a": {"slept": 300}}
    first = await sent.result("a")
    assert sent.messages.index(first) < sent.messages.index(done)


async def test_an_armed_attempt_is_dropped_when_the_one_it_waits_for_fails(make_runner, built_agents: Path) -> None:
    runner, sent = await make_runner()
    runner.on_assign(assignment(built_agents, "fail", step="a"))
    runner.on_assign(armed(built_agents, "echo", step="b", after="a"))
    assert (await sent.result("a")).outcome == StepOutcome.FAILED
    await eventually(lambda: runner.running_count() == 0, what="a to end")
    assert runner.in_flight() == []
    assert sent.kinds("b") == []


async def test_an_attempt_armed_behind_one_already_finished_starts_at_once(make_runner, built_agents: Path) -> None:
    runner, sent = await make_runner()
    runner.on_assign(assignment(built_agents, "echo", step="a", word="first"))
    first = await sent.result("a")  # finished, not yet acked
    runner.on_assign(armed(built_agents, "echo", step="b", after="a"))
    done = await sent.result("b")
    assert json.loads(done.output_json)["upstream"] == {"a": json.loads(first.output_json)}


async def test_an_attempt_armed_behind_one_this_node_does_not_hold_goes_back_cancelled(
    make_runner, built_agents: Path
) -> None:
    runner, sent = await make_runner()
    runner.on_assign(armed(built_agents, "echo", step="b", after="a"))
    back = await sent.result("b")
    assert back.outcome == StepOutcome.CANCELLED
    assert back.error == "armed behind a attempt 1, which this node does not hold"
    assert runner.in_flight() == [] and runner.unacked() == []


async def test_a_cancel_takes_back_an_armed_attempt(make_runner, built_agents: Path) -> None:
    runner, sent = await make_runner()
    runner.on_assign(assignment(built_agents, "sleep", step="a", ms=200))
    runner.on_assign(armed(built_agents, "echo", step="b", after="a"))
    runner.on_cancel(AttemptKey("r1", "b", 1))
    assert runner.in_flight() == [AttemptKey("r1", "a", 1)]
    assert (await sent.result("a")).outcome == StepOutcome.SUCCEEDED
    await eventually(lambda: runner.running_count() == 0, what="a to end")
    assert sent.kinds("b") == []


async def test_a_step_that_runs_a_while_says_it_started(make_runner, built_agents: Path) -> None:
    clock = ManualClock()
    runner, sent = await make_runner(clock=clock)
    runner.on_assign(assignment(built_agents, "sleep", ms=1500))
    await clock.wait_for_sleepers()  # the notice waits on the clock once the worker has the job
    assert sent.kinds("s") == []
    await clock.advance(STARTED_NOTICE_DELAY)
    await eventually(lambda: sent.kinds("s") == ["Started"], what="the started notice")
    assert (await sent.result("s")).outcome == StepOutcome.SUCCEEDED
    assert sent.kinds("s") == ["Started", "StepResult"]
