"""Workflows run end to end on real control-plane and noded processes, driven by the CLI."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from cluster import REPO_ROOT, cli, controlplane_metrics, free_port, wait_for, write_workflow

from agentflow.v1 import controlplane_pb2, controlplane_pb2_grpc, types_pb2

pytestmark = pytest.mark.integration

AGENTS = REPO_ROOT / "tests" / "agents"
STEP_RUNNING = types_pb2.STEP_STATUS_RUNNING


def agent(name: str) -> str:
    return str(AGENTS / f"{name}.wasm")


def steps_by_name(run: dict) -> dict[str, dict]:
    return {s["name"]: s for s in run["steps"]}


def test_diamond_passes_outputs_to_dependents(cluster):
    result = cli(cluster.server, "run", "examples/diamond.yaml", "--input", '{"text": "hello wasm world"}',
                 "--wait", "--json")  # fmt: skip
    assert result.code == 0, result.err + cluster.logs()
    run = result.json()
    assert run["status"] == "succeeded"
    assert run["outputs"] == {
        "fetch": {"text": "hello wasm world", "words": ["hello", "wasm", "world"]},
        "count": {"words": 3, "chars": 14},
        "shout": {"text": "HELLO WASM WORLD"},
        "summarize": {"summary": "3 words, 14 chars: HELLO WASM WORLD"},
    }
    assert [s["name"] for s in run["steps"]] == ["fetch", "count", "shout", "summarize"]
    assert all(s["status"] == "succeeded" and s["attempt"] == 1 and s["node"] == "alpha" for s in run["steps"])

    status = cli(cluster.server, "status", run["run_id"], "--json")
    assert status.code == 0
    assert status.json()["outputs"] == run["outputs"]


def test_fanout_of_24_steps_and_fan_in(cluster):
    result = cli(cluster.server, "run", "examples/fanout.yaml", "--wait", "--json")
    assert result.code == 0, result.err + cluster.logs()
    run = result.json()
    assert run["status"] == "succeeded"
    assert len(run["steps"]) == 25
    for i in range(1, 25):
        assert run["outputs"][f"shard-{i:02d}"] == {"n": i, "square": i * i}
    assert run["outputs"]["gather"] == {"count": 24, "sum": sum(i * i for i in range(1, 25))}


def test_independent_steps_run_in_parallel(cluster, tmp_path: Path):
    """Four 1-second steps on a 4-slot node: all four start before any of them finishes."""
    agents = "\n".join(f"  - name: slow-{i}\n    module: {agent('sleep')}\n    input: {{ms: 1000}}" for i in range(4))
    header = "apiVersion: agentflow/v1\nkind: Workflow\nname: parallel\nversion: '1'\nagents:\n"
    wf = write_workflow(tmp_path / "parallel.yaml", header + agents + "\n")
    submitted = cli(cluster.server, "run", str(wf), "--json")
    assert submitted.code == 0, submitted.err
    run_id = submitted.json()["run_id"]

    order: list[tuple[str, str]] = []
    with grpc.insecure_channel(cluster.server) as channel:
        stub = controlplane_pb2_grpc.ControlPlaneStub(channel)
        for message in stub.WatchRun(controlplane_pb2.WatchRunRequest(run_id=run_id), timeout=60):
            if not message.HasField("event"):  # the snapshot: steps that started before we watched
                order += [("agent.started", s.name) for s in message.run.steps if s.status == STEP_RUNNING]
            else:  # events committed together share a message: the first, then the later ones
                order += [(e.type, e.step) for e in (message.event, *message.later_events)
                          if e.type in ("agent.started", "agent.completed")]  # fmt: skip
    assert [t for t, _ in order[:4]] == ["agent.started"] * 4, order
    assert sorted(s for _, s in order[:4]) == [f"slow-{i}" for i in range(4)]


def test_failures_are_recorded_and_dependents_skipped(cluster, tmp_path: Path):
    wf = write_workflow(
        tmp_path / "broken.yaml",
        f"""\
apiVersion: agentflow/v1
kind: Workflow
name: broken
version: "1"
agents:
  - name: exits
    module: {agent("fail")}
  - name: traps
    module: {agent("trap")}
  - name: garbage
    module: {agent("badjson")}
  - name: after
    module: {agent("echo")}
    dependsOn: [exits]
""",
    )
    result = cli(cluster.server, "run", str(wf), "--wait", "--json")
    assert result.code == 1, result.err
    run = result.json()
    assert run["status"] == "failed"
    steps = steps_by_name(run)
    assert steps["exits"]["status"] == "failed"
    assert "exited with code 3" in steps["exits"]["error"]
    assert steps["exits"]["exit_code"] == 3
    assert "boom" in steps["exits"]["stderr"]
    assert steps["traps"]["status"] == "failed"
    assert "trap" in steps["traps"]["error"]
    assert steps["garbage"]["status"] == "failed"
    assert "not valid JSON" in steps["garbage"]["error"]
    assert steps["after"]["status"] == "skipped"
    assert "exits" in steps["after"]["error"]
    assert run["outputs"] == {}

    text = cli(cluster.server, "status", run["run_id"])
    assert text.code == 0
    assert "exited with code 3" in text.out and "failed" in text.out


def test_retry_policy_runs_a_failed_step_again(cluster, tmp_path: Path):
    wf = write_workflow(
        tmp_path / "flaky.yaml",
        f"""\
apiVersion: agentflow/v1
kind: Workflow
name: flaky
version: "1"
agents:
  - name: flaky
    module: {agent("flaky")}
    input: {{succeedOn: 2}}
    retry: {{maxAttempts: 3, backoff: 100ms}}
""",
    )
    result = cli(cluster.server, "run", str(wf), "--wait", "--json")
    assert result.code == 0, result.err
    run = result.json()
    assert run["outputs"] == {"flaky": {"attempt": 2}}
    assert steps_by_name(run)["flaky"]["attempt"] == 2


def test_step_timeout_fails_the_step(cluster, tmp_path: Path):
    wf = write_workflow(
        tmp_path / "spin.yaml",
        f"""\
apiVersion: agentflow/v1
kind: Workflow
name: spin
version: "1"
agents:
  - name: spin
    module: {agent("spin")}
    timeout: 1s
""",
    )
    result = cli(cluster.server, "run", str(wf), "--wait", "--json")
    assert result.code == 1
    step = steps_by_name(result.json())["spin"]
    assert step["status"] == "failed"
    assert "timed out" in step["error"]
    metrics = controlplane_metrics(cluster.controlplane)
    assert 'agentflow_resource_limit_hits_total{limit="wall time",workflow="spin"} 1.0' in metrics


def test_memory_limit_fails_only_that_step(cluster, tmp_path: Path):
    wf = write_workflow(
        tmp_path / "hog.yaml",
        f"""\
apiVersion: agentflow/v1
kind: Workflow
name: hog
version: "1"
agents:
  - name: hog
    module: {agent("hog")}
    resources: {{memory: 32Mi}}
  - name: bystander
    module: {agent("echo")}
""",
    )
    result = cli(cluster.server, "run", str(wf), "--wait", "--json")
    assert result.code == 1
    steps = steps_by_name(result.json())
    assert steps["hog"]["status"] == "failed"
    assert steps["hog"]["error"] == "memory limit of 32Mi reached"
    assert steps["bystander"]["status"] == "succeeded"
    metrics = controlplane_metrics(cluster.controlplane)
    assert 'agentflow_resource_limit_hits_total{limit="memory",workflow="hog"} 1.0' in metrics
    # The node keeps serving.
    assert cli(cluster.server, "run", "examples/diamond.yaml", "--wait").code == 0


def test_input_mapping_from_run_input_and_upstream(cluster, tmp_path: Path):
    wf = write_workflow(
        tmp_path / "mapping.yaml",
        f"""\
apiVersion: agentflow/v1
kind: Workflow
name: mapping
version: "1"
agents:
  - name: first
    module: {agent("echo")}
  - name: second
    module: {agent("echo")}
    dependsOn: [first]
    input:
      greeting: "${{ input.greeting }}"
      from_first: "${{ upstream.first.input.greeting }}"
      fixed: [1, 2]
""",
    )
    result = cli(cluster.server, "run", str(wf), "--input", '{"greeting": "hi"}', "--wait", "--json")
    assert result.code == 0, result.err
    run = result.json()
    first, second = run["outputs"]["first"], run["outputs"]["second"]
    assert first["input"] == {"greeting": "hi"}
    assert first["upstream"] == {}
    assert first["step"]["name"] == "first" and first["step"]["attempt"] == 1
    assert first["step"]["run"] == run["run_id"]
    assert second["input"] == {"greeting": "hi", "from_first": "hi", "fixed": [1, 2]}
    assert second["upstream"] == {"first": first}


def test_cancel_stops_a_running_step(cluster, tmp_path: Path):
    wf = write_workflow(
        tmp_path / "long.yaml",
        f"""\
apiVersion: agentflow/v1
kind: Workflow
name: long
version: "1"
agents:
  - name: long
    module: {agent("sleep")}
    input: {{ms: 60000}}
    timeout: 5m
""",
    )
    submitted = cli(cluster.server, "run", str(wf), "--json")
    run_id = submitted.json()["run_id"]
    wait_for(lambda: cli(cluster.server, "status", run_id, "--json").json()["steps"][0]["status"] == "running",
             timeout=30, what="the step to run")  # fmt: skip
    cancelled = cli(cluster.server, "cancel", run_id, "--json")
    assert cancelled.code == 0, cancelled.err
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["steps"][0]["status"] == "cancelled"
    # The worker was killed: the node frees the slot instead of sleeping a minute.
    wait_for(lambda: cli(cluster.server, "nodes", "--json").json()[0]["running"] == 0, timeout=20,
             what="the node to free the slot")  # fmt: skip
    again = cli(cluster.server, "cancel", run_id)
    assert again.code == 1 and "already cancelled" in again.err
    waited = cli(cluster.server, "status", run_id, "--wait", "--json")
    assert waited.code == 1 and waited.json()["status"] == "cancelled"


def test_invalid_workflow_is_rejected_and_changes_nothing(cluster, tmp_path: Path):
    wf = write_workflow(
        tmp_path / "bad.yaml",
        f"""\
apiVersion: agentflow/v1
kind: Workflow
name: bad
version: 1
agents:
  - name: a
    module: {agent("echo")}
    dependson: [b]
    resources: {{cpu: 2x}}
  - name: b
    module: ./missing.wasm
    dependsOn: [a]
""",
    )
    result = cli(cluster.server, "run", str(wf), "--wait")
    assert result.code == 2
    lines = result.err.strip().splitlines()
    assert any(line.startswith(f"{wf}: version:") for line in lines)
    assert any("agents[0].dependson: unknown field" in line and "dependsOn" in line for line in lines)
    assert any("agents[0].resources.cpu" in line for line in lines)
    assert any("agents[1].module" in line and "not found" in line for line in lines)
    assert cli(cluster.server, "runs", "--json").json() == []
    assert cli(cluster.server, "module", "list", "--json").json() == []

    bad_input = cli(cluster.server, "run", "examples/diamond.yaml", "--input", "{nope")
    assert bad_input.code == 2 and "not valid JSON" in bad_input.err
    assert cli(cluster.server, "runs", "--json").json() == []


def test_unreachable_control_plane_exits_3(built_agents):
    server = f"127.0.0.1:{free_port()}"
    result = cli(server, "run", "examples/diamond.yaml", "--wait")
    assert result.code == 3
    assert "unreachable" in result.err
    assert cli(server, "nodes").code == 3


def test_module_push_prints_digest(cluster):
    import hashlib

    path = REPO_ROOT / "examples" / "agents" / "fetch.wasm"
    result = cli(cluster.server, "module", "push", str(path))
    assert result.code == 0, result.err
    assert result.out.strip() == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    listed = cli(cluster.server, "module", "list", "--json").json()
    assert [m["digest"] for m in listed] == [result.out.strip()]


def test_runs_lists_newest_first(cluster):
    first = cli(cluster.server, "run", "examples/diamond.yaml", "--wait", "--json").json()["run_id"]
    second = cli(cluster.server, "run", "examples/fanout.yaml", "--wait", "--json").json()["run_id"]
    runs = cli(cluster.server, "runs", "--json").json()
    assert [r["run_id"] for r in runs] == [second, first]
    text = cli(cluster.server, "runs")
    assert first in text.out and second in text.out


def test_nodes_json_shape(cluster):
    nodes = cli(cluster.server, "nodes", "--json").json()
    assert len(nodes) == 1
    node = nodes[0]
    assert node["name"] == "alpha"
    assert node["status"] == "ready"
    assert node["isolation"] in ("cgroup2", "cgroup1", "none")
    assert node["capacity"]["slots"] == 4
    assert node["capacity"]["cpu_millis"] > 0 and node["capacity"]["memory_bytes"] > 0
    assert node["running"] == 0
    assert isinstance(node["labels"], dict)


def test_metrics_count_finished_workflows(cluster):
    import httpx

    assert cli(cluster.server, "run", "examples/diamond.yaml", "--wait").code == 0
    body = httpx.get(f"http://{cluster.controlplane.state['metrics']}/metrics", timeout=10).text
    assert 'agentflow_workflow_executions_total{status="succeeded",workflow="diamond"} 1.0' in body
    assert 'agentflow_agent_executions_total{agent="fetch",status="succeeded",workflow="diamond"} 1.0' in body
    node_body = httpx.get(f"http://{cluster.nodes[0].state['metrics']}/metrics", timeout=10).text
    assert 'agentflow_node_step_executions_total{kind="",status="succeeded",workflow="diamond"} 4.0' in node_body


def test_status_of_unknown_run(cluster):
    result = cli(cluster.server, "status", "nope-123")
    assert result.code == 1
    assert 'run "nope-123" not found' in result.err
