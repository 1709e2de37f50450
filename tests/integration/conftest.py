"""A real control plane and noded, as processes, for each test that asks for `cluster`."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cluster import AICluster, Daemon, nodes_ready, start_controlplane, start_noded, start_router, wait_for

CALL_REPORT = pytest.StashKey[pytest.TestReport]()


@dataclass
class Cluster:
    root: Path
    controlplane: Daemon
    nodes: list[Daemon] = field(default_factory=list)

    @property
    def server(self) -> str:
        return str(self.controlplane.state["grpc"])

    def add_node(self, name: str, *, labels: str = "") -> Daemon:
        node = start_noded(self.root / f"node-{name}", self.server, name=name, labels=labels)
        self.nodes.append(node)
        wait_for(lambda: nodes_ready(self.server, len([n for n in self.nodes if n.proc.poll() is None])),
                 timeout=30, what=f"node {name} to be ready")  # fmt: skip
        return node

    def logs(self) -> str:
        parts = [f"--- {d.name} ---\n{d.log_tail(60)}" for d in [self.controlplane, *self.nodes]]
        return "\n".join(parts)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        self.controlplane.stop()


@pytest.fixture
def cluster(tmp_path: Path, built_agents: Path, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """Control plane (heartbeat 200ms, TTL 2s) and one node named `alpha` with 4 slots."""
    cp = start_controlplane(tmp_path / "controlplane")
    c = Cluster(root=tmp_path, controlplane=cp)
    try:
        c.add_node("alpha")
        yield c
    finally:
        report = request.node.stash.get(CALL_REPORT, None)
        if report is not None and report.failed:
            print(c.logs())
        c.stop()


@pytest.fixture
def ai_cluster(tmp_path: Path, built_agents: Path) -> Iterator[AICluster]:
    cp = start_controlplane(tmp_path / "cp")
    router = start_router(tmp_path / "router")
    server = str(cp.state["grpc"])
    node = start_noded(tmp_path / "node", server, name="n1", extra=["--router", router.state["http"]])
    try:
        wait_for(lambda: nodes_ready(server, 1), timeout=30, what="the node")
        yield AICluster(server=server, router=router, node=node)
    finally:
        node.stop()
        router.stop()
        cp.stop()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call":
        item.stash[CALL_REPORT] = report
    return report
