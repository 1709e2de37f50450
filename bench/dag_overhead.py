#!/usr/bin/env python3
"""The cost of a step around the agent: chains and fan-outs of no-op steps, end to end.

    .venv/bin/python bench/dag_overhead.py [--shapes chain:200,fanout:200,fanout:2000] [--repeat 1] [--no-peers]

AgentFlow runs through a real `agentflow up` (control plane, router and one noded, per-step
cgroups, durable state); each figure is from SubmitWorkflow to the end of the WatchRun stream.
A chain of N dependent steps is reported as ms per step, a fan-out of N independent steps as
steps per second. The same shapes run in Ray (`@ray.remote` no-op) and Prefect 3 (`@task`
no-op) in the benchmark's own environment, build/peers-venv (created on first use; never a
project dependency), in the same run; the table shows each figure with the peers' and the ratio.
The table also goes to bench/results.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results import write_section

from agentflow.cli.client import Client, file_digest
from agentflow.v1 import types_pb2

ROOT = Path(__file__).resolve().parent.parent
NOOP = ROOT / "tests" / "agents" / "noop.wasm"
RES = os.environ.get("BENCH_RES", "")  # e.g. ", resources: {cpu: 1}" to try other step resources
PEERS_VENV = ROOT / "build" / "peers-venv"
PEERS = ("ray==2.*", "prefect>=3,<4")


def workflow(shape: str, n: int) -> str:
    lines = ["apiVersion: agentflow/v1", "kind: Workflow", f"name: {shape}-{n}", 'version: "1"', "agents:"]
    for i in range(n):
        lines.append(f"  - {{name: s{i}, module: ./noop.wasm{RES}"
                     + (f", dependsOn: [s{i - 1}]" if shape == "chain" and i else "") + "}")  # fmt: skip
    return "\n".join(lines) + "\n"


def start_up(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "agentflow.cli.main", "up", "--data-dir", str(data_dir), "--port", "0",
         "--metrics-port", "0", "--router-port", "0", "--log-level", "warning"],
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


def run_once(client: Client, text: str, digest: str) -> float:
    start = time.perf_counter()
    run_id = client.submit(
        workflow_yaml=text, source="bench.yaml", input_json="", module_digests={"./noop.wasm": digest}
    ).run_id
    last = None
    for message in client.watch_run(run_id):
        last = message.run
    elapsed = time.perf_counter() - start
    assert last is not None and last.status == types_pb2.RUN_STATUS_SUCCEEDED, last
    return elapsed


def figure(shape: str, n: int, seconds: float) -> str:
    if shape == "chain":
        return f"{seconds * 1000 / n:8.2f} ms/step"
    return f"{n / seconds:8.0f} steps/s"


def run_peers(shapes: str) -> dict[str, dict[str, float] | dict[str, str]]:
    python = PEERS_VENV / "bin" / "python"
    if not python.exists():
        print(f"installing the peers ({', '.join(PEERS)}) into {PEERS_VENV} …", flush=True)
        made = subprocess.run([sys.executable, "-m", "venv", str(PEERS_VENV)], capture_output=True, text=True)
        pip = subprocess.run([str(python), "-m", "pip", "install", "-q", *PEERS], capture_output=True, text=True)
        if made.returncode or pip.returncode:
            last = (made.stderr + pip.stderr).strip().splitlines()[-1:] or ["unknown"]
            return {"ray": {"error": last[0]}, "prefect": {"error": last[0]}}
    done = subprocess.run([str(python), str(ROOT / "bench" / "peers_dag.py"), shapes], capture_output=True,
                          text=True, timeout=1800)  # fmt: skip
    try:
        result: dict[str, dict[str, float] | dict[str, str]] = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"ray": {"error": reason}, "prefect": {"error": reason}}
    return result


def table(ours: dict[str, float], peers: dict[str, dict[str, float] | dict[str, str]]) -> str:
    head = "| shape | AgentFlow | Ray | Prefect 3 | AgentFlow vs Ray |\n|---|---|---|---|---|"
    rows = [head]
    for key, seconds in ours.items():
        shape, n = key.split(":")[0], int(key.split(":")[1])
        cells = [figure(shape, n, seconds).strip()]
        ray_s = None
        for name in ("ray", "prefect"):
            got = peers.get(name, {})
            value = got.get(key) if isinstance(got, dict) else None
            if isinstance(value, float):
                cells.append(figure(shape, n, value).strip())
                ray_s = value if name == "ray" else ray_s
            else:
                cells.append(f"n/a ({got.get('error', 'not run')})" if isinstance(got, dict) else "n/a")
        ratio = "-" if ray_s is None else (f"{seconds / ray_s:.1f}x Ray's time" if shape == "chain"
                                           else f"{(n / seconds) / (n / ray_s):.2f}x Ray's rate")  # fmt: skip
        rows.append(f"| {shape} of {n} | {' | '.join(cells)} | {ratio} |")
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", default="chain:200,fanout:200,fanout:2000")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--no-peers", action="store_true", help="AgentFlow only")
    args = parser.parse_args()
    ours: dict[str, float] = {}
    shapes = [(s.split(":")[0], int(s.split(":")[1])) for s in args.shapes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        proc, server = start_up(Path(tmp))
        try:
            with Client(server) as client:
                client.push_module(NOOP)
                digest = file_digest(NOOP)
                run_once(client, workflow("fanout", 4), digest)  # warm-up: fetch and compile the module
                print(f"agentflow up on {server} (no-op agent)\n")
                print(f"{'shape':<8} {'steps':>6} {'seconds':>8}  figure")
                for shape, n in shapes:
                    best = min(run_once(client, workflow(shape, n), digest) for _ in range(args.repeat))
                    ours[f"{shape}:{n}"] = best
                    print(f"{shape:<8} {n:>6} {best:>8.2f}  {figure(shape, n, best)}", flush=True)
        finally:
            proc.terminate()
            proc.wait(60)
    if args.no_peers:
        return 0
    peers = run_peers(args.shapes)
    machine = f"{os.cpu_count()} cores, {platform.machine()}, Linux {platform.release()}, {time.strftime('%Y-%m-%d')}"
    text = f"No-op steps end to end ({machine}; AgentFlow through agentflow up, per-step cgroups):\n\n"
    text += table(ours, peers) + "\n"
    print("\n" + text)
    write_section("dag_overhead.py", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
