#!/usr/bin/env python3
"""kill -9 in the middle of the fast-path benchmark's runs: nothing lost, nothing done twice.

    .venv/bin/python bench/dag_faults.py [--shapes fanout:2000,chain:200] [--kill all,noded]

For each shape and each kill, through a real `agentflow up` on one data dir: submit the run,
wait until a third of its steps have succeeded, SIGKILL the daemons (`all`: the control plane,
the router and noded at once; `noded`: noded alone, after which `agentflow up` stops the others
and exits), start `agentflow up` again on the same data dir and watch the run to its end. Then the
control plane's database is read directly: every step must have succeeded with its output, with
exactly one succeeded attempt and one `agent.completed` event. The figures are the time from
the restart to the end and how many attempts were placed again.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
from dag_overhead import NOOP, start_up, workflow
from results import write_section

from agentflow.cli.client import Client, file_digest
from agentflow.v1 import types_pb2

NOOP_OUTPUT = {"ok": True}


def _succeeded(client: Client, run_id: str) -> int:
    return sum(s.status == types_pb2.STEP_STATUS_SUCCEEDED for s in client.get_run(run_id).steps)


def _kill(up: subprocess.Popen[bytes], which: str) -> None:
    daemons = psutil.Process(up.pid).children(recursive=True)
    if which == "all":
        up.send_signal(signal.SIGKILL)
        for p in daemons:
            p.send_signal(signal.SIGKILL)
    else:
        [node] = [p for p in daemons if "noded" in " ".join(p.cmdline()) and "worker" not in " ".join(p.cmdline())]
        node.send_signal(signal.SIGKILL)
    up.wait(60)  # after noded alone, `agentflow up` stops the others and exits
    psutil.wait_procs(daemons, timeout=30)


def _check(db: Path, run_id: str, n: int) -> tuple[int, list[str]]:
    """Attempts placed, and what is wrong with the run as stored (nothing, when it holds)."""
    problems: list[str] = []
    with sqlite3.connect(db) as conn:
        steps = dict(conn.execute("SELECT name, output_json FROM steps WHERE run_id = ? AND status = 'succeeded'",
                                  (run_id,)).fetchall())  # fmt: skip
        won = dict(conn.execute("SELECT step, COUNT(*) FROM attempts WHERE run_id = ? AND status = 'succeeded'"
                                " GROUP BY step", (run_id,)).fetchall())  # fmt: skip
        completed = dict(conn.execute("SELECT step, COUNT(*) FROM events WHERE run_id = ? AND type = 'agent.completed'"
                                      " GROUP BY step", (run_id,)).fetchall())  # fmt: skip
        attempts = conn.execute("SELECT COUNT(*) FROM attempts WHERE run_id = ?", (run_id,)).fetchone()[0]
    if len(steps) != n:
        problems.append(f"{n - len(steps)} steps did not succeed")
    if any(json.loads(out) != NOOP_OUTPUT for out in steps.values()):
        problems.append("an output is not the agent's")
    if sorted(won.values()) != [1] * n:
        problems.append(f"succeeded attempts per step: {sorted(set(won.values()))}, {n - len(won)} steps without")
    if sorted(completed.values()) != [1] * n:
        problems.append(f"agent.completed per step: {sorted(set(completed.values()))}")
    return int(attempts), problems


@dataclass(frozen=True)
class Case:
    shape: str
    kill: str
    done_before: int
    status: str
    again: int  # attempts placed beyond one per step
    seconds: float  # from the restart to the end of the run
    problems: list[str]


def run_case(shape: str, n: int, which: str) -> Case:
    with tempfile.TemporaryDirectory(prefix="agentflow-faults-") as tmp:
        data = Path(tmp)
        up, server = start_up(data)
        try:
            with Client(server) as client:
                client.push_module(NOOP)
                run_id = client.submit(workflow_yaml=workflow(shape, n), source="bench.yaml", input_json="",
                                       module_digests={"./noop.wasm": file_digest(NOOP)}).run_id  # fmt: skip
                while (done := _succeeded(client, run_id)) < n // 3:
                    time.sleep(0.05)
            _kill(up, which)
            for state in (data / "controlplane" / "controlplane.json", data / "noded" / "noded.json"):
                state.unlink(missing_ok=True)  # the dead daemons' addresses: wait for the new ones
            restarted = time.perf_counter()
            up, server = start_up(data)
            with Client(server) as client:
                last = None
                for message in client.watch_run(run_id):
                    last = message.run
            elapsed = time.perf_counter() - restarted
            status = "no run" if last is None else types_pb2.RunStatus.Name(last.status).removeprefix("RUN_STATUS_")
        finally:
            up.terminate()
            up.wait(60)
        attempts, problems = _check(data / "controlplane" / "state.db", run_id, n)
    return Case(f"{shape} of {n}", which, done, status.lower(), attempts - n, elapsed, problems)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", default="fanout:2000,chain:200")
    parser.add_argument("--kill", default="all,noded")
    args = parser.parse_args()
    cases = []
    for spec in args.shapes.split(","):
        shape, n = spec.split(":")[0], int(spec.split(":")[1])
        for which in args.kill.split(","):
            case = run_case(shape, n, which)
            print(case, flush=True)
            cases.append(case)
    machine = f"{os.cpu_count()} cores, {platform.machine()}, Linux {platform.release()}, {time.strftime('%Y-%m-%d')}"
    text = f"kill -9 mid-run, then `agentflow up` again on the same data dir ({machine}; no-op agent):\n\n"
    text += "| run | killed | succeeded before | after the restart | placed again | what the database holds |\n"
    text += "|---|---|---|---|---|---|\n"
    for c in cases:
        held = "; ".join(c.problems) or "every output once; one succeeded attempt and one agent.completed each"
        killed = "control plane, router, noded" if c.kill == "all" else "noded"
        text += f"| {c.shape} | {killed} | {c.done_before} | {c.status} in {c.seconds:.1f} s | {c.again} | {held} |\n"
    print("\n" + text)
    write_section("dag_faults.py", text)
    return 1 if any(c.problems for c in cases) else 0


if __name__ == "__main__":
    sys.exit(main())
