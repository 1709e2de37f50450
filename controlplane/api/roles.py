"""The role each RPC needs: one table, checked in one place (`controlplane.api.identity`).

`viewer` reads; `operator` also runs and changes workflows, modules and nodes; `admin` also
manages tokens. Anything a table does not name needs `admin`, so a new RPC is closed until it
is placed here. NodeGateway calls are the nodes' own (certificate and join token), and health
and reflection are open to any client the TLS handshake let in.
"""

from __future__ import annotations

from agentflow.vocabulary import Role

CONTROL_PLANE = "/agentflow.v1.ControlPlane/"
OPEN_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.v1alpha.ServerReflection/",
                 "/grpc.reflection.v1.ServerReflection/")  # fmt: skip

REQUIRED_ROLE: dict[str, Role] = {
    CONTROL_PLANE + name: role
    for role, names in (
        (Role.VIEWER, ("GetRun", "ListRuns", "WatchRun", "ListNodes", "GetNode", "ListModules", "StreamEvents")),
        (Role.OPERATOR, ("SubmitWorkflow", "CancelRun", "RetryRun", "DrainNode", "UndrainNode", "PushModule")),
        (Role.ADMIN, ("CreateToken", "ListTokens", "RevokeToken")),
    )
    for name in names
}


def required_role(method: str) -> Role | None:
    """The role `method` needs; None for the open services."""
    if method.startswith(OPEN_PREFIXES):
        return None
    return REQUIRED_ROLE.get(method, Role.ADMIN)
