"""Who may call what, when the control plane serves mutual TLS.

Every client shows a certificate from the cluster's CA (the handshake checks that). Then: the
NodeGateway service takes node certificates only, and a node's certificate speaks for its own
node only (Register, Connect); every other service refuses node certificates, so a node that was
taken over cannot drain the fleet or read runs.
"""

from __future__ import annotations

import grpc

from agentflow.tls import peer_node
from agentflow.v1 import node_pb2
from controlplane.errors import PermissionDenied

NODE_GATEWAY = "/" + node_pb2.DESCRIPTOR.services_by_name["NodeGateway"].full_name + "/"


def peer_policy(method: str, context: grpc.aio.ServicerContext) -> None:
    """The interceptor's guard (see `agentflow.rpc.server.Guard`) with TLS on."""
    node = peer_node(context)
    if method.startswith(NODE_GATEWAY):
        if node is None:
            raise PermissionDenied(
                f"{method} takes node certificates only (agentflow certs issue --node NAME); this one is not a node's"
            )
    elif node is not None:
        raise PermissionDenied(f'a node certificate (node "{node}") cannot call {method}')


def check_node_name(context: grpc.aio.ServicerContext, name: str, *, tls: bool) -> None:
    """With TLS, the caller's certificate must be node `name`'s."""
    if not tls:
        return
    node = peer_node(context)
    if node != name:
        raise PermissionDenied(f'this certificate is node "{node}"\'s; it cannot act as node "{name}"')
