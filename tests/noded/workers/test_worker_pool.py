"""WorkerPool with real worker processes running real agents."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import psutil
import pytest
from waiting import eventually

from noded.sandbox import StepJob
from noded.workers import PoolClosed, PoolState, StepCancelled, WorkerCrashed, WorkerPool, WorkerStartError

pytestmark = pytest.mark.component

MiB = 1024 * 1024
MakeJob = Callable[..., StepJob]


def children() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True) if p.status() != psutil.STATUS_ZOMBIE}


def gone(pids: list[int]) -> bool:
    return not any(psutil.pid_exists(pid) for pid in pids)


@pytest.fixture
async def pool(tmp_path: Path) -> AsyncIterator[WorkerPool]:
    async with WorkerPool(tmp_path / "cache", warm=1, max_workers=2) as pool:
        yield pool


async def test_start_keeps_warm_workers(tmp_path: Path, agent_job: MakeJob) -> None:
    async with WorkerPool(tmp_path, warm=2, max_workers=3) as pool:
        assert (pool.state, pool.idle_count, pool.busy_count) == (PoolState.RUNNING, 2, 0)
        # long enough that a worker starting on a loaded machine is ready before the job ends
        slow = asyncio.create_task(pool.run(agent_job("tests/agents/sleep", input={"ms": 3000})))
        # the busy worker's place among the warm ones is refilled in the background
        await eventually(lambda: (pool.busy_count, pool.idle_count) == (1, 2), within=10)
        assert not slow.done()
        assert (await slow).output_json == '{"slept":3000}'
        assert (pool.busy_count, pool.idle_count, len(pool.pids)) == (0, 3, 3)  # never above max_workers


async def test_concurrent_jobs_share_a_bounded_pool(tmp_path: Path, agent_job: MakeJob) -> None:
    pids: set[int] = set()
    async with WorkerPool(tmp_path, warm=1, max_workers=3) as pool:
        busiest = 0

        def started(pid: int) -> None:
            nonlocal busiest
            pids.add(pid)
            busiest = max(busiest, pool.busy_count)
            assert len(pool.pids) <= 3

        # Jobs long enough that the pool has started all three workers (slow on a loaded host)
        # before the first one is free again.
        results = await asyncio.gather(
            *(pool.run(agent_job("tests/agents/sleep", input={"ms": 2500 + n}), on_start=started) for n in range(6))
        )
        assert [json.loads(r.output_json or "null") for r in results] == [{"slept": 2500 + n} for n in range(6)]
        assert busiest == 3
        assert len(pids) == 3


async def test_killed_worker_is_lost_and_replaced(pool: WorkerPool, agent_job: MakeJob) -> None:
    started: list[int] = []
    task = asyncio.create_task(pool.run(agent_job("tests/agents/spin"), on_start=started.append))
    await eventually(lambda: bool(started), within=10)
    os.kill(started[0], signal.SIGKILL)
    result = await task
    assert result.failure_kind == "worker_lost"
    assert result.error == f"worker process {started[0]} was killed by signal SIGKILL"
    assert (await pool.run(agent_job("tests/agents/echo", stdin=b"[]"))).output_json == "[]"
    await eventually(lambda: started[0] not in pool.pids, within=10)


async def test_cancel_kills_the_spinning_worker(pool: WorkerPool, agent_job: MakeJob) -> None:
    task = asyncio.create_task(pool.run(agent_job("tests/agents/spin"), key="run-1/spin/1"))
    await eventually(lambda: pool.pid_of("run-1/spin/1") is not None, within=10)
    pid = pool.pid_of("run-1/spin/1")
    assert pid is not None
    assert await pool.cancel("run-1/spin/1")
    with pytest.raises(StepCancelled) as cancelled:
        await task
    assert cancelled.value.key == "run-1/spin/1"
    assert not await pool.cancel("run-1/spin/1")
    assert not await pool.cancel("never-started")
    await eventually(lambda: not psutil.pid_exists(pid), within=10)
    assert (await pool.run(agent_job("tests/agents/echo", stdin=b"1"))).ok


async def test_cancel_while_waiting_for_a_worker(tmp_path: Path, agent_job: MakeJob) -> None:
    async with WorkerPool(tmp_path, warm=1, max_workers=1) as pool:
        spinning = asyncio.create_task(pool.run(agent_job("tests/agents/spin"), key="a"))
        await eventually(lambda: pool.pid_of("a") is not None, within=10)
        waiting = asyncio.create_task(pool.run(agent_job("tests/agents/echo"), key="b"))
        await eventually(lambda: pool.queued_count == 1, what="b waiting for a worker")
        assert pool.pid_of("b") is None
        assert await pool.cancel("b")
        with pytest.raises(StepCancelled):
            await waiting
        assert await pool.cancel("a")
        with pytest.raises(StepCancelled):
            await spinning


async def test_task_cancellation_kills_the_worker(pool: WorkerPool, agent_job: MakeJob) -> None:
    started: list[int] = []
    task = asyncio.create_task(pool.run(agent_job("tests/agents/spin"), on_start=started.append))
    await eventually(lambda: bool(started), within=10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await eventually(lambda: not psutil.pid_exists(started[0]), within=10)
    assert (await pool.run(agent_job("tests/agents/echo", stdin=b"2"))).output_json == "2"


async def test_memory_limit_does_not_hurt_the_worker(tmp_path: Path, agent_job: MakeJob) -> None:
    pids: list[int] = []
    async with WorkerPool(tmp_path, warm=1, max_workers=1) as pool:
        hog = await pool.run(agent_job("tests/agents/hog", memory_limit_bytes=32 * MiB), on_start=pids.append)
        assert (hog.failure_kind, hog.error) == ("memory", "memory limit of 32Mi reached")
        echo = await pool.run(agent_job("tests/agents/echo", stdin=b"{}"), on_start=pids.append)
        assert echo.ok
        assert pids[0] == pids[1]  # the same worker process served both


async def test_guest_failures_come_back_as_results(pool: WorkerPool, agent_job: MakeJob) -> None:
    results = await asyncio.gather(
        pool.run(agent_job("tests/agents/fail")),
        pool.run(agent_job("tests/agents/trap")),
        pool.run(agent_job("tests/agents/spin", timeout_s=0.3)),
        pool.run(agent_job("tests/agents/noisy")),
        pool.run(agent_job("tests/agents/hostcalls")),
    )
    assert [r.failure_kind for r in results] == ["exit", "trap", "timeout", "output_limit", None]
    assert "boom" in results[0].stderr
    assert results[4].denied_host_calls == 2


async def test_unresponsive_worker_hits_the_hard_guard(tmp_path: Path, agent_job: MakeJob) -> None:
    async with WorkerPool(tmp_path, warm=1, max_workers=1, guard_s=0.3) as pool:
        pids: list[int] = []

        def freeze(pid: int) -> None:
            pids.append(pid)
            os.kill(pid, signal.SIGSTOP)  # the worker cannot answer, not even its own timeout

        result = await pool.run(agent_job("tests/agents/echo", timeout_s=0.2), on_start=freeze)
        assert result.failure_kind == "timeout"
        assert result.error == "worker did not answer within 0.5s and was killed"
        assert not psutil.pid_exists(pids[0])
        assert (await pool.run(agent_job("tests/agents/echo", stdin=b"3"))).output_json == "3"


async def test_before_job_hook(tmp_path: Path, agent_job: MakeJob) -> None:
    calls: list[tuple[str, int, str]] = []

    async def before_job(pid: int, job: StepJob) -> None:
        calls.append(("before", pid, job.stdin.decode()))
        if job.stdin == b'"refuse"':
            raise PermissionError("cannot move worker into its cgroup")

    async with WorkerPool(tmp_path, warm=1, max_workers=1, before_job=before_job) as pool:
        job = agent_job("tests/agents/echo", stdin=b"[5]")
        result = await pool.run(job, on_start=lambda pid: calls.append(("start", pid, "")))
        assert result.output_json == "[5]"
        pid = calls[0][1]
        assert calls == [("before", pid, "[5]"), ("start", pid, "")]

        with pytest.raises(PermissionError):
            await pool.run(agent_job("tests/agents/echo", stdin=b'"refuse"'))
        await eventually(lambda: not psutil.pid_exists(pid))  # a worker in an unknown state is not reused
        assert (await pool.run(agent_job("tests/agents/echo", stdin=b"4"))).output_json == "4"


async def test_host_side_error_raises(pool: WorkerPool, agent_job: MakeJob) -> None:
    with pytest.raises(WorkerCrashed, match="FileNotFoundError"):
        await pool.run(agent_job("tests/agents/echo", scratch_dir="/nonexistent"))
    assert (await pool.run(agent_job("tests/agents/echo", stdin=b"5"))).ok


async def test_shutdown_leaves_no_children(tmp_path: Path, agent_job: MakeJob) -> None:
    pool = WorkerPool(tmp_path, warm=2, max_workers=3, grace_s=1.0)
    await pool.start()
    running = asyncio.create_task(pool.run(agent_job("tests/agents/spin")))
    await eventually(lambda: pool.busy_count == 1, within=10)
    await eventually(lambda: len(pool.pids) == 3, within=10)
    pids = pool.pids
    assert set(pids) <= children()

    await asyncio.gather(pool.shutdown(), pool.shutdown())
    await pool.shutdown()
    assert pool.state is PoolState.STOPPED
    assert gone(pids), [psutil.Process(p).status() for p in pids if psutil.pid_exists(p)]
    assert not children()
    with pytest.raises(PoolClosed):
        await running
    with pytest.raises(PoolClosed):
        await pool.run(agent_job("tests/agents/echo"))


async def test_bad_python_fails_to_start(tmp_path: Path) -> None:
    pool = WorkerPool(tmp_path, warm=1, max_workers=1, python="/nonexistent/python")
    with pytest.raises(WorkerStartError):
        await pool.start()
    assert pool.state is PoolState.STOPPED


async def test_worker_that_dies_at_start_is_reported(tmp_path: Path) -> None:
    pool = WorkerPool(tmp_path, warm=1, max_workers=1, python="/bin/false")
    with pytest.raises(WorkerStartError, match="exited with code 1 before it was ready"):
        await pool.start()
    assert not children()


@pytest.mark.parametrize(("warm", "max_workers"), [(2, 1), (-1, 1), (0, 0)], ids=str)
def test_sizes_are_validated(warm: int, max_workers: int) -> None:
    with pytest.raises(ValueError):
        WorkerPool("/tmp", warm=warm, max_workers=max_workers)


async def test_on_end_runs_before_the_worker_is_reused(tmp_path: Path, agent_job: MakeJob) -> None:
    events: list[tuple[str, int]] = []
    async with WorkerPool(tmp_path, warm=1, max_workers=1) as pool:

        def start(pid: int) -> None:
            events.append(("start", pid))

        def end(pid: int) -> None:
            events.append(("end", pid))

        first = pool.run(agent_job("tests/agents/sleep", input={"ms": 100}), on_start=start, on_end=end)
        second = pool.run(agent_job("tests/agents/echo", stdin=b"{}"), on_start=start, on_end=end)
        results = await asyncio.gather(first, second)
        assert all(r.ok for r in results)
    pid = events[0][1]
    assert events == [("start", pid), ("end", pid), ("start", pid), ("end", pid)]


async def test_on_end_runs_when_the_worker_dies(tmp_path: Path, agent_job: MakeJob) -> None:
    ended: list[int] = []
    async with WorkerPool(tmp_path, warm=1, max_workers=1) as pool:
        task = asyncio.create_task(
            pool.run(
                agent_job("tests/agents/spin"), on_start=lambda pid: os.kill(pid, signal.SIGKILL), on_end=ended.append
            )
        )
        result = await task
    assert result.failure_kind == "worker_lost"
    assert len(ended) == 1
