#!/usr/bin/env python3
"""One control plane, a simulated fleet: N node streams heartbeating every few seconds.

    .venv/bin/python bench/fleet_heartbeats.py [--nodes 500] [--interval 5] [--seconds 30]

A real control plane process (`--heartbeat-interval`, TTL three intervals); this process opens
one gRPC channel and, over it, N Register calls and N Connect streams that each send a hello and
then a heartbeat every `--interval` seconds (spread evenly). Printed: the control plane's CPU
while the fleet is steady (target < 1 core), the time a heartbeat takes end to end as seen by the
sender (its write completing; the control plane acknowledges nothing), and how long the control
plane takes to report a node down after it falls silent (target <= TTL + one reaper pass).

The target fleet is 5,000 nodes. A simulated node dials its stream again when it ends, as noded
does: during the registration storm of 1,000 nodes the control plane was seen to end a few
streams (the sender then got `RPC already finished`), and a simulator that did not redial waited
for those nodes forever, which is why earlier runs at 1,000 and 5,000 never came up. The redials
are counted and printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import grpc
import psutil
from results import write_section

from agentflow.transport import NODE_ID_METADATA
from agentflow.v1 import controlplane_pb2, controlplane_pb2_grpc, node_pb2, node_pb2_grpc, types_pb2

ROOT = Path(__file__).resolve().parent.parent
NODES_PER_CHANNEL = 500


def start_controlplane(data: Path, interval: float) -> tuple[subprocess.Popen[bytes], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "controlplane", "--data-dir", str(data), "--listen", "127.0.0.1:0",
         "--metrics-listen", "127.0.0.1:0", "--heartbeat-interval", f"{interval}s",
         "--node-ttl", f"{3 * interval}s", "--log-level", "warning"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    state = data / "controlplane.json"
    while not state.exists():
        time.sleep(0.05)
    return proc, json.loads(state.read_text())["grpc"]


class SimulatedNode:
    def __init__(self, stub: node_pb2_grpc.NodeGatewayStub, name: str) -> None:
        self.stub, self.name = stub, name
        self.silent = asyncio.Event()
        self.latencies: list[float] = []
        self.redials = 0  # streams that ended and were dialled again
        self.refused: list[str] = []  # why registrations failed (each was tried again)

    async def run(self, interval: float, offset: float, stop: asyncio.Event) -> None:
        while True:  # like noded: a registration that fails is tried again
            try:
                registered = await self.stub.Register(
                    node_pb2.RegisterRequest(
                        name=self.name, version="sim",
                        capacity=types_pb2.Resources(cpu_millis=16000, memory_bytes=64 << 30, slots=8),
                        isolation=types_pb2.ISOLATION_NONE,
                    ),
                    timeout=60,
                )  # fmt: skip
                break
            except grpc.aio.AioRpcError as exc:
                self.refused.append(exc.code().name)
                await asyncio.sleep(1.0)
        await asyncio.sleep(offset)
        while not stop.is_set():  # like noded: a stream that ends is dialled again
            try:
                await self._session(registered.node_id, interval, stop)
            except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
                self.redials += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=1.0)

    async def _session(self, node_id: str, interval: float, stop: asyncio.Event) -> None:
        call = self.stub.Connect(metadata=((NODE_ID_METADATA, node_id),))
        await call.write(node_pb2.NodeMessage(hello=node_pb2.Hello()))
        reader = asyncio.create_task(self._drain(call))
        try:
            while not stop.is_set() and not self.silent.is_set():
                start = time.perf_counter()
                await call.write(node_pb2.NodeMessage(heartbeat=node_pb2.Heartbeat(running=0, idle_workers=1)))
                self.latencies.append(time.perf_counter() - start)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=interval)
            if self.silent.is_set():
                await stop.wait()  # stay connected, say nothing
        finally:
            reader.cancel()
            call.cancel()

    async def _drain(self, call: grpc.aio.StreamStreamCall) -> None:
        async for _ in call:
            pass


async def simulate(server: str, cp_pid: int, nodes: int, interval: float, seconds: float) -> dict[str, Any]:
    # Nodes connect over their own connections; a single HTTP/2 connection carrying every
    # stream stalled at about 3,000 of them (registrations behind them timed out), so the
    # simulator spreads its nodes over one channel per NODES_PER_CHANNEL.
    channels = [grpc.aio.insecure_channel(server, options=[("grpc.use_local_subchannel_pool", 1)])
                for _ in range(-(-nodes // NODES_PER_CHANNEL))]  # fmt: skip
    async with contextlib.AsyncExitStack() as stack:
        for c in channels:
            await stack.enter_async_context(c)
        admin = controlplane_pb2_grpc.ControlPlaneStub(channels[0])
        stubs = [node_pb2_grpc.NodeGatewayStub(c) for c in channels]
        fleet = [SimulatedNode(stubs[i % len(stubs)], f"sim-{i:05d}") for i in range(nodes)]
        stop = asyncio.Event()
        tasks = [asyncio.create_task(n.run(interval, interval * i / nodes, stop)) for i, n in enumerate(fleet)]
        started = time.monotonic()
        while True:  # every node ready
            listed = await admin.ListNodes(controlplane_pb2.ListNodesRequest(), timeout=60)
            if sum(n.status == types_pb2.NODE_STATUS_READY for n in listed.nodes) >= nodes:
                break
            await asyncio.sleep(2.0)  # ListNodes of thousands of nodes is not free: do not make it the load
        ready_after = time.monotonic() - started
        cp = psutil.Process(cp_pid)
        cp.cpu_percent(None)
        for n in fleet:
            n.latencies.clear()
        await asyncio.sleep(seconds)
        cpu = cp.cpu_percent(None) / 100
        latencies = sorted(x for n in fleet for x in n.latencies)
        # One node falls silent: how long until the control plane says it is down?
        victim = fleet[0]
        victim.silent.set()
        silent_at = time.monotonic()
        while True:
            node = await admin.GetNode(controlplane_pb2.GetNodeRequest(name=victim.name), timeout=60)
            if node.status == types_pb2.NODE_STATUS_DOWN:
                break
            await asyncio.sleep(0.1)
        detected = time.monotonic() - silent_at
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "ready_s": ready_after,
        "cpu_cores": cpu,
        "p50_ms": latencies[len(latencies) // 2] * 1000 if latencies else float("nan"),
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000 if latencies else float("nan"),
        "heartbeats": float(len(latencies)),
        "detect_s": detected,
        "redials": float(sum(n.redials for n in fleet)),
        "refused": float(sum(len(n.refused) for n in fleet)),
        "refused_codes": ", ".join(sorted({c for n in fleet for c in n.refused})),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=500)
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="agentflow-fleet-") as tmp:
        proc, server = start_controlplane(Path(tmp), args.interval)
        try:
            figures = asyncio.run(simulate(server, proc.pid, args.nodes, args.interval, args.seconds))
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    ttl = 3 * args.interval
    machine = f"{os.cpu_count()} cores, {platform.machine()}, Linux {platform.release()}, {date.today()}"
    text = (
        f"{args.nodes} simulated node streams, a heartbeat every {args.interval:g} s each, one control plane "
        f"({machine}; the simulator shares the machine):\n\n"
        "| figure | measured | target |\n|---|---|---|\n"
        f"| control plane CPU, steady | {figures['cpu_cores']:.2f} cores | < 1 core |\n"
        f"| heartbeat send, p50 / p99 | {figures['p50_ms']:.2f} / {figures['p99_ms']:.2f} ms "
        f"({figures['heartbeats']:.0f} in {args.seconds:g} s) | |\n"
        f"| a silent node reported down after | {figures['detect_s']:.1f} s | <= TTL {ttl:g} s + one pass |\n"
        f"| all {args.nodes} ready after | {figures['ready_s']:.1f} s | |\n"
        f"| streams that ended and were dialled again | {figures['redials']:.0f} | |\n"
        f"| registrations refused and tried again | {figures['refused']:.0f}"
        f" ({figures['refused_codes'] or 'none'}) | |\n"
    )
    print(text)
    write_section("fleet_heartbeats.py", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
