#!/usr/bin/env python3
"""Scale figures: the scheduler's placements per second, and the daemons' idle memory.

    .venv/bin/python bench/scale.py [--nodes 1000] [--ready 10000] [--repeat 5]

- `plan()` over `--nodes` ready nodes (8 slots, 16 cores, 64 GiB each, four label sets) and
  `--ready` ready steps of 100 runs (a quarter with a node selector, some avoiding a node),
  timed in-process: placements per second (target >= 50,000/s).
- The fleet's share of every scheduling pass (`schedule_pass` with nothing ready, over a real
  SQLite store of 1,000 and 5,000 registered nodes): the nodes decoded again on every pass, as
  before, and read again only when one changed (`PlacementNodes`), in the same run.
- Idle RSS of a control plane and of a noded (with its warm workers, counted apart), started as
  real processes and left idle for two seconds after they are ready (target: noded <= 60 MB).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

import psutil
from results import write_section

from agentflow.vocabulary import Isolation, NodeStatus
from controlplane.domain import Resources
from controlplane.engine.placement import PlacementNodes, schedule_pass
from controlplane.scheduler import ClusterSnapshot, NodeView, ReadyStep, plan
from controlplane.store import NodeRecord, StateStore

ROOT = Path(__file__).resolve().parent.parent


GiB = 1 << 30
LABELS = ({"zone": "a"}, {"zone": "b"}, {"zone": "a", "gpu": "a100"}, {"zone": "c"})


def fleet(n: int) -> ClusterSnapshot:
    return ClusterSnapshot(
        nodes=tuple(
            NodeView(
                node_id=f"id-{i:05d}",
                name=f"node-{i:05d}",
                status=NodeStatus.READY,
                labels=LABELS[i % len(LABELS)],
                capacity=Resources(cpu_millis=16_000, memory_bytes=64 * GiB, slots=8),
                allocated=Resources(cpu_millis=0, memory_bytes=0, slots=0),
                run_counts={},
            )
            for i in range(n)
        )
    )


def ready_steps(n: int, nodes: int, rng: random.Random) -> list[ReadyStep]:
    steps = []
    for i in range(n):
        run = i % 100
        selector = {"zone": "a"} if i % 4 == 0 else {}
        avoid = frozenset({f"id-{rng.randrange(nodes):05d}"}) if i % 10 == 0 else frozenset()
        steps.append(
            ReadyStep(
                run_id=f"run-{run:03d}", step=f"s{i}", attempt=1,
                request=Resources(cpu_millis=250, memory_bytes=256 << 20, slots=1),
                node_selector=selector, not_before=None, order=(run, i), avoid_nodes=avoid,
            )
        )  # fmt: skip
    return steps


def placements_per_second(nodes: int, ready: int, repeat: int) -> tuple[float, int, float]:
    snapshot, steps = fleet(nodes), ready_steps(ready, nodes, random.Random(7))
    now = datetime.now(UTC)
    seconds, placed = [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        result = plan(snapshot, steps, now=now)
        seconds.append(time.perf_counter() - start)
        placed = len(result.placements)
    best = min(seconds)
    return placed / best, placed, statistics.median(seconds)


async def pass_ms(nodes: int, *, passes: int = 50) -> tuple[float, float]:
    """(ms per pass decoding the nodes every pass, ms per pass with `PlacementNodes`)."""
    now = datetime.now(UTC)
    live = {f"id-{i:05d}": NodeStatus.READY for i in range(nodes)}
    with tempfile.TemporaryDirectory(prefix="agentflow-scale-") as tmp:
        store = await StateStore.open(Path(tmp) / "state.db")
        try:
            async with store.transaction() as tx:
                for i in range(nodes):
                    tx.upsert_node(NodeRecord(
                        id=f"id-{i:05d}", name=f"node-{i:05d}", status=NodeStatus.READY, isolation=Isolation.NONE,
                        labels=LABELS[i % len(LABELS)], capacity=Resources(cpu_millis=16_000, memory_bytes=64 * GiB,
                        slots=8), version="bench", registered_at=now, last_heartbeat=now,
                    ))  # fmt: skip
            figures = []
            for fresh in (True, False):
                cached = PlacementNodes()
                async with store.transaction() as tx:
                    start = time.perf_counter()
                    for _ in range(passes):
                        schedule_pass(tx, nodes=PlacementNodes() if fresh else cached, live_status=live, now=now)
                    figures.append((time.perf_counter() - start) / passes * 1000)
            return figures[0], figures[1]
        finally:
            await store.close()


def rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 1e6


def idle_rss() -> tuple[float, float, float, int]:
    """(control plane MB, noded MB, its workers' MB together, how many workers)."""
    with tempfile.TemporaryDirectory(prefix="agentflow-scale-") as tmp:
        data = Path(tmp)
        cp = subprocess.Popen(
            [sys.executable, "-m", "controlplane", "--data-dir", str(data / "cp"), "--listen", "127.0.0.1:0",
             "--metrics-listen", "127.0.0.1:0", "--log-level", "warning"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        node = None
        try:
            state = data / "cp" / "controlplane.json"
            while not state.exists():
                time.sleep(0.05)
            server = json.loads(state.read_text())["grpc"]
            node = subprocess.Popen(
                [sys.executable, "-m", "noded", "--server", server, "--data-dir", str(data / "node"), "--name", "n1",
                 "--metrics-listen", "127.0.0.1:0", "--log-level", "warning"],
                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            while not (data / "node" / "noded.json").exists():
                time.sleep(0.05)
            time.sleep(2.0)  # idle: heartbeats only
            workers = psutil.Process(node.pid).children()
            return rss_mb(cp.pid), rss_mb(node.pid), sum(rss_mb(w.pid) for w in workers), len(workers)
        finally:
            for proc in (node, cp):
                if proc is not None:
                    proc.terminate()
                    proc.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--ready", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rate, placed, median = placements_per_second(args.nodes, args.ready, args.repeat)
    passes = {n: asyncio.run(pass_ms(n)) for n in (1000, 5000)}
    cp_mb, node_mb, workers_mb, workers = idle_rss()
    machine = f"{os.cpu_count()} cores, {platform.machine()}, Linux {platform.release()}, {date.today()}"
    text = (
        f"Scale figures ({machine}):\n\n"
        "| figure | measured | target |\n|---|---|---|\n"
        f"| plan(): {args.ready} ready steps over {args.nodes} nodes | {rate:,.0f} placements/s "
        f"({placed} placed, median pass {median * 1000:.0f} ms) | >= 50,000/s |\n"
        + "".join(
            f"| a scheduling pass's fleet part, {n} nodes: decoded every pass / read on change | "
            f"{every:.2f} / {cached:.2f} ms | |\n"
            for n, (every, cached) in passes.items()
        )
        + f"| idle RSS, control plane | {cp_mb:.0f} MB | |\n"
        f"| idle RSS, noded | {node_mb:.0f} MB (+ {workers} warm workers, {workers_mb:.0f} MB together) | <= 60 MB |\n"
    )
    print(text)
    write_section("scale.py", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
