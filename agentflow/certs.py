"""A small certificate authority for AgentFlow's mTLS: `agentflow certs init` and `certs issue`.

Identities follow the kubelet's convention. A node's certificate says `CN=node:<name>`,
`O=agentflow:nodes` and is for client authentication only: the control plane lets it register as
`<name>` and as nothing else. A server's certificate (the control plane) carries the host names
and addresses nodes dial as subject alternative names. An admin client certificate
(`CN=admin:<name>`, `O=agentflow:admins`) lets the CLI and grpcurl make the TLS handshake;
what it may do is the role of its bearer token.

Keys are ECDSA P-256, written 0600; certificates are PEM. Everything here is synchronous.
"""

from __future__ import annotations

import datetime as dt
import enum
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_CERT = "ca.pem"
CA_KEY = "ca-key.pem"
CA_VALIDITY = dt.timedelta(days=3650)
LEAF_VALIDITY = dt.timedelta(days=365)
NODE_PREFIX = "node:"
ADMIN_PREFIX = "admin:"
NODES_ORG = "agentflow:nodes"
ADMINS_ORG = "agentflow:admins"


class CertError(Exception):
    """A certificate cannot be made or read; the text says which file and why."""


class Kind(enum.StrEnum):
    NODE = "node"
    SERVER = "server"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Issued:
    cert: Path
    key: Path


def init_ca(directory: Path, *, name: str = "AgentFlow CA", now: dt.datetime | None = None) -> Issued:
    """A new CA in `directory` (ca.pem, ca-key.pem); refuses to overwrite one."""
    cert_path, key_path = directory / CA_CERT, directory / CA_KEY
    if cert_path.exists() or key_path.exists():
        raise CertError(f"{directory} already holds a CA ({CA_CERT}); remove it first to start over")
    now = now or dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage("digital_signature", "key_cert_sign", "crl_sign"), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    _write(key_path, _key_pem(key), 0o600)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return Issued(cert=cert_path, key=key_path)


def issue(
    directory: Path,
    kind: Kind,
    name: str,
    *,
    sans: tuple[str, ...] = (),
    validity: dt.timedelta = LEAF_VALIDITY,
    now: dt.datetime | None = None,
) -> Issued:
    """A certificate and key signed by the CA in `directory`, as `<kind>-<name>.pem` and
    `<kind>-<name>-key.pem` there. A server's `sans` are DNS names or IP addresses (its name is
    one too)."""
    if not name or "/" in name or name.startswith("."):
        raise CertError(f"{name!r} is not a usable name")
    ca_cert, ca_key = _load_ca(directory)
    now = now or dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(_subject(kind, name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage("digital_signature", "key_agreement"), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH] if kind is Kind.SERVER else [ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    if kind is Kind.SERVER:
        builder = builder.add_extension(x509.SubjectAlternativeName(_alt_names((name, *sans))), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    stem = f"{kind.value}-{name}"
    cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}-key.pem"
    _write(key_path, _key_pem(key), 0o600)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return Issued(cert=cert_path, key=key_path)


def node_name_of(cert_pem: bytes) -> str | None:
    """The node a (verified) peer certificate speaks for, or None if it is not a node's."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    orgs = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    names = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    if orgs != [NODES_ORG] or len(names) != 1:
        return None
    common_name = str(names[0])
    return common_name.removeprefix(NODE_PREFIX) if common_name.startswith(NODE_PREFIX) else None


def _subject(kind: Kind, name: str) -> x509.Name:
    match kind:
        case Kind.NODE:
            attrs = [(NameOID.ORGANIZATION_NAME, NODES_ORG), (NameOID.COMMON_NAME, NODE_PREFIX + name)]
        case Kind.ADMIN:
            attrs = [(NameOID.ORGANIZATION_NAME, ADMINS_ORG), (NameOID.COMMON_NAME, ADMIN_PREFIX + name)]
        case Kind.SERVER:
            attrs = [(NameOID.COMMON_NAME, name)]
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in attrs])


def _key_usage(*granted: str) -> x509.KeyUsage:
    flags = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment", "key_agreement",
             "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")  # fmt: skip
    return x509.KeyUsage(**{flag: flag in granted for flag in flags})


def _alt_names(names: tuple[str, ...]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for name in dict.fromkeys(names):
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            out.append(x509.DNSName(name))
    return out


def _load_ca(directory: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert_path, key_path = directory / CA_CERT, directory / CA_KEY
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except FileNotFoundError as exc:
        raise CertError(f"{exc.filename}: no CA here; run `agentflow certs init --dir {directory}` first") from None
    except ValueError as exc:
        raise CertError(f"{directory}: the CA files cannot be read: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CertError(f"{key_path}: not an ECDSA key")
    return cert, key


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write(path: Path, data: bytes, mode: int) -> None:
    """Atomically, with `mode` from the start (a key is never readable by others, not even briefly)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)
    os.replace(tmp, path)
