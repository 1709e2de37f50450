#!/usr/bin/env python3
"""The same shapes as bench/dag_overhead.py in the peers, for the side-by-side table.

Runs in the benchmark's own environment (build/peers-venv, made by dag_overhead.py --peers);
never imported by AgentFlow or its tests. Prints one JSON object: {"ray": {...}, "prefect": {...}}
with seconds per shape, or the reason a peer could not run.
"""

from __future__ import annotations

import json
import sys
import time


def ray_shapes(shapes: list[tuple[str, int]]) -> dict[str, float]:
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)

    @ray.remote
    def step(_: object = None) -> dict[str, bool]:
        return {"ok": True}

    ray.get([step.remote() for _ in range(20)])  # warm the workers
    out = {}
    for shape, n in shapes:
        start = time.perf_counter()
        if shape == "chain":
            ref = step.remote()
            for _ in range(n - 1):
                ref = step.remote(ref)
            ray.get(ref)
        else:
            ray.get([step.remote() for _ in range(n)])
        out[f"{shape}:{n}"] = time.perf_counter() - start
    ray.shutdown()
    return out


def prefect_shapes(shapes: list[tuple[str, int]]) -> dict[str, float]:
    from prefect import flow, task

    @task
    def step(_: object = None) -> dict[str, bool]:
        return {"ok": True}

    @flow
    def chain(n: int) -> None:
        future = step.submit()
        for _ in range(n - 1):
            future = step.submit(future)
        future.result()

    @flow
    def fanout(n: int) -> None:
        for future in [step.submit() for _ in range(n)]:
            future.result()

    fanout(4)  # warm up
    out = {}
    for shape, n in shapes:
        start = time.perf_counter()
        (chain if shape == "chain" else fanout)(n)
        out[f"{shape}:{n}"] = time.perf_counter() - start
    return out


def main() -> int:
    shapes = [(s.split(":")[0], int(s.split(":")[1])) for s in sys.argv[1].split(",")]
    result: dict[str, object] = {}
    for name, runner in (("ray", ray_shapes), ("prefect", prefect_shapes)):
        try:
            result[name] = runner(shapes)
        except Exception as exc:  # a peer that cannot run is reported, not fatal to the table
            result[name] = {"error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
