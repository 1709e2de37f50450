"""TLS settings: all three files or none, and plaintext on loopback only."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentflow.tls import TLSError, TLSFiles, plaintext_problem

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("listen", ["127.0.0.1:7070", "127.8.9.1:0", "[::1]:7070", "localhost:7070"])
def test_loopback_may_be_plaintext(listen: str) -> None:
    assert plaintext_problem(listen, flags="--tls-*") is None


@pytest.mark.parametrize("listen", ["0.0.0.0:7070", "10.0.0.5:7070", "[::]:7070", "cp.example:7070"])
def test_anything_else_needs_tls(listen: str) -> None:
    assert plaintext_problem(listen, flags="--tls-*") == (
        f"{listen} is not a loopback address: plaintext is allowed on loopback only; set --tls-*"
    )


def test_the_three_files_go_together(tmp_path: Path) -> None:
    assert TLSFiles.from_settings(None, None, None, flag="--tls") is None
    with pytest.raises(TLSError, match="--tls-cert, --tls-key missing"):
        TLSFiles.from_settings(tmp_path / "ca.pem", None, None, flag="--tls")
    with pytest.raises(TLSError, match="AGENTFLOW_TLS_CA, AGENTFLOW_TLS_CERT and AGENTFLOW_TLS_KEY go together"):
        TLSFiles.from_env({"AGENTFLOW_TLS_CERT": "x"})


def test_unreadable_and_non_pem_files_are_named(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("not a certificate")
    files = TLSFiles(tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem")
    with pytest.raises(TLSError, match=r"ca\.pem: not a PEM file"):
        files.read()
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    with pytest.raises(TLSError, match=r"cert\.pem: No such file or directory"):
        files.read()
