#!/usr/bin/env python3
"""Do hostile agents hurt their well-behaved neighbours? Latency of a one-step echo run alone, beside
as many plain CPU-bound steps, and beside the hostile suite, on the same node.

    .venv/bin/python bench/hostile_neighbours.py [--runs 40]

Through a real `agentflow up` (control plane, router, one noded with per-step cgroups and the
confinement layers). First `--runs` echo runs one after another, alone; then the same while a
second client keeps the node busy with spinning steps (the control: load, not hostility), then
with hostile runs (unbounded recursion, bad pointers, a
relentless and a polite host-call flood, 10 MB on stderr, an infinite loop until its 2 s timeout),
each new one submitted as the last ends. Every echo run's latency is from SubmitWorkflow to the
end of its WatchRun stream. The hostile steps ask for 250m CPU each, so the scheduler leaves room
for the echo step's 100m on this machine's two cores; what remains is what the attacks cost the
neighbours through the host itself (CPU caches, the node's event loop, the disk).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

from dag_overhead import start_up
from results import write_section

from agentflow.cli.client import Client, file_digest
from agentflow.v1 import types_pb2

ROOT = Path(__file__).resolve().parent.parent
AGENTS = ROOT / "tests" / "agents"
ECHO = "apiVersion: agentflow/v1\nkind: Workflow\nname: neighbour\nversion: '1'\nagents:\n" \
       "  - {name: echo, module: ./echo.wasm, resources: {cpu: 100m, memory: 32Mi}, input: {hello: 1}}\n"  # fmt: skip
ATTACKS: list[tuple[str, str, dict[str, object]]] = [  # name, module, step fields beyond resources: {cpu: 250m}
    ("recursion", "hostile", {"input": {"attack": "recursion"}}),
    ("bad-pointers", "hostile", {"input": {"attack": "bad_pointers"}}),
    ("flood", "hostile", {"input": {"attack": "flood", "relentless": 1}}),
    ("polite-flood", "hostile", {"input": {"attack": "flood"}}),
    ("stderr", "hostile", {"input": {"attack": "stderr", "mib": 10}}),
    ("spin", "spin", {"timeout": "2s"}),
]


BUSY: list[tuple[str, str, dict[str, object]]] = [(f"busy-{i}", "spin", {"timeout": "2s"}) for i in range(len(ATTACKS))]
"""The control: as many steps with the same CPU quota, that only compute (spin until their timeout)."""


def workflow_yaml(name: str, steps: list[tuple[str, str, dict[str, object]]]) -> str:
    agents = [{"name": step, "module": f"./{module}.wasm", "resources": {"cpu": "250m"}, **fields}
              for step, module, fields in steps]  # fmt: skip
    return json.dumps({"apiVersion": "agentflow/v1", "kind": "Workflow", "name": name, "version": "1",
                       "agents": agents})  # fmt: skip


def run_once(client: Client, text: str, digests: dict[str, str]) -> tuple[float, int]:
    start = time.perf_counter()
    run_id = client.submit(workflow_yaml=text, source="bench.yaml", input_json="", module_digests=digests).run_id
    last = None
    for message in client.watch_run(run_id):
        last = message.run
    assert last is not None
    return time.perf_counter() - start, last.status


def echo_latencies(server: str, digests: dict[str, str], runs: int) -> list[float]:
    out = []
    with Client(server) as client:
        for _ in range(runs):
            seconds, status = run_once(client, ECHO, digests)
            assert status == types_pb2.RUN_STATUS_SUCCEEDED, status
            out.append(seconds)
    return out


def beside(server: str, digests: dict[str, str], runs: int, load_yaml: str) -> tuple[list[float], int]:
    """Echo latencies while another client keeps submitting `load_yaml`, each run as the last ends."""
    stop = threading.Event()
    done = [0]

    def load() -> None:
        with Client(server) as client:
            while not stop.is_set():
                run_once(client, load_yaml, digests)
                done[0] += 1

    loader = threading.Thread(target=load, name="load")
    loader.start()
    try:
        time.sleep(1.0)  # let the first load steps get going
        return echo_latencies(server, digests, runs), done[0]
    finally:
        stop.set()
        loader.join()


def summary(latencies: list[float]) -> tuple[float, float, float]:
    ordered = sorted(latencies)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p95 * 1000, ordered[-1] * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()
    os.environ.setdefault("AGENTFLOW_SLOTS", "8")
    with tempfile.TemporaryDirectory(prefix="agentflow-bench-") as tmp:
        proc, server = start_up(Path(tmp))
        try:
            digests = {}
            with Client(server) as client:
                for name in ("echo", "hostile", "spin"):
                    path = AGENTS / f"{name}.wasm"
                    client.push_module(path)
                    digests[f"./{name}.wasm"] = file_digest(path)
                run_once(client, ECHO, digests)  # warm up: module compiled, worker warm
            alone = echo_latencies(server, digests, args.runs)
            beside_busy, busy_runs = beside(server, digests, args.runs, workflow_yaml("busy", BUSY))
            beside_hostile, hostile_runs = beside(server, digests, args.runs, workflow_yaml("hostile", ATTACKS))
        finally:
            proc.terminate()
            proc.wait(timeout=60)

    rows = [
        ("alone", alone),
        (f"beside CPU-bound steps ({busy_runs} runs of {len(BUSY)} spinning steps)", beside_busy),
        (f"beside the hostile suite ({hostile_runs} runs of {len(ATTACKS)} attacks)", beside_hostile),
    ]
    machine = f"{os.cpu_count()} cores, {platform.machine()}, Linux {platform.release()}, {date.today()}"
    text = (
        f"One-step echo runs, submit to end of watch ({machine}; {args.runs} runs each; every other step "
        "at 250m CPU):\n\n"
        "| echo runs | p50 | p95 | max |\n|---|---|---|---|\n"
        + "".join(f"| {label} | {p50:.1f} ms | {p95:.1f} ms | {worst:.1f} ms |\n"
                  for label, (p50, p95, worst) in ((lbl, summary(lat)) for lbl, lat in rows))
    )  # fmt: skip
    print(text)
    write_section("hostile_neighbours.py", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
