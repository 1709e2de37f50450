#!/usr/bin/env python3
"""End-to-end latency of whole workflows on a real `agentflow up` (control plane + one node).

    .venv/bin/python bench/workflow_latency.py [--runs 20]

Measures, from SubmitWorkflow to the end of the WatchRun stream (the run finished):
  diamond   4 steps, 3 levels (fetch -> count & shout -> summarize)
  fanout    24 parallel steps + 1 fan-in; also reported as steps per second
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from agentflow.cli.client import Client, file_digest
from agentflow.spec import load_workflow
from agentflow.v1 import types_pb2

ROOT = Path(__file__).resolve().parent.parent


def start_up(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "agentflow.cli.main", "up", "--data-dir", str(data_dir), "--port", "0",
         "--metrics-port", "0", "--log-level", "warning"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    state = data_dir / "controlplane" / "controlplane.json"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if state.exists() and (data_dir / "noded" / "noded.json").exists():
            server = json.loads(state.read_text())["grpc"]
            with Client(server) as client:
                if any(n.status == types_pb2.NODE_STATUS_READY for n in client.list_nodes()):
                    return proc, server
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("agentflow up did not start")


def run_once(client: Client, text: str, source: str, digests: dict[str, str]) -> float:
    start = time.perf_counter()
    run_id = client.submit(workflow_yaml=text, source=source, input_json="", module_digests=digests).run_id
    last = None
    for message in client.watch_run(run_id):
        last = message.run
    elapsed = time.perf_counter() - start
    assert last is not None and last.status == types_pb2.RUN_STATUS_SUCCEEDED, last
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        proc, server = start_up(Path(tmp))
        try:
            with Client(server) as client:
                print(f"agentflow up on {server}; {args.runs} runs each, one after another\n")
                print(f"{'workflow':<10} {'steps':>5} {'p50 ms':>9} {'p95 ms':>9} {'steps/s':>9}")
                for name in ("diamond", "fanout"):
                    path = ROOT / "examples" / f"{name}.yaml"
                    text = path.read_text()
                    spec = load_workflow(text, source=str(path), base_dir=path.parent)
                    digests = {}
                    for agent in spec.agents:
                        if agent.module.path and agent.module.path not in digests:
                            client.push_module(path.parent / agent.module.path)
                            digests[agent.module.path] = file_digest(path.parent / agent.module.path)
                    run_once(client, text, str(path), digests)  # warm-up: module fetch and compile
                    times = sorted(run_once(client, text, str(path), digests) for _ in range(args.runs))
                    p50 = statistics.median(times) * 1000
                    p95 = times[min(len(times) - 1, int(len(times) * 0.95))] * 1000
                    steps = len(spec.agents)
                    print(f"{name:<10} {steps:>5} {p50:>9.1f} {p95:>9.1f} {steps / statistics.median(times):>9.0f}")
        finally:
            proc.terminate()
            proc.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
