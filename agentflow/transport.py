"""gRPC channel and server settings both ends of the wire must agree on."""

from __future__ import annotations

# Assignments carry a step's whole stdin document (its dependencies' outputs) and results carry
# its output, so messages go well past gRPC's 4 MiB default.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024

MESSAGE_SIZE_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
)

NODE_ID_METADATA = "agentflow-node-id"
"""gRPC metadata key naming the node on its Connect stream (the id Register answered)."""

BATCHES_METADATA = "agentflow-batches"
"""Connect metadata (the node's request metadata, the control plane's initial response metadata)
saying, with the value "1", that its sender reads batch messages (see `agentflow.stream_batch`)."""
