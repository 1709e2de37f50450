"""The CA of `agentflow certs`: what it issues says who the holder is, and nothing more."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from agentflow.certs import CertError, Kind, init_ca, issue, node_name_of

pytestmark = pytest.mark.unit


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_a_node_certificate_names_its_node_and_is_for_clients_only(tmp_path: Path) -> None:
    ca = init_ca(tmp_path)
    made = issue(tmp_path, Kind.NODE, "gpu-7")
    cert = load(made.cert)
    assert node_name_of(made.cert.read_bytes()) == "gpu-7"
    assert cert.issuer == load(ca.cert).subject
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    cert.verify_directly_issued_by(load(ca.cert))  # signed by the CA, or this raises


def test_server_and_admin_certificates_are_not_node_certificates(tmp_path: Path) -> None:
    init_ca(tmp_path)
    server = issue(tmp_path, Kind.SERVER, "cp.example", sans=("10.0.0.5", "cp"))
    admin = issue(tmp_path, Kind.ADMIN, "ops")
    assert node_name_of(server.cert.read_bytes()) is None and node_name_of(admin.cert.read_bytes()) is None
    names = load(server.cert).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(n.value) for n in names] == ["cp.example", "10.0.0.5", "cp"]


def test_keys_are_private_from_the_first_byte(tmp_path: Path) -> None:
    ca = init_ca(tmp_path)
    made = issue(tmp_path, Kind.NODE, "n1")
    for key in (ca.key, made.key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(made.cert.stat().st_mode) == 0o644


def test_refusals_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(CertError, match="no CA here; run `agentflow certs init --dir"):
        issue(tmp_path, Kind.NODE, "n1")
    init_ca(tmp_path)
    with pytest.raises(CertError, match="already holds a CA"):
        init_ca(tmp_path)
    with pytest.raises(CertError, match="is not a usable name"):
        issue(tmp_path, Kind.NODE, "../n1")
