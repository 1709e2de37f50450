"""A network partition between a node and the control plane, made with a network namespace.

The node `beta` runs in its own network namespace, joined to the host by a veth pair; taking the
host end down cuts it off without stopping any process. While cut off it is declared down and its
step runs again elsewhere; when the link comes back, the result it finished meanwhile is for a
fenced-off attempt and is dropped, so the run's outcome is the new attempt's.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cluster import (
    cli,
    client_tls_flags,
    make_pki,
    nodes_ready,
    server_tls_flags,
    sleep_workflow,
    start_controlplane,
    start_noded,
    wait_for,
)

pytestmark = pytest.mark.integration


@dataclass
class Netns:
    name: str
    host_if: str
    host_ip: str

    def cut(self) -> None:
        _ip("link", "set", self.host_if, "down")

    def heal(self) -> None:
        _ip("link", "set", self.host_if, "up")


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, f"ip {' '.join(args)}: {result.stderr.strip()} (these tests need root and iproute2)"


@pytest.fixture
def netns() -> Iterator[Netns]:
    assert shutil.which("ip"), "these tests need the ip command (apt-get install iproute2) and root"
    tag = f"{os.getpid() % 10000}"
    ns = Netns(name=f"af-ns{tag}", host_if=f"afh{tag}", host_ip="10.231.77.1")
    peer = f"afn{tag}"
    _ip("netns", "add", ns.name)
    try:
        _ip("link", "add", ns.host_if, "type", "veth", "peer", "name", peer)
        _ip("link", "set", peer, "netns", ns.name)
        _ip("addr", "add", f"{ns.host_ip}/24", "dev", ns.host_if)
        _ip("link", "set", ns.host_if, "up")
        _ip("-n", ns.name, "addr", "add", "10.231.77.2/24", "dev", peer)
        _ip("-n", ns.name, "link", "set", peer, "up")
        _ip("-n", ns.name, "link", "set", "lo", "up")
        yield ns
    finally:
        subprocess.run(["ip", "link", "del", ns.host_if], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "del", ns.name], capture_output=True, check=False)


def test_a_partitioned_node_loses_its_step_and_its_late_result_is_fenced_off(
    netns: Netns, tmp_path: Path, built_agents, monkeypatch: pytest.MonkeyPatch
):
    # Off loopback the control plane serves mutual TLS only: every party has its certificate.
    pki = make_pki(tmp_path / "pki", server_sans=[netns.host_ip], nodes=["alpha", "beta"])
    ca, cert, key = client_tls_flags(pki, "admin-ops")[1::2]
    for name, path in (("CA", ca), ("CERT", cert), ("KEY", key)):  # the CLI's (flags win for the daemons)
        monkeypatch.setenv(f"AGENTFLOW_TLS_{name}", path)
    cp = start_controlplane(tmp_path / "cp", listen=f"{netns.host_ip}:0", heartbeat="200ms", ttl="2s",
                            extra=server_tls_flags(pki))  # fmt: skip
    server = cp.state["grpc"]
    monkeypatch.setenv("AGENTFLOW_TOKEN", (tmp_path / "cp" / "admin.token").read_text().strip())
    join = tmp_path / "join.token"  # one join token for both nodes (not single-use)
    join.write_text(cli(server, "token", "create", "--role", "node", "--ttl", "1h").out)
    beta_tls = [*client_tls_flags(pki, "node-beta"), "--join-token-file", str(join)]
    beta = start_noded(tmp_path / "beta", server, name="beta", extra=["--isolation", "none", *beta_tls],
                       prefix=["ip", "netns", "exec", netns.name])  # fmt: skip
    alpha = None
    try:
        wait_for(lambda: nodes_ready(server, 1), timeout=30, what="beta, across the veth pair")
        run_id = cli(server, "run", str(sleep_workflow(tmp_path / "nap.yaml", ms=8000)), "--json").json()["run_id"]

        def step() -> dict:
            return cli(server, "status", run_id, "--json", timeout=15).json()["steps"][0]

        wait_for(lambda: step()["status"] == "running", timeout=30, what="the step to run on beta")
        assert step()["node"] == "beta"
        alpha = start_noded(tmp_path / "alpha", server, name="alpha",
                            extra=[*client_tls_flags(pki, "node-alpha"), "--join-token-file", str(join)])  # fmt: skip

        netns.cut()
        wait_for(lambda: {n["name"]: n["status"] for n in cli(server, "nodes", "--json").json()}.get("beta") == "down",
                 timeout=30, what="beta to be declared down")  # fmt: skip
        # beta never stopped: its attempt runs on behind the cut and finishes into its outbox
        outbox = tmp_path / "beta" / "noded.db"

        def beta_holds_a_result() -> bool:
            with sqlite3.connect(outbox) as db:
                return db.execute("SELECT count(*) FROM outbox").fetchone()[0] == 1

        wait_for(beta_holds_a_result, timeout=30, what="beta's own result in its outbox")
        done = cli(server, "status", run_id, "--wait", "--json")
        assert done.code == 0, done.out + done.err + cp.log_tail() + alpha.log_tail()
        moved = done.json()["steps"][0]
        assert (moved["node"], moved["attempt"]) == ("alpha", 2)

        netns.heal()
        wait_for(lambda: {n["name"]: n["status"] for n in cli(server, "nodes", "--json").json()}.get("beta") == "ready",
                 timeout=60, what="beta back after the link heals")  # fmt: skip
        # beta delivered its attempt-1 result on reconnect; the control plane dropped it as stale
        wait_for(lambda: not beta_holds_a_result(), timeout=30, what="beta's stale result to be acked and dropped")
        final = cli(server, "status", run_id, "--json").json()
        assert (final["status"], final["steps"][0]["node"], final["steps"][0]["attempt"]) == ("succeeded", "alpha", 2)
        assert "control plane dropped a stale result" in beta.log_file.read_text()
    finally:
        netns.heal()
        for daemon in (alpha, beta, cp):
            if daemon is not None:
                daemon.stop()
