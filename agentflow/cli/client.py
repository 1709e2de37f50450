"""The CLI's gRPC client: one wrapper that turns status codes into typed errors."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import grpc

from agentflow import rpc
from agentflow.tls import TLSError, TLSFiles
from agentflow.transport import MESSAGE_SIZE_OPTIONS
from agentflow.v1 import controlplane_pb2, controlplane_pb2_grpc, node_admin_pb2, node_admin_pb2_grpc, types_pb2

T = TypeVar("T")
CHUNK_SIZE = 1024 * 1024
CALL_TIMEOUT_S = 30.0
NODE_ADMIN_TIMEOUT_S = 15.0  # longer than noded waits for the control plane to confirm a drain


class ClientError(Exception):
    """Root of the CLI's client errors; `exit_code` is what the CLI exits with."""

    exit_code = 1


class BadTLS(ClientError):
    """The TLS files cannot be used (missing, unreadable, not PEM)."""

    exit_code = 2


class Unreachable(ClientError):
    """The control plane did not answer."""

    exit_code = 3


class Rejected(ClientError):
    """The control plane refused the request as invalid (INVALID_ARGUMENT)."""

    exit_code = 2


class NotFound(ClientError):
    """The named run, node or module does not exist."""


class Refused(ClientError):
    """Any other error status."""


def _translate(
    exc: grpc.RpcError, server: str, *, what: str = "control plane", timeout_is_unreachable: bool = True
) -> ClientError:
    """A typed error for a failed call. `timeout_is_unreachable=False` for servers that answer
    DEADLINE_EXCEEDED themselves (noded, when the control plane does not confirm in time)."""
    match rpc.translate(exc):
        case rpc.Unavailable(details=details):
            return Unreachable(f"{what} at {server} is unreachable ({details})")
        case rpc.DeadlineExceeded(details=details) if timeout_is_unreachable:
            return Unreachable(f"{what} at {server} is unreachable ({details})")
        case rpc.InvalidArgument(details=details):
            return Rejected(details or "invalid request")
        case rpc.NotFound(details=details):
            return NotFound(details or "not found")
        case error:
            return Refused(f"{error.code.name}: {error.details}")


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK_SIZE):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


class Client:
    """The control plane's admin API; over mutual TLS with `tls` (the CLI's --tls-* flags, or
    AGENTFLOW_TLS_CA, _CERT and _KEY), plaintext otherwise. Over TLS every call carries the
    bearer `token` (or AGENTFLOW_TOKEN)."""

    def __init__(self, server: str, *, tls: TLSFiles | None = None, token: str | None = None) -> None:
        self.server = server
        try:
            files = tls or TLSFiles.from_env(os.environ)
            credentials = None if files is None else files.channel_credentials()
        except TLSError as exc:
            raise BadTLS(f"tls: {exc}") from None
        token = token or os.environ.get("AGENTFLOW_TOKEN", "").strip()
        if credentials is not None and token:
            credentials = grpc.composite_channel_credentials(credentials, grpc.access_token_call_credentials(token))
        if credentials is None:
            self._channel = grpc.insecure_channel(server, options=MESSAGE_SIZE_OPTIONS)
        else:
            self._channel = grpc.secure_channel(server, credentials, options=MESSAGE_SIZE_OPTIONS)
        self._stub = controlplane_pb2_grpc.ControlPlaneStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, fn: Callable[..., T], request: Any, **kwargs: Any) -> T:
        try:
            return fn(request, timeout=CALL_TIMEOUT_S, wait_for_ready=False, **kwargs)
        except grpc.RpcError as exc:
            raise _translate(exc, self.server) from None

    def submit(
        self, *, workflow_yaml: str, source: str, input_json: str, module_digests: dict[str, str]
    ) -> controlplane_pb2.SubmitWorkflowResponse:
        return self._call(
            self._stub.SubmitWorkflow,
            controlplane_pb2.SubmitWorkflowRequest(
                workflow_yaml=workflow_yaml, source=source, input_json=input_json, module_digests=module_digests
            ),
        )

    def get_run(self, run_id: str) -> types_pb2.Run:
        return self._call(self._stub.GetRun, controlplane_pb2.GetRunRequest(run_id=run_id))

    def list_runs(self, *, limit: int = 0, workflow_name: str = "") -> list[types_pb2.Run]:
        request = controlplane_pb2.ListRunsRequest(limit=limit, workflow_name=workflow_name)
        return list(self._call(self._stub.ListRuns, request).runs)

    def watch_run(self, run_id: str) -> Iterator[controlplane_pb2.WatchRunResponse]:
        try:
            yield from self._stub.WatchRun(controlplane_pb2.WatchRunRequest(run_id=run_id))
        except grpc.RpcError as exc:
            raise _translate(exc, self.server) from None

    def stream_events(self, request: controlplane_pb2.StreamEventsRequest) -> Iterator[types_pb2.Event]:
        try:
            yield from self._stub.StreamEvents(request)
        except grpc.RpcError as exc:
            raise _translate(exc, self.server) from None

    def cancel_run(self, run_id: str) -> types_pb2.Run:
        return self._call(self._stub.CancelRun, controlplane_pb2.CancelRunRequest(run_id=run_id))

    def retry_run(self, run_id: str) -> types_pb2.Run:
        return self._call(self._stub.RetryRun, controlplane_pb2.RetryRunRequest(run_id=run_id))

    def list_nodes(self) -> list[types_pb2.Node]:
        return list(self._call(self._stub.ListNodes, controlplane_pb2.ListNodesRequest()).nodes)

    def get_node(self, name: str) -> types_pb2.Node:
        return self._call(self._stub.GetNode, controlplane_pb2.GetNodeRequest(name=name))

    def drain_node(self, name: str, *, deadline: timedelta | None) -> types_pb2.Node:
        request = controlplane_pb2.DrainNodeRequest(name=name)
        if deadline is not None:
            request.deadline.FromTimedelta(deadline)
        return self._call(self._stub.DrainNode, request)

    def undrain_node(self, name: str) -> types_pb2.Node:
        return self._call(self._stub.UndrainNode, controlplane_pb2.UndrainNodeRequest(name=name))

    def create_token(
        self, *, role: types_pb2.Role, ttl: timedelta | None, single_use: bool, description: str
    ) -> controlplane_pb2.CreateTokenResponse:
        request = controlplane_pb2.CreateTokenRequest(role=role, single_use=single_use, description=description)
        if ttl is not None:
            request.ttl.FromTimedelta(ttl)
        return self._call(self._stub.CreateToken, request)

    def list_tokens(self) -> list[types_pb2.Token]:
        return list(self._call(self._stub.ListTokens, controlplane_pb2.ListTokensRequest()).tokens)

    def revoke_token(self, token_id: str) -> types_pb2.Token:
        return self._call(self._stub.RevokeToken, controlplane_pb2.RevokeTokenRequest(id=token_id))

    def list_modules(self) -> list[types_pb2.Module]:
        return list(self._call(self._stub.ListModules, controlplane_pb2.ListModulesRequest()).modules)

    def push_module(self, path: Path) -> types_pb2.Module:
        digest = file_digest(path)

        def requests() -> Iterator[controlplane_pb2.PushModuleRequest]:
            with path.open("rb") as f:
                first = True
                while True:
                    chunk = f.read(CHUNK_SIZE)
                    if not chunk and not first:
                        return
                    if first:
                        yield controlplane_pb2.PushModuleRequest(name=path.name, expected_digest=digest, chunk=chunk)
                        first = False
                    else:
                        yield controlplane_pb2.PushModuleRequest(chunk=chunk)

        return self._call(self._stub.PushModule, requests())


class NodeAdminClient:
    """The local admin API of one noded, on its unix socket."""

    def __init__(self, socket_path: Path) -> None:
        self.address = f"unix:{socket_path}"
        self._channel = grpc.insecure_channel(self.address)
        self._stub = node_admin_pb2_grpc.NodeAdminStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> NodeAdminClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, fn: Callable[..., T], request: Any) -> T:
        try:
            return fn(request, timeout=NODE_ADMIN_TIMEOUT_S, wait_for_ready=False)
        except grpc.RpcError as exc:
            raise _translate(exc, self.address, what="noded", timeout_is_unreachable=False) from None

    def status(self) -> node_admin_pb2.NodeStatusReport:
        return self._call(self._stub.GetStatus, node_admin_pb2.GetNodeStatusRequest())

    def drain(self, *, deadline: timedelta | None) -> node_admin_pb2.NodeStatusReport:
        request = node_admin_pb2.DrainSelfRequest()
        if deadline is not None:
            request.deadline.FromTimedelta(deadline)
        return self._call(self._stub.Drain, request)

    def undrain(self) -> node_admin_pb2.NodeStatusReport:
        return self._call(self._stub.Undrain, node_admin_pb2.UndrainSelfRequest())
