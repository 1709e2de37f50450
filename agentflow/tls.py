"""TLS for the gRPC links: the control plane's listener (mutual: every client shows a certificate
from the cluster's CA) and its clients (noded, the CLI, the tests).

A listener that is not on loopback must have TLS: `plaintext_problem` says so, naming the flags.
The server's certificate and the CA are read again on `ServerTLS.reload()` (SIGHUP) and apply
to the handshakes that follow; established streams are not dropped.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import grpc

log = logging.getLogger(__name__)

ENV_CA, ENV_CERT, ENV_KEY = "AGENTFLOW_TLS_CA", "AGENTFLOW_TLS_CERT", "AGENTFLOW_TLS_KEY"


class TLSError(Exception):
    """TLS settings that cannot be used; the text names the file or the flag."""


@dataclass(frozen=True, slots=True)
class TLSFiles:
    ca: Path
    cert: Path
    key: Path

    @classmethod
    def from_settings(cls, ca: Path | None, cert: Path | None, key: Path | None, *, flag: str) -> TLSFiles | None:
        """All three or none: `--tls-ca`, `--tls-cert` and `--tls-key` go together."""
        given = {"ca": ca, "cert": cert, "key": key}
        if not any(given.values()):
            return None
        missing = [f"{flag}-{name}" for name, path in given.items() if path is None]
        if missing:
            raise TLSError(f"{', '.join(missing)} missing: {flag}-ca, {flag}-cert and {flag}-key go together")
        assert ca is not None and cert is not None and key is not None
        return cls(ca, cert, key)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> TLSFiles | None:
        paths = [environ.get(name) for name in (ENV_CA, ENV_CERT, ENV_KEY)]
        if not any(paths):
            return None
        if not all(paths):
            raise TLSError(f"{ENV_CA}, {ENV_CERT} and {ENV_KEY} go together")
        return cls(*(Path(p) for p in paths if p))

    def read(self) -> tuple[bytes, bytes, bytes]:
        """(CA, certificate chain, key) as PEM bytes; TLSError naming an unreadable file."""
        out = []
        for path in (self.ca, self.cert, self.key):
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise TLSError(f"{path}: {exc.strerror or exc}") from None
            if b"-----BEGIN" not in data:
                raise TLSError(f"{path}: not a PEM file")
            out.append(data)
        return out[0], out[1], out[2]

    def channel_credentials(self) -> grpc.ChannelCredentials:
        ca, cert, key = self.read()
        return grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)


class ServerTLS:
    """Mutual TLS for a gRPC server, reloadable: `credentials()` once, `reload()` on SIGHUP."""

    def __init__(self, files: TLSFiles) -> None:
        self._files = files
        self._config = self._load()
        self._fresh = False

    def _load(self) -> grpc.ServerCertificateConfiguration:
        ca, cert, key = self._files.read()
        return grpc.ssl_server_certificate_configuration([(key, cert)], root_certificates=ca)

    def reload(self) -> None:
        """Read the files again; the next handshakes use them. A bad file keeps the old ones."""
        try:
            self._config = self._load()
        except TLSError as exc:
            log.error("cannot reload TLS certificates; the ones in force stay", extra={"error": str(exc)})
            return
        self._fresh = True
        log.info("TLS certificates reloaded", extra={"cert": str(self._files.cert)})

    def _fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """Called by gRPC before each handshake: a new configuration once after a reload."""
        if not self._fresh:
            return None
        self._fresh = False
        return self._config

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.dynamic_ssl_server_credentials(self._config, self._fetch, require_client_authentication=True)


def plaintext_problem(listen: str, *, flags: str) -> str | None:
    """Why `listen` may not be served without TLS (it is not loopback), or None."""
    host = listen.rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return None
    try:
        if ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:
        pass
    return f"{listen} is not a loopback address: plaintext is allowed on loopback only; set {flags}"


def peer_certificate(context: grpc.aio.ServicerContext) -> bytes | None:
    """The PEM of the client's verified certificate, or None (plaintext)."""
    pems = context.auth_context().get("x509_pem_cert")
    return pems[0] if pems else None


def peer_node(context: grpc.aio.ServicerContext) -> str | None:
    """The node a client's certificate speaks for, or None (plaintext, or not a node's)."""
    pem = peer_certificate(context)
    if pem is None:
        return None
    from agentflow.certs import node_name_of  # here: cryptography costs 10 MB, and noded never calls this

    return node_name_of(pem)
