"""Publishing the control plane's committed events to NATS JetStream, from the events table."""

from controlplane.publish.envelope import STREAMS, StreamSpec, envelope, stream_for
from controlplane.publish.jetstream import NATS_SINK, JetStreamPublisher

__all__ = ["NATS_SINK", "STREAMS", "JetStreamPublisher", "StreamSpec", "envelope", "stream_for"]
