#!/usr/bin/env python3
"""Agent start-up per authoring language: first build, cold start and warm start, side by side.

    .venv/bin/python bench/agent_startup.py [--runs 200]

For each language registered in agentflow/authoring/languages.py (C, AssemblyScript, and any
other entry, e.g. Python, as soon as it is registered there: its column appears by itself), the
agent that `agentflow agent new` scaffolds is built and run through noded's executor
(`run_step`, in this process) on the same input:

  first build, empty caches   `agentflow agent build` of a fresh scaffold as on a new machine:
                   zig's and npm's caches empty (zig builds wasi-libc; npm downloads the
                   compiler from the registry)
  first build      the same for a second fresh scaffold, caches as they are (npm install
                   from npm's cache; zig reuses wasi-libc, and the object of an identical source)
  rebuild          that build again (toolchain ready)
  cold start       a module never seen: compile, store in the compiled-module cache, run
  disk-warm start  compiled file on disk, nothing in memory (a fresh worker): load, run
  warm start       p50 / p99 with the compiled module in memory (noded's steady state)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import wasmtime
from results import write_section

from agentflow.authoring import LANGUAGES, AuthoringError, Language, build_agent, scaffold
from noded.sandbox import StepJob
from noded.sandbox.engine import EpochTicker, create_engine
from noded.sandbox.executor import run_step
from noded.sandbox.module_cache import CompiledModuleCache

NAME = "startup"
CACHE_VARIABLES = ("ZIG_GLOBAL_CACHE_DIR", "npm_config_cache")
STDIN = json.dumps({"input": {"text": "hello wasm world"}, "upstream": {},
                    "step": {"run": "bench", "name": NAME, "attempt": 1, "workflow": NAME}}).encode()  # fmt: skip


@dataclass
class Figures:
    language: Language
    size: int = 0
    fresh_build_s: float = 0.0
    first_build_s: float = 0.0
    rebuild_s: float = 0.0
    cold_ms: float = 0.0
    disk_warm_ms: float = 0.0
    warm_p50_ms: float = 0.0
    warm_p99_ms: float = 0.0
    problem: str = ""


@contextmanager
def empty_caches(directory: Path) -> Iterator[None]:
    """zig's global cache and npm's cache in a new, empty `directory` for the builds inside."""
    saved = {k: os.environ.get(k) for k in CACHE_VARIABLES}
    for key in CACHE_VARIABLES:
        os.environ[key] = str(directory / key.lower())
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _job(module: Path, digest: str, scratch: Path) -> StepJob:
    return StepJob(digest=digest, module_path=str(module), stdin=STDIN, timeout_s=30,
                   memory_limit_bytes=256 << 20, scratch_dir=str(scratch))  # fmt: skip


def _timed_run(
    module: Path, digest: str, scratch: Path, *, engine: wasmtime.Engine, cache: CompiledModuleCache
) -> float:
    started = time.perf_counter()
    result = run_step(_job(module, digest, scratch), engine=engine, cache=cache)
    elapsed = time.perf_counter() - started
    if not result.ok:
        raise RuntimeError(f"the scaffolded agent failed: {result.error}\n{result.stderr[-500:]}")
    return elapsed * 1000


def measure(language: Language, root: Path, runs: int) -> Figures:
    figures = Figures(language)
    parent = root / language.name
    (parent / "fresh").mkdir(parents=True)

    def progress(line: str) -> None:
        print(f"  {language.name}: {line}", flush=True)

    try:
        fresh = scaffold(NAME, language, parent / "fresh")
        with empty_caches(root / f"caches-{language.name}"):
            figures.fresh_build_s = build_agent(fresh.dir, progress=progress).seconds
        made = scaffold(NAME, language, parent)
        first = build_agent(made.dir, progress=progress)
        figures.first_build_s, figures.size = first.seconds, first.size
        figures.rebuild_s = build_agent(made.dir).seconds
    except AuthoringError as exc:
        figures.problem = str(exc).splitlines()[0]
        return figures
    module = first.module
    digest = "sha256:" + hashlib.sha256(module.read_bytes()).hexdigest()
    scratch = root / f"scratch-{language.name}"
    scratch.mkdir()
    engine = create_engine()
    with EpochTicker(engine):
        cache = CompiledModuleCache(root / f"cache-{language.name}")
        figures.cold_ms = _timed_run(module, digest, scratch, engine=engine, cache=cache)
        cache.forget()
        figures.disk_warm_ms = _timed_run(module, digest, scratch, engine=engine, cache=cache)
        samples = sorted(_timed_run(module, digest, scratch, engine=engine, cache=cache) for _ in range(runs))
    figures.warm_p50_ms = statistics.median(samples)
    figures.warm_p99_ms = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    return figures


def table(all_figures: list[Figures], runs: int) -> str:
    columns = [f.language.title for f in all_figures]
    rows: list[tuple[str, list[str]]] = [
        ("module size", [f"{f.size / 1024:.0f} KiB" for f in all_figures]),
        ("first build, empty caches", [f"{f.fresh_build_s:.1f} s" for f in all_figures]),
        ("first build", [f"{f.first_build_s:.1f} s" for f in all_figures]),
        ("rebuild", [f"{f.rebuild_s:.2f} s" for f in all_figures]),
        ("cold start (compile + run)", [f"{f.cold_ms:.1f} ms" for f in all_figures]),
        ("disk-warm start (load + run)", [f"{f.disk_warm_ms:.2f} ms" for f in all_figures]),
        (f"warm start p50 / p99 ({runs} runs)", [f"{f.warm_p50_ms:.2f} / {f.warm_p99_ms:.2f} ms" for f in all_figures]),
    ]
    for i, f in enumerate(all_figures):
        if f.problem:
            for _, cells in rows:
                cells[i] = "n/a"
    lines = ["| figure | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    lines += [f"| {label} | " + " | ".join(cells) + " |" for label, cells in rows]
    notes = [f"{f.language.title}: not measured: {f.problem}" for f in all_figures if f.problem]
    return "\n".join(lines + (["", *notes] if notes else []))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=200, help="warm runs per language")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="agent-startup-") as tmp:
        all_figures = []
        for language in LANGUAGES.values():
            print(f"{language.title}: scaffold, build, run", flush=True)
            all_figures.append(measure(language, Path(tmp), args.runs))
    machine = f"{os.cpu_count()} cores, {platform.machine()}, Linux {platform.release()}, {date.today()}"
    text = (
        f"The scaffolded agent of each language (`agentflow agent new`), built with `agentflow agent build` "
        f"and run in-process through noded's executor ({machine}):\n\n{table(all_figures, args.runs)}\n"
    )
    print()
    print(text)
    write_section("agent_startup.py", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
