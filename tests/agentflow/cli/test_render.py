"""The stable JSON objects and text tables of `agentflow.cli.render`."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from agentflow.cli import render
from agentflow.v1 import node_admin_pb2, types_pb2

pytestmark = pytest.mark.unit

RUN_KEYS = [
    "run_id",
    "workflow",
    "version",
    "status",
    "error",
    "input",
    "outputs",
    "steps",
    "created_at",
    "finished_at",
    "llm",
    "budget",
    "reserved",
    "trace_id",
]
STEP_KEYS = [
    "name",
    "status",
    "attempt",
    "max_attempts",
    "node",
    "error",
    "exit_code",
    "stderr",
    "started_at",
    "finished_at",
    "llm",
    "usage",
]
NODE_KEYS = [
    "name",
    "id",
    "status",
    "isolation",
    "sandbox_layers",
    "labels",
    "capacity",
    "allocated",
    "running",
    "draining",
    "drain_deadline",
    "version",
    "last_heartbeat",
]


def ts(text: str) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(datetime.fromisoformat(text).replace(tzinfo=UTC))
    return stamp


def sample_run() -> types_pb2.Run:
    return types_pb2.Run(
        id="run-7",
        workflow_name="diamond",
        workflow_version="3",
        workflow_id="wf-1",
        status=types_pb2.RUN_STATUS_FAILED,
        input_json='{"text": "hello wasm"}',
        error='step "shout" failed',
        created_at=ts("2025-01-02T03:04:05.678"),
        finished_at=ts("2025-01-02T03:05:00"),
        steps=[
            types_pb2.Step(
                name="fetch",
                status=types_pb2.STEP_STATUS_SUCCEEDED,
                attempt=1,
                max_attempts=3,
                node="node-a",
                output_json='{"words": ["hello", "wasm"]}',
                started_at=ts("2025-01-02T03:04:06"),
                finished_at=ts("2025-01-02T03:04:07.5"),
            ),
            types_pb2.Step(
                name="shout",
                status=types_pb2.STEP_STATUS_FAILED,
                attempt=3,
                max_attempts=3,
                node="node-b",
                error="exit code 2",
                exit_code=2,
                stderr="boom\n",
                output_json='{"partial": true}',
                depends_on=["fetch"],
                usage=types_pb2.ResourceUsage(
                    cpu_seconds=0.25,
                    peak_memory_bytes=3 * 1024 * 1024 + 100 * 1024,
                    wall_seconds=1.5,
                    host_calls=100_001,
                    limits_hit=[types_pb2.RESOURCE_LIMIT_FETCH_SIZE, types_pb2.RESOURCE_LIMIT_HOST_CALLS],
                ),
                started_at=ts("2025-01-02T03:04:08"),
                finished_at=ts("2025-01-02T03:04:09"),
            ),
            types_pb2.Step(
                name="count",
                status=types_pb2.STEP_STATUS_SUCCEEDED,
                attempt=1,
                max_attempts=1,
                node="node-a",
                output_json="7",
            ),
            types_pb2.Step(name="summarize", status=types_pb2.STEP_STATUS_SKIPPED, max_attempts=1),
        ],
    )


def test_run_json_has_exactly_the_documented_keys() -> None:
    obj = render.run_json(sample_run())
    assert list(obj) == RUN_KEYS
    assert all(list(step) == STEP_KEYS for step in obj["steps"])


def test_run_json_values() -> None:
    obj = render.run_json(sample_run())
    assert obj["run_id"] == "run-7"
    assert (obj["workflow"], obj["version"]) == ("diamond", "3")
    assert obj["status"] == "failed"
    assert obj["error"] == 'step "shout" failed'
    assert obj["input"] == {"text": "hello wasm"}
    assert obj["created_at"] == "2025-01-02T03:04:05.678Z"
    assert obj["finished_at"] == "2025-01-02T03:05:00.000Z"
    assert obj["steps"][1] == {
        "name": "shout",
        "status": "failed",
        "attempt": 3,
        "max_attempts": 3,
        "node": "node-b",
        "error": "exit code 2",
        "exit_code": 2,
        "stderr": "boom\n",
        "started_at": "2025-01-02T03:04:08.000Z",
        "finished_at": "2025-01-02T03:04:09.000Z",
        "llm": {"calls": 0, "input_tokens": 0, "output_tokens": 0, "cost_usd": 0, "cache_hits": 0, "replays": 0,
                "upstream_calls": 0},
        "usage": {"cpu_seconds": 0.25, "peak_memory_bytes": 3 * 1024 * 1024 + 100 * 1024, "wall_seconds": 1.5,
                  "fetched_bytes": 0, "host_calls": 100_001, "limits_hit": ["fetch size", "host calls"]},
    }  # fmt: skip
    assert [s["name"] for s in obj["steps"]] == ["fetch", "shout", "count", "summarize"]
    assert (obj["budget"], obj["reserved"]) == (None, None)


def test_status_text_shows_what_each_finished_step_used() -> None:
    lines = render.run_text(sample_run()).splitlines()
    assert lines[1].split()[:8] == ["STEP", "STATUS", "ATTEMPT", "NODE", "CPU", "MEM", "WALL", "CALLS"]
    shout = next(line for line in lines if line.startswith("shout"))
    assert shout.split()[4:8] == ["0.250s", "3.1Mi", "1.500s", "100001"]
    fetch = next(line for line in lines if line.startswith("fetch"))
    assert fetch.split()[4:8] == ["-", "-", "-", "-"]  # no usage recorded
    assert "FETCHED" not in lines[1]  # only when a step fetched something


def test_an_ai_run_shows_what_each_step_spent_on_llm_calls() -> None:
    run = sample_run()
    run.steps[0].llm.CopyFrom(
        types_pb2.LLMUsage(calls=2, input_tokens=30, output_tokens=12, cost_usd=0.0021, replays=1)
    )
    run.llm.CopyFrom(run.steps[0].llm)
    run.budget.CopyFrom(types_pb2.LLMGrant(usd=0.5))
    text = render.run_text(run)
    assert "llm: 2 calls, 42 tokens, $0.0021 (1 replayed)  budget $0.5000" in text
    assert "STEP" in text and "LLM" in text.splitlines()[2]
    assert render.run_json(run)["budget"] == {"usd": 0.5, "tokens": None}


def test_run_json_outputs_only_of_succeeded_steps() -> None:
    obj = render.run_json(sample_run())
    assert obj["outputs"] == {"fetch": {"words": ["hello", "wasm"]}, "count": 7}


def test_run_json_unset_times_and_input_are_null() -> None:
    obj = render.run_json(sample_run())
    assert (obj["steps"][3]["started_at"], obj["steps"][3]["finished_at"]) == (None, None)
    empty = render.run_json(types_pb2.Run(id="r", status=types_pb2.RUN_STATUS_RUNNING))
    assert (empty["input"], empty["created_at"], empty["finished_at"]) == (None, None, None)
    assert (empty["outputs"], empty["steps"], empty["status"]) == ({}, [], "running")


def test_run_json_is_json_serialisable() -> None:
    text = json.dumps(render.run_json(sample_run()))
    assert json.loads(text)["outputs"]["count"] == 7


RUN_STATUSES = {
    "unspecified": (types_pb2.RUN_STATUS_UNSPECIFIED, "unspecified"),
    "running": (types_pb2.RUN_STATUS_RUNNING, "running"),
    "succeeded": (types_pb2.RUN_STATUS_SUCCEEDED, "succeeded"),
    "failed": (types_pb2.RUN_STATUS_FAILED, "failed"),
    "cancelled": (types_pb2.RUN_STATUS_CANCELLED, "cancelled"),
}


@pytest.mark.parametrize(("value", "expected"), RUN_STATUSES.values(), ids=RUN_STATUSES.keys())
def test_run_status_names(value: types_pb2.RunStatus, expected: str) -> None:
    assert render.run_status(value) == expected
    assert render.run_json(types_pb2.Run(status=value))["status"] == expected


def test_every_step_status_is_lower_case_without_prefix() -> None:
    names = {render.step_status(v) for v in types_pb2.StepStatus.values()}
    assert names == {
        "unspecified",
        "pending",
        "ready",
        "assigned",
        "running",
        "succeeded",
        "failed",
        "cancelled",
        "skipped",
    }


def sample_node() -> types_pb2.Node:
    return types_pb2.Node(
        id="n-1",
        name="node-a",
        status=types_pb2.NODE_STATUS_DRAINING,
        isolation=types_pb2.ISOLATION_CGROUP2,
        sandbox_layers=[types_pb2.SANDBOX_LAYER_SECCOMP, types_pb2.SANDBOX_LAYER_NETNS],
        labels={"zone": "eu", "gpu": "a100"},
        capacity=types_pb2.Resources(cpu_millis=8000, memory_bytes=16 * 2**30, slots=16),
        allocated=types_pb2.Resources(cpu_millis=1500, memory_bytes=2**29, slots=3),
        running=3,
        version="0.1.0",
        last_heartbeat=ts("2025-06-01T12:00:00.250"),
        registered_at=ts("2025-06-01T11:00:00"),
        draining=True,
        drain_deadline=ts("2025-06-01T12:10:00"),
    )


def test_node_json_keys_and_values() -> None:
    obj = render.node_json(sample_node())
    assert list(obj) == NODE_KEYS
    assert obj == {
        "name": "node-a",
        "id": "n-1",
        "status": "draining",
        "isolation": "cgroup2",
        "sandbox_layers": ["netns", "seccomp"],
        "labels": {"zone": "eu", "gpu": "a100"},
        "capacity": {"cpu_millis": 8000, "memory_bytes": 16 * 2**30, "slots": 16},
        "allocated": {"cpu_millis": 1500, "memory_bytes": 2**29, "slots": 3},
        "running": 3,
        "draining": True,
        "drain_deadline": "2025-06-01T12:10:00.000Z",
        "version": "0.1.0",
        "last_heartbeat": "2025-06-01T12:00:00.250Z",
    }
    assert type(obj["labels"]) is dict
    json.dumps(obj)


def test_node_json_of_an_empty_node() -> None:
    obj = render.node_json(types_pb2.Node(name="x"))
    assert (obj["status"], obj["isolation"], obj["labels"], obj["last_heartbeat"], obj["drain_deadline"]) == (
        "unspecified",
        "unspecified",
        {},
        None,
        None,
    )
    assert obj["capacity"] == {"cpu_millis": 0, "memory_bytes": 0, "slots": 0}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (types_pb2.NODE_STATUS_READY, "ready"),
        (types_pb2.NODE_STATUS_DISCONNECTED, "disconnected"),
        (types_pb2.NODE_STATUS_DOWN, "down"),
    ],
    ids=["ready", "disconnected", "down"],
)
def test_node_status_names(value: int, expected: str) -> None:
    assert render.node_status(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(types_pb2.ISOLATION_NONE, "none"), (types_pb2.ISOLATION_CGROUP1, "cgroup1")],
    ids=["none", "cgroup1"],
)
def test_isolation_names(value: int, expected: str) -> None:
    assert render.isolation(value) == expected


def test_module_json() -> None:
    module = types_pb2.Module(digest="sha256:" + "a" * 64, size=1234, name="fetch.wasm")
    assert render.module_json(module) == {
        "digest": "sha256:" + "a" * 64,
        "size": 1234,
        "name": "fetch.wasm",
        "created_at": None,
    }


def test_run_text_lists_steps_in_a_table() -> None:
    lines = render.run_text(sample_run()).splitlines()
    assert lines[0] == 'run run-7  workflow diamond v3  failed  (step "shout" failed)'
    assert lines[1].split() == ["STEP", "STATUS", "ATTEMPT", "NODE", "CPU", "MEM", "WALL", "CALLS", "ERROR"]
    assert lines[3].split()[:4] + lines[3].split()[8:] == ["shout", "failed", "3/3", "node-b", "exit", "code", "2"]
    assert lines[5].split() == ["summarize", "skipped", "0/1", "-", "-", "-", "-", "-"]


def test_outputs_text() -> None:
    assert render.outputs_text(sample_run()) == ('outputs:\n  fetch: {"words": ["hello", "wasm"]}\n  count: 7')
    assert render.outputs_text(types_pb2.Run()) == "outputs: (none)"


def test_nodes_text() -> None:
    lines = render.nodes_text([sample_node()]).splitlines()
    assert lines[0].split() == ["NAME", "STATUS", "ISOLATION", "RUNNING", "CPU", "MEMORY", "LABELS"]
    assert lines[1].split() == [
        "node-a", "draining", "cgroup2+netns+seccomp", "3/16", "1500m/8", "512Mi/16Gi", "gpu=a100,zone=eu"
    ]  # fmt: skip


def test_a_draining_node_that_is_away_shows_both() -> None:
    node = sample_node()
    node.status = types_pb2.NODE_STATUS_DOWN
    assert render.nodes_text([node]).splitlines()[1].split()[1] == "down+draining"
    node.draining = False
    assert render.nodes_text([node]).splitlines()[1].split()[1] == "down"


def test_node_line_after_drain_and_undrain() -> None:
    node = sample_node()
    assert render.node_line(node) == "node-a: draining, 3 step(s) on it, deadline 2025-06-01T12:10:00.000Z"
    node.ClearField("drain_deadline")
    assert render.node_line(node) == "node-a: draining, 3 step(s) on it, no deadline"
    node.draining = False
    node.status = types_pb2.NODE_STATUS_READY
    node.running = 0
    assert render.node_line(node) == "node-a: ready, 0 step(s) on it, takes new steps"


def sample_report() -> node_admin_pb2.NodeStatusReport:
    return node_admin_pb2.NodeStatusReport(
        name="vm",
        node_id="n-1",
        server="127.0.0.1:7070",
        connected=True,
        draining=True,
        drain_deadline=ts("2025-06-01T12:10:00"),
        isolation=types_pb2.ISOLATION_CGROUP1,
        slots=4,
        running=[
            node_admin_pb2.RunningStep(
                run_id="r-1", step="fetch", attempt=2, workflow="diamond", since=ts("2025-06-01T12:00:00")
            )
        ],
        unacked_results=1,
        idle_workers=2,
        version="0.1.0",
    )


def test_node_report_json() -> None:
    assert render.node_report_json(sample_report()) == {
        "name": "vm",
        "node_id": "n-1",
        "server": "127.0.0.1:7070",
        "connected": True,
        "draining": True,
        "drain_deadline": "2025-06-01T12:10:00.000Z",
        "isolation": "cgroup1",
        "sandbox_layers": [],
        "slots": 4,
        "running": [
            {"run_id": "r-1", "step": "fetch", "attempt": 2, "workflow": "diamond", "since": "2025-06-01T12:00:00.000Z"}
        ],
        "unacked_results": 1,
        "idle_workers": 2,
        "version": "0.1.0",
    }


def test_node_report_text() -> None:
    lines = render.node_report_text(sample_report()).splitlines()
    assert lines[:3] == [
        "node vm (n-1), connected to 127.0.0.1:7070",
        "isolation cgroup1, 1/4 slots busy, 2 idle worker(s), 1 result(s) awaiting an ack",
        "draining (deadline 2025-06-01T12:10:00.000Z)",
    ]
    assert lines[3].split() == ["RUN", "STEP", "ATTEMPT", "WORKFLOW", "SINCE"]
    assert lines[4].split() == ["r-1", "fetch", "2", "diamond", "2025-06-01T12:00:00.000Z"]
    away = node_admin_pb2.NodeStatusReport(name="vm", server="cp:7070", slots=4)
    assert render.node_report_text(away).splitlines() == [
        "node vm (not registered), NOT connected to cp:7070",
        "isolation unspecified, 0/4 slots busy, 0 idle worker(s), 0 result(s) awaiting an ack",
    ]
