"""Who may call what, when the control plane serves mutual TLS.

Every client shows a certificate from the cluster's CA (the handshake checks that). Then: the
NodeGateway service takes node certificates only, and a node's certificate speaks for its own
node only (Register, Connect); every other service refuses node certificates, so a node that was
taken over cannot drain the fleet or read runs; and each ControlPlane call needs a bearer token
(`authorization: Bearer aft_…`) whose role covers what `controlplane.api.roles` asks for it.
"""

from __future__ import annotations

import grpc

from agentflow.tls import peer_node
from agentflow.v1 import node_pb2
from controlplane.api.roles import required_role
from controlplane.engine.access import Tokens
from controlplane.errors import PermissionDenied, Unauthenticated

NODE_GATEWAY = "/" + node_pb2.DESCRIPTOR.services_by_name["NodeGateway"].full_name + "/"


AUTHORIZATION = "authorization"
BEARER = "bearer "


class AccessPolicy:
    """The interceptor's guard (see `agentflow.rpc.server.Guard`) with TLS on."""

    def __init__(self, tokens: Tokens) -> None:
        self._tokens = tokens

    def __call__(self, method: str, context: grpc.aio.ServicerContext) -> None:
        node = peer_node(context)
        if method.startswith(NODE_GATEWAY):
            if node is None:
                raise PermissionDenied(
                    f"{method} takes node certificates only (agentflow certs issue --node NAME); "
                    "this one is not a node's"
                )
            return
        if node is not None:
            raise PermissionDenied(f'a node certificate (node "{node}") cannot call {method}')
        required = required_role(method)
        if required is None:
            return
        name = method.rsplit("/", 1)[-1]
        token = bearer_token(context)
        if token is None:
            raise Unauthenticated(f"{name} needs a bearer token: set AGENTFLOW_TOKEN or --token-file")
        record = self._tokens.authenticate(token, what=name)
        if not record.role.covers(required):
            raise PermissionDenied(
                f"{name} needs the {required.value} role; token {record.id} has the {record.role.value} role"
            )


def bearer_token(context: grpc.aio.ServicerContext) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == AUTHORIZATION and isinstance(value, str) and value.lower().startswith(BEARER):
            return value[len(BEARER) :].strip()
    return None


def check_node_name(context: grpc.aio.ServicerContext, name: str, *, tls: bool) -> None:
    """With TLS, the caller's certificate must be node `name`'s."""
    if not tls:
        return
    node = peer_node(context)
    if node != name:
        raise PermissionDenied(f'this certificate is node "{node}"\'s; it cannot act as node "{name}"')
