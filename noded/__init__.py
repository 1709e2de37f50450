"""The node daemon: runs agent steps as WebAssembly in worker processes."""

import os

# The daemon starts worker processes while gRPC threads run; gRPC's fork handlers are of no use
# to a fork+exec and only log warnings. This must be set before grpc is first imported.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
