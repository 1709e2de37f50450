#!/usr/bin/env python3
"""What the router adds to an LLM call, next to calling the upstream directly and to the LiteLLM proxy.

    .venv/bin/python bench/router_overhead.py [--duration 5] [--no-litellm]

Every row sends the same chat-completions request to a fake upstream that answers a fixed completion
at once (a raw uvloop protocol in its own process), with `wrk` as the load generator (apt-get install
wrk; without it an aiohttp load generator in another process stands in). Rows:

  direct upstream          wrk → fake upstream (the floor)
  router, miss             wrk → router → fake upstream; a sampled request (no temperature), so
                           neither the cache nor coalescing can answer it: every call goes upstream
  router, cache hit        wrk → router; temperature 0, answered from the exact cache
  litellm proxy            wrk → `litellm --config` (litellm[proxy], installed into build/litellm-venv
                           on first use; never a project dependency) → fake upstream

Columns: p50 and p99 latency at concurrency 1, the same at concurrency 16, throughput at 16, and the
latency each row adds over the direct row (the router's overhead; upstream time excluded).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LITELLM_VENV = ROOT / "build" / "litellm-venv"
LITELLM_REQUIREMENT = "litellm[proxy]==1.80.0"  # later releases need a litellm-proxy package not on the index

SAMPLED: dict[str, object] = {
    "model": "gpt-bench",
    "messages": [{"role": "user", "content": "Say hello to the benchmark."}],
}
DETERMINISTIC: dict[str, object] = {**SAMPLED, "temperature": 0}

_ANSWER = json.dumps({
    "id": "chatcmpl-bench", "object": "chat.completion", "created": 1700000000, "model": "gpt-bench",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello, benchmark."},
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 12, "completion_tokens": 4, "total_tokens": 16},
}).encode()  # fmt: skip
UPSTREAM_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: keep-alive\r\nContent-Length: "
    + str(len(_ANSWER)).encode() + b"\r\n\r\n" + _ANSWER
)  # fmt: skip
_CONTENT_LENGTH = re.compile(rb"content-length:\s*(\d+)", re.IGNORECASE)


# --- the fake upstream -----------------------------------------------------------------------


class _Upstream(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport: asyncio.Transport = transport  # type: ignore[assignment]
        self._buffer = b""

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while True:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            match = _CONTENT_LENGTH.search(self._buffer, 0, end)
            total = end + 4 + (int(match.group(1)) if match else 0)
            if len(self._buffer) < total:
                return
            self._buffer = self._buffer[total:]
            self._transport.write(UPSTREAM_RESPONSE)


def serve_upstream(port: int) -> None:
    import uvloop

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_Upstream, "127.0.0.1", port, backlog=1024)
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        async with server:
            await stop.wait()

    uvloop.run(main())


# --- load generation -------------------------------------------------------------------------


@dataclass
class Result:
    p50_ms: float
    p99_ms: float
    rps: float


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip()).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(
    url: str, body: dict[str, object], *, connections: int, duration: float, tmp: Path, headers: dict[str, str]
) -> Result:
    script = tmp / "post.lua"
    extra = "".join(f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}\n" for k, v in headers.items())
    script.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f"{extra}wrk.body = {json.dumps(json.dumps(body))}\n"
    )
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", "--latency", "-s", str(script), url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.MULTILINE)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if not (p50 and p99 and rps) or errors:
        raise RuntimeError(f"wrk against {url} failed:\n{out}")
    return Result(p50_ms=_ms(p50.group(1)), p99_ms=_ms(p99.group(1)), rps=float(rps.group(1)))


LOADGEN = """
import asyncio, json, sys, time, aiohttp, uvloop
url, body, conns, duration = sys.argv[1], sys.argv[2].encode(), int(sys.argv[3]), float(sys.argv[4])
headers = {"Content-Type": "application/json", **json.loads(sys.argv[5])}
async def main():
    samples = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=conns)) as s:
        end = time.perf_counter() + duration
        async def worker():
            while time.perf_counter() < end:
                t = time.perf_counter()
                async with s.post(url, data=body, headers=headers) as r:
                    await r.read()
                    assert r.status == 200, r.status
                samples.append(time.perf_counter() - t)
        start = time.perf_counter()
        await asyncio.gather(*[worker() for _ in range(conns)])
        wall = time.perf_counter() - start
    samples.sort()
    print(json.dumps([samples[len(samples) // 2] * 1000, samples[int(len(samples) * 0.99)] * 1000,
                      len(samples) / wall]))
uvloop.run(main())
"""


def run_loadgen(
    url: str, body: dict[str, object], *, connections: int, duration: float, tmp: Path, headers: dict[str, str]
) -> Result:
    argv = [sys.executable, "-c", LOADGEN, url, json.dumps(body), str(connections), str(duration), json.dumps(headers)]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    p50, p99, rps = json.loads(out)
    return Result(p50_ms=p50, p99_ms=p99, rps=rps)


# --- processes -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, *, timeout: float, proc: subprocess.Popen[bytes]) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up within {timeout}s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def start_router(upstream: int, tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    config = tmp / "router.toml"
    config.write_text(
        f'listen = "127.0.0.1:{port}"\ndata_dir = "{tmp / "router"}"\nlog_level = "warning"\n'
        f'[providers.bench]\nkind = "openai"\nbase_url = "http://127.0.0.1:{upstream}/v1"\nmodels = ["*"]\n'
        '[pricing."gpt-bench"]\ninput = 1.0\noutput = 2.0\n'
    )
    proc = subprocess.Popen([sys.executable, "-m", "router", "--config", str(config)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=(tmp / "router.log").open("wb"))  # fmt: skip
    wait_http(f"http://127.0.0.1:{port}/health", timeout=30, proc=proc)
    return proc, f"http://127.0.0.1:{port}/v1/chat/completions"


def ensure_litellm() -> tuple[Path | None, str]:
    """The litellm CLI of build/litellm-venv, installing it on first use; or None and the reason."""
    exe = LITELLM_VENV / "bin" / "litellm"
    if exe.exists():
        return exe, ""
    print(f"installing {LITELLM_REQUIREMENT} into {LITELLM_VENV} (once) …", file=sys.stderr, flush=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(LITELLM_VENV)], check=True, capture_output=True)
        subprocess.run([str(LITELLM_VENV / "bin" / "pip"), "install", "-q", LITELLM_REQUIREMENT], check=True,
                       capture_output=True, text=True, timeout=1200)  # fmt: skip
    except subprocess.CalledProcessError as exc:
        tail = (exc.stderr or exc.stdout or "").strip().splitlines()[-1:] or [str(exc)]
        return None, f"pip install {LITELLM_REQUIREMENT} failed: {tail[0][:100]}"
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"cannot install {LITELLM_REQUIREMENT}: {exc}"
    return (exe, "") if exe.exists() else (None, "litellm installed without its CLI")


def start_litellm(exe: Path, upstream: int, tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    config = tmp / "litellm.yaml"
    config.write_text(
        "model_list:\n  - model_name: gpt-bench\n    litellm_params:\n      model: openai/gpt-bench\n"
        f"      api_base: http://127.0.0.1:{upstream}/v1\n      api_key: sk-bench\n"
        "litellm_settings:\n  telemetry: false\n"
    )
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR"}
    proc = subprocess.Popen([str(exe), "--config", str(config), "--host", "127.0.0.1", "--port", str(port),
                             "--num_workers", "1"], env=env, cwd=tmp, stdout=subprocess.DEVNULL,
                            stderr=(tmp / "litellm.log").open("wb"))  # fmt: skip
    wait_http(f"http://127.0.0.1:{port}/health/liveliness", timeout=180, proc=proc)
    return proc, f"http://127.0.0.1:{port}/v1/chat/completions"


def self_reported_overhead(url: str, n: int = 500) -> float:
    """Median of the router's own x-agentflow-overhead-ms over `n` sequential misses."""
    import urllib.request

    values = []
    data = json.dumps(SAMPLED).encode()
    for _ in range(n):
        request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as r:
            values.append(float(r.headers["x-agentflow-overhead-ms"]))
    return statistics.median(values)


# --- main ------------------------------------------------------------------------------------


ATTRIBUTION = {"x-agentflow-run": "bench-run", "x-agentflow-step": "bench-step", "x-agentflow-attempt": "1"}


def median_result(results: list[Result]) -> Result:
    return Result(
        p50_ms=statistics.median(r.p50_ms for r in results),
        p99_ms=statistics.median(r.p99_ms for r in results),
        rps=statistics.median(r.rps for r in results),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per measurement")
    parser.add_argument("--repeat", type=int, default=3, help="rounds over all rows; each cell is their median")
    parser.add_argument("--no-litellm", action="store_true", help="skip the LiteLLM row")
    args = parser.parse_args()
    use_wrk = shutil.which("wrk") is not None
    load = run_wrk if use_wrk else run_loadgen
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="router-bench-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            upstream_port = free_port()
            upstream = subprocess.Popen([sys.executable, __file__, "--serve-upstream", str(upstream_port)])
            procs.append(upstream)
            time.sleep(0.5)
            direct = f"http://127.0.0.1:{upstream_port}/v1/chat/completions"
            router, router_url = start_router(upstream_port, tmp)
            procs.append(router)
            targets: list[tuple[str, str, dict[str, object], dict[str, str]]] = [
                ("direct upstream", direct, SAMPLED, {}),
                ("router, miss", router_url, SAMPLED, {}),
                ("router, miss, attributed", router_url, SAMPLED, ATTRIBUTION),
                ("router, cache hit", router_url, DETERMINISTIC, {}),
            ]
            litellm_url, litellm_reason = None, ""
            if args.no_litellm:
                litellm_reason = "skipped (--no-litellm)"
            else:
                exe, litellm_reason = ensure_litellm()
                if exe is not None:
                    try:
                        proc, litellm_url = start_litellm(exe, upstream_port, tmp)
                        procs.append(proc)
                    except RuntimeError as exc:
                        log = (tmp / "litellm.log").read_text(errors="replace").strip().splitlines()[-1:]
                        litellm_reason = f"{exc}; {log[0][:80] if log else ''}"
            if litellm_url:
                targets.append(("litellm proxy", litellm_url, SAMPLED, {}))
            for _, url, body, headers in targets:  # warm up (and fill the cache)
                load(url, body, connections=4, duration=1.0, tmp=tmp, headers=headers)
            samples: dict[str, tuple[list[Result], list[Result]]] = {t[0]: ([], []) for t in targets}
            for _ in range(args.repeat):  # rounds interleave the rows, so that a noisy moment hits them all
                for name, url, body, headers in targets:
                    samples[name][0].append(load(url, body, connections=1, duration=args.duration, tmp=tmp,
                                                 headers=headers))  # fmt: skip
                    samples[name][1].append(load(url, body, connections=16, duration=args.duration, tmp=tmp,
                                                 headers=headers))  # fmt: skip
            reported = self_reported_overhead(router_url)
        finally:
            for proc in reversed(procs):
                stop(proc)
    rows = [(name, median_result(one), median_result(sixteen)) for name, (one, sixteen) in samples.items()]
    base1, base16 = rows[0][1], rows[0][2]
    print(f"load generator: {'wrk' if use_wrk else 'aiohttp (wrk not installed)'}; {os.cpu_count()} cores; "
          f"median of {args.repeat} interleaved rounds of {args.duration:g}s per cell")  # fmt: skip
    print(f"{'':<26} {'c=1 p50':>9} {'p99':>8} {'c=16 p50':>9} {'p99':>8} {'c=16 req/s':>11}"
          f"   {'added p50 c=1':>13} {'added p99 c=16':>14}")  # fmt: skip
    for name, one, sixteen in rows:
        added = "" if name.startswith("direct") else (
            f"   {one.p50_ms - base1.p50_ms:>10.3f} ms {sixteen.p99_ms - base16.p99_ms:>11.3f} ms")  # fmt: skip
        print(f"{name:<26} {one.p50_ms:>7.3f}ms {one.p99_ms:>6.2f}ms {sixteen.p50_ms:>7.3f}ms "
              f"{sixteen.p99_ms:>6.2f}ms {sixteen.rps:>11.0f}{added}")  # fmt: skip
    if not litellm_url:
        print(f"{'litellm proxy':<26} unavailable: {litellm_reason}")
    print(f"router's own x-agentflow-overhead-ms on misses (median of 500 sequential calls): {reported:.3f} ms")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve-upstream":
        serve_upstream(int(sys.argv[2]))
        sys.exit(0)
    sys.exit(main())
