"""`ResourceUsage` on the wire: the one conversion both edges (noded's and the control plane's) use."""

from __future__ import annotations

import math

from agentflow import wire
from agentflow.usage import ResourceUsage
from agentflow.v1 import types_pb2
from agentflow.vocabulary import ResourceLimit


def usage_to_pb(usage: ResourceUsage) -> types_pb2.ResourceUsage:
    return types_pb2.ResourceUsage(
        cpu_seconds=usage.cpu_seconds,
        peak_memory_bytes=usage.peak_memory_bytes,
        wall_seconds=usage.wall_seconds,
        fetched_bytes=usage.fetched_bytes,
        host_calls=usage.host_calls,
        limits_hit=[wire.to_pb(limit, types_pb2.ResourceLimit) for limit in usage.limits_hit],
    )


def usage_from_pb(message: types_pb2.ResourceUsage, *, field: str) -> ResourceUsage:
    """InvalidField (naming `field` and the figure) for a negative or non-finite figure, or an
    unknown limit."""
    for name in ("cpu_seconds", "wall_seconds", "peak_memory_bytes", "fetched_bytes", "host_calls"):
        value = getattr(message, name)
        if not math.isfinite(value) or value < 0:
            raise wire.InvalidField(f"{field}.{name}: {value} is not a non-negative number")
    return ResourceUsage(
        cpu_seconds=message.cpu_seconds,
        peak_memory_bytes=message.peak_memory_bytes,
        wall_seconds=message.wall_seconds,
        fetched_bytes=message.fetched_bytes,
        host_calls=message.host_calls,
        limits_hit=tuple(
            wire.from_pb(ResourceLimit, types_pb2.ResourceLimit, n, field=f"{field}.limits_hit[{i}]")
            for i, n in enumerate(message.limits_hit)
        ),
    )
