"""The daemons as an operator meets them: bad settings, busy ports, start order."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from cluster import REPO_ROOT, free_port, nodes_ready, start_controlplane, start_noded, wait_for

pytestmark = pytest.mark.integration


def run(*argv: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *argv], cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )


def test_busy_port_exits_1_with_the_address(tmp_path: Path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        address = f"127.0.0.1:{holder.getsockname()[1]}"
        result = run(
            "controlplane", "--data-dir", str(tmp_path), "--listen", address, "--metrics-listen", "127.0.0.1:0"
        )
    assert result.returncode == 1
    assert f"cannot listen on {address}" in result.stderr
    assert not (tmp_path / "controlplane.json").exists()


def test_bad_settings_exit_2_naming_their_source(tmp_path: Path):
    flag = run("noded", "--data-dir", str(tmp_path), "--slots", "zero")
    assert flag.returncode == 2
    assert '--slots: must be a positive integer, got "zero"' in flag.stderr

    config = tmp_path / "cp.toml"
    config.write_text('listen = "127.0.0.1:0"\nheartbeat_intervall = "1s"\n')
    toml = run("controlplane", "--config", str(config), "--data-dir", str(tmp_path))
    assert toml.returncode == 2
    assert 'unknown key "heartbeat_intervall" (did you mean "heartbeat_interval"?)' in toml.stderr

    env = subprocess.run(
        [sys.executable, "-m", "controlplane", "--data-dir", str(tmp_path)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=30, check=False,
        env={"PATH": "/usr/bin:/bin", "AGENTFLOW_NODE_TTL": "forever"},
    )  # fmt: skip
    assert env.returncode == 2
    assert "AGENTFLOW_NODE_TTL" in env.stderr


def test_node_started_before_the_control_plane_joins_when_it_comes_up(tmp_path: Path, built_agents: Path):
    port = free_port()
    server = f"127.0.0.1:{port}"
    node = start_noded(tmp_path / "node", server, name="early")
    cp = None
    try:
        cp = start_controlplane(tmp_path / "cp", listen=server)
        wait_for(lambda: nodes_ready(server, 1), timeout=30, what="the early node to join")
        assert node.proc.poll() is None
    finally:
        node.stop()
        if cp is not None:
            cp.stop()


def test_sigterm_stops_cleanly_and_removes_the_state_file(tmp_path: Path):
    cp = start_controlplane(tmp_path / "cp")
    assert cp.state_file.exists()
    assert cp.stop() == 0
    assert not cp.state_file.exists()
