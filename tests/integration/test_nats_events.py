"""Events on NATS JetStream through real processes: a control plane publishing to a real
`nats-server -js` that is killed and started again in the middle of a run, read back by a
nats-py consumer; and `agentflow events`, which reads the control plane's own store."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import nats
import pytest
from cluster import REPO_ROOT, Daemon, cli, start_controlplane, start_noded, wait_for, write_workflow
from nats.js.api import AckPolicy, ConsumerConfig
from processes import NatsServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

SLEEP = REPO_ROOT / "tests" / "agents" / "sleep.wasm"


def chain(path: Path, *, steps: int, ms: int) -> Path:
    agents = "".join(
        f"  - name: s{i}\n    module: {SLEEP}\n    input: {{ms: {ms}}}\n"
        + (f"    dependsOn: [s{i - 1}]\n" if i else "")
        for i in range(steps)
    )
    return write_workflow(
        path, f"apiVersion: agentflow/v1\nkind: Workflow\nname: naps\nversion: '1'\nagents:\n{agents}"
    )


def read_stream(url: str, stream: str) -> list[dict[str, Any]]:
    """Every message of `stream`, through a durable pull consumer, as (headers, body) dicts."""

    async def read() -> list[dict[str, Any]]:
        nc = await nats.connect(url)
        try:
            js = nc.jetstream()
            count = (await js.stream_info(stream)).state.messages
            await js.add_consumer(stream, ConsumerConfig(durable_name="check", ack_policy=AckPolicy.EXPLICIT))
            sub = await js.pull_subscribe_bind("check", stream=stream)
            got: list[dict[str, Any]] = []
            while len(got) < count:
                for msg in await sub.fetch(count - len(got), timeout=5):
                    await msg.ack()
                    got.append({"msg_id": (msg.headers or {}).get("Nats-Msg-Id"), "nats_subject": msg.subject,
                                **json.loads(msg.data)})  # fmt: skip
            await js.delete_consumer(stream, "check")
            return got
        finally:
            await nc.close()

    return asyncio.run(read())


def stream_count(url: str, stream: str) -> int:
    async def count() -> int:
        nc = await nats.connect(url)
        try:
            return int((await nc.jetstream().stream_info(stream)).state.messages)
        finally:
            await nc.close()

    return asyncio.run(count())


def store_events(server: str, *types: str) -> list[dict[str, Any]]:
    args = [a for t in types for a in ("--type", t)]
    result = cli(server, "events", "--tail", "0", "--json", *args)
    assert result.code == 0, result.err
    return [json.loads(line) for line in result.out.splitlines()]


def test_events_reach_jetstream_once_each_across_a_nats_outage(
    tmp_path: Path, built_agents: Path, nats_server: NatsServer
) -> None:
    cp = start_controlplane(tmp_path / "cp", extra=["--nats-url", nats_server.url])
    daemons: list[Daemon] = [cp]
    try:
        server = str(cp.state["grpc"])
        daemons.append(start_noded(tmp_path / "node", server, name="alpha"))
        wait_for(lambda: cli(server, "nodes", "--json").json(), timeout=30, what="the node")

        first = cli(server, "run", str(chain(tmp_path / "a.yaml", steps=3, ms=10)), "--wait", "--json")
        assert first.code == 0, first.err + cp.log_tail()
        in_store = len(store_events(server, "workflow.*", "agent.*"))
        wait_for(lambda: stream_count(nats_server.url, "WORKFLOWS") == in_store, timeout=30,
                 what="the first run's events in WORKFLOWS")  # fmt: skip

        # NATS goes away in the middle of a run; the run goes on and its events wait in the store.
        submitted = cli(server, "run", str(chain(tmp_path / "b.yaml", steps=6, ms=150)), "--json")
        assert submitted.code == 0, submitted.err
        run_b = submitted.json()["run_id"]
        wait_for(lambda: any(e["type"] == "agent.completed" for e in store_events(server, "agent.*")
                             if e["run_id"] == run_b), timeout=30, what="run b under way")  # fmt: skip
        nats_server.kill()
        waited = cli(server, "status", run_b, "--wait", "--json")
        assert waited.code == 0 and waited.json()["status"] == "succeeded", waited.err
        assert store_events(server, "workflow.completed")[-1]["run_id"] == run_b  # the store needs no NATS
        nats_server.start()

        expected = store_events(server, "workflow.*", "agent.*")
        wait_for(lambda: stream_count(nats_server.url, "WORKFLOWS") >= len(expected), timeout=60,
                 what="the backlog in WORKFLOWS")  # fmt: skip
        published = read_stream(nats_server.url, "WORKFLOWS")
        assert [m["id"] for m in published] == [e["id"] for e in expected], "same events, same order, once each"
        assert all(m["msg_id"] == m["id"] and m["nats_subject"] == m["type"] for m in published)
        assert {m["type"] for m in published} >= {"workflow.started", "agent.started", "agent.completed",
                                                 "workflow.completed"}  # fmt: skip
        done = [m for m in published if m["type"] == "workflow.completed" and m["run_id"] == run_b]
        assert len(done) == 1 and done[0]["subject"] == f"run/{run_b}" and done[0]["data"]["workflow"] == "naps"

        nodes = read_stream(nats_server.url, "NODES")
        assert [m["id"] for m in nodes] == [e["id"] for e in store_events(server, "node.*", "module.*")]

        # A restarted control plane publishes nothing twice.
        cp.kill()
        cp = start_controlplane(tmp_path / "cp", extra=["--nats-url", nats_server.url])
        daemons[0] = cp
        server = str(cp.state["grpc"])
        assert stream_count(nats_server.url, "WORKFLOWS") == len(published)
    finally:
        for d in reversed(daemons):
            d.stop()


def test_agentflow_events_filters_and_follows(cluster: Any, tmp_path: Path) -> None:
    import subprocess
    import sys

    follower = subprocess.Popen(
        [sys.executable, "-m", "agentflow.cli.main", "--server", cluster.server, "events", "--follow",
         "--type", "workflow.*", "--json", "--tail", "0"],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        run = cli(cluster.server, "run", str(chain(tmp_path / "c.yaml", steps=2, ms=10)), "--wait", "--json")
        assert run.code == 0, run.err
        run_id = run.json()["run_id"]
        lines: list[dict[str, Any]] = []
        assert follower.stdout is not None
        while not any(e["type"] == "workflow.completed" for e in lines):
            line = follower.stdout.readline()
            assert line, follower.stderr.read() if follower.stderr else "the follower ended"
            lines.append(json.loads(line))
        assert [e["type"] for e in lines if e["run_id"] == run_id] == ["workflow.started", "workflow.completed"]
    finally:
        follower.terminate()
        follower.wait(10)

    text = cli(cluster.server, "events", "--run", run_id)
    assert text.code == 0, text.err
    assert "agent.completed" in text.out and f"{run_id}/s1#1" in text.out
    tail = cli(cluster.server, "events", "--run", run_id, "--tail", "1", "--json")
    assert [json.loads(line)["type"] for line in tail.out.splitlines()] == ["workflow.completed"]
    bad = cli(cluster.server, "events", "--type", "agent.nope")
    assert bad.code == 2 and "types[0]: unknown event type 'agent.nope'" in bad.err
