"""`agentflow up`: the control plane, the host's LLM router and one local noded as child
processes, in the foreground.

Each daemon runs as its own process, exactly as on a real host; their JSON logs go to
`<data dir>/logs/`. Ctrl-C (or SIGTERM) stops the node first (it lets running steps finish within
its `--shutdown-grace`; a second Ctrl-C cuts that short), then the router and the control plane.
If one exits on its own, the others are stopped too and `up` exits non-zero.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, TextIO

from agentflow.daemon import read_state_file, set_parent_death_signal

READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0


class Child:
    def __init__(self, name: str, argv: list[str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log: IO[bytes] = log_path.open("ab")
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
            start_new_session=True,  # Ctrl-C reaches `up` only; it stops children in order
            preexec_fn=set_parent_death_signal,  # and if `up` dies, they stop too
        )

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


def _wait_for_state(child: Child, state_file: Path, started: float) -> dict[str, object]:
    while time.monotonic() - started < READY_TIMEOUT_S:
        if child.proc.poll() is not None:
            raise RuntimeError(f"{child.name} exited with code {child.proc.returncode}; see {child.log_path}")
        state = read_state_file(state_file)
        if state is not None and state.get("pid") == child.proc.pid:
            return state
        time.sleep(0.05)
    raise RuntimeError(f"{child.name} did not become ready in {READY_TIMEOUT_S:.0f}s; see {child.log_path}")


def _log_flags(args: argparse.Namespace) -> list[str]:
    """Readable log files when a person started `up` in a terminal (JSON lines otherwise)."""
    return ["--log-level", args.log_level, "--log-format", "text" if sys.stderr.isatty() else "json"]


def _metrics(port: int, offset: int) -> str:
    return f"127.0.0.1:{port + offset if port else 0}"


def run_up(args: argparse.Namespace, out: TextIO) -> int:
    data_dir: Path = args.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    logs = data_dir / "logs"
    python = sys.executable
    stop_requested = False

    children: list[Child] = []

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stop_requested
        if stop_requested:  # again: the node cuts its grace period short
            for child in children:
                if child.proc.poll() is None:
                    child.proc.send_signal(signal.SIGTERM)
        stop_requested = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    try:
        cp_dir = data_dir / "controlplane"
        (cp_dir / "controlplane.json").unlink(missing_ok=True)
        started = time.monotonic()
        cp = Child(
            "control plane",
            [python, "-m", "controlplane", "--data-dir", str(cp_dir), "--listen", f"127.0.0.1:{args.port}",
             "--metrics-listen", _metrics(args.metrics_port, 0), *_log_flags(args)]
            + (["--nats-url", args.nats_url] if args.nats_url else []),
            logs / "controlplane.log",
        )  # fmt: skip
        children.append(cp)
        cp_state = _wait_for_state(cp, cp_dir / "controlplane.json", started)
        server = str(cp_state["grpc"])

        router_dir = data_dir / "router"
        (router_dir / "router.json").unlink(missing_ok=True)
        router_argv = [python, "-m", "router", "--data-dir", str(router_dir),
                       "--listen", f"127.0.0.1:{args.router_port}", *_log_flags(args)]  # fmt: skip
        if args.dev:
            router_argv += ["--dev", "true"]
        router = Child("router", router_argv, logs / "router.log")
        children.append(router)
        router_state = _wait_for_state(router, router_dir / "router.json", time.monotonic())
        router_address = str(router_state["http"])

        node_dir = data_dir / "noded"
        (node_dir / "noded.json").unlink(missing_ok=True)
        node_argv = [python, "-m", "noded", "--server", server, "--router", router_address, "--data-dir", str(node_dir),
                     "--metrics-listen", _metrics(args.metrics_port, 1), *_log_flags(args)]  # fmt: skip
        if args.name:
            node_argv += ["--name", args.name]
        node = Child("noded", node_argv, logs / "noded.log")
        children.append(node)
        node_state = _wait_for_state(node, node_dir / "noded.json", time.monotonic())

        print(
            f"AgentFlow is up (data in {data_dir})\n"
            f"  control plane  {server}   metrics http://{cp_state['metrics']}/metrics\n"
            f"  node {node_state.get('name')}  isolation {node_state.get('isolation')}, "
            f"{node_state.get('slots')} slots   metrics http://{node_state.get('metrics')}/metrics\n"
            f"  LLM router     http://{router_address}/v1"
            f"{'   (offline dev provider: answers are labelled as such)' if router_state.get('dev') else ''}"
            f"   status: agentflow router status --router {router_address}\n"
            f"  node admin     agentflow node status --data-dir {node_dir}\n"
            f"  logs           {logs}/\n"
            f"Run a workflow:  agentflow --server {server} run examples/diamond.yaml --wait\n"
            "Press Ctrl-C to stop.",
            file=out,
            flush=True,
        )
        while not stop_requested:
            for child in children:
                if child.proc.poll() is not None:
                    print(
                        f"agentflow up: {child.name} exited with code {child.proc.returncode}; see {child.log_path}",
                        file=sys.stderr,
                    )
                    return 1
            time.sleep(0.2)
        print("stopping…", file=out, flush=True)
        return 0
    except RuntimeError as exc:
        print(f"agentflow up: {exc}", file=sys.stderr)
        return 1
    finally:
        for child in reversed(children):
            with contextlib.suppress(Exception):
                child.stop()
        if children:
            print("stopped", file=out, flush=True)


__all__ = ["run_up"]
