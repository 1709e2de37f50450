#!/usr/bin/env python3
"""Per-step overhead of running a WASI agent, AgentFlow's warm pool next to its peers.

    .venv/bin/python bench/step_overhead.py [--jobs 300]

Rows (the same echo agent and stdin document in every row):
  in-process run_step          wasmtime-py in this process, compiled module cached (lower bound)
  agentflow worker pool        noded's path: pipe to a warm worker process, run, answer
  agentflow pool, 4 in flight  the same with four concurrent jobs (throughput)
  fresh python per step        a new Python + wasmtime-py process per step (process-per-task)
  fresh node per step          Node.js's built-in WASI in a new `node` process per step
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from noded.sandbox import StepJob
from noded.sandbox.engine import EpochTicker, create_engine
from noded.sandbox.executor import run_step
from noded.sandbox.module_cache import CompiledModuleCache
from noded.workers import WorkerPool

ROOT = Path(__file__).resolve().parent.parent

ECHO = ROOT / "tests" / "agents" / "echo.wasm"
STDIN = b'{"input":{"text":"hello"},"upstream":{},"step":{"run":"bench","name":"echo","attempt":1}}'

NODE_RUNNER = """
import { readFileSync } from 'node:fs';
import { WASI } from 'node:wasi';
const wasi = new WASI({ version: 'preview1', args: [], env: {}, returnOnExit: true });
const module = await WebAssembly.compile(readFileSync(process.argv[2]));
const imports = { wasi_snapshot_preview1: wasi.wasiImport,
                  agentflow: { host_call: () => -4n, host_result: () => -5 } };
const instance = await WebAssembly.instantiate(module, imports);
process.exitCode = wasi.start(instance);
"""

PY_RUNNER = """
import sys, wasmtime
engine = wasmtime.Engine()
linker = wasmtime.Linker(engine)
linker.define_wasi()
i64, i32 = wasmtime.ValType.i64(), wasmtime.ValType.i32()
linker.define_func("agentflow", "host_call", wasmtime.FuncType([i32]*4, [i64]), lambda *a: -4)
linker.define_func("agentflow", "host_result", wasmtime.FuncType([i32]*2, [i32]), lambda *a: -5)
store = wasmtime.Store(engine)
wasi = wasmtime.WasiConfig(); wasi.stdin_file = sys.argv[2]; wasi.inherit_stdout()
store.set_wasi(wasi)
module = wasmtime.Module.deserialize_file(engine, sys.argv[1])
try:
    linker.instantiate(store, module).exports(store)["_start"](store)
except wasmtime.ExitTrap as e:
    sys.exit(e.code)
"""


def summary(name: str, samples: list[float], wall: float) -> str:
    ms = sorted(s * 1000 for s in samples)
    p50 = statistics.median(ms)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    return f"{name:<30} {p50:>9.3f} {p99:>9.3f} {len(samples) / wall:>10.0f}"


def job(scratch: str) -> StepJob:
    return StepJob(digest="sha256:" + "0" * 64, module_path=str(ECHO), stdin=STDIN, timeout_s=10,
                   memory_limit_bytes=64 << 20, scratch_dir=scratch)  # fmt: skip


def bench_in_process(n: int, tmp: Path) -> str:
    engine = create_engine()
    cache = CompiledModuleCache(tmp / "cache-inproc")
    samples = []
    with EpochTicker(engine):
        run_step(job(str(tmp)), engine=engine, cache=cache)
        start = time.perf_counter()
        for _ in range(n):
            t = time.perf_counter()
            assert run_step(job(str(tmp)), engine=engine, cache=cache).ok
            samples.append(time.perf_counter() - t)
        wall = time.perf_counter() - start
    return summary("in-process run_step", samples, wall)


async def bench_pool(n: int, tmp: Path, concurrency: int) -> str:
    async with WorkerPool(tmp / "cache-pool", warm=concurrency, max_workers=concurrency) as pool:
        await pool.run(job(str(tmp)))
        samples: list[float] = []

        async def one() -> None:
            t = time.perf_counter()
            result = await pool.run(job(str(tmp)))
            assert result.ok, result.error
            samples.append(time.perf_counter() - t)

        start = time.perf_counter()
        for i in range(0, n, concurrency):
            await asyncio.gather(*(one() for _ in range(min(concurrency, n - i))))
        wall = time.perf_counter() - start
    label = "agentflow worker pool" if concurrency == 1 else f"agentflow pool, {concurrency} in flight"
    return summary(label, samples, wall)


def bench_processes(name: str, argv: list[str], n: int) -> str:
    samples = []
    start = time.perf_counter()
    for _ in range(n):
        t = time.perf_counter()
        proc = subprocess.run(argv, input=STDIN, capture_output=True, check=False)
        assert proc.returncode == 0 and proc.stdout.startswith(b'{"input"'), proc.stderr[-300:]
        samples.append(time.perf_counter() - t)
    return summary(name, samples, time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=300, help="steps per warm row (cold rows run a tenth)")
    args = parser.parse_args()
    if not ECHO.exists():
        print("build the agents first: make agents", file=sys.stderr)
        return 1
    print(f"echo agent, {os.cpu_count()} cores, {args.jobs} steps per warm row\n")
    print(f"{'runner':<30} {'p50 ms':>9} {'p99 ms':>9} {'steps/s':>10}")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        print(bench_in_process(args.jobs, tmp), flush=True)
        print(asyncio.run(bench_pool(args.jobs, tmp, 1)), flush=True)
        print(asyncio.run(bench_pool(args.jobs, tmp, 4)), flush=True)
        cold = max(args.jobs // 10, 5)
        import wasmtime

        compiled = tmp / "echo.cwasm"
        compiled.write_bytes(wasmtime.Module.from_file(wasmtime.Engine(), str(ECHO)).serialize())
        stdin_file = tmp / "stdin.json"
        stdin_file.write_bytes(STDIN)
        py = [sys.executable, "-c", PY_RUNNER, str(compiled), str(stdin_file)]
        print(bench_processes("fresh python per step", py, cold), flush=True)
        node = shutil.which("node")
        if node:
            runner = tmp / "run.mjs"
            runner.write_text(NODE_RUNNER)
            print(bench_processes("fresh node per step", [node, "--no-warnings", str(runner), str(ECHO)], cold))
        else:
            print(f"{'fresh node per step':<30} (node not installed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
