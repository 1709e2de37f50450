"""What one step attempt used, and which of its limits it ran into.

The node measures an attempt (`noded.runner`): CPU seconds and peak memory from the step's cgroup
where it has one (in the worker otherwise: the step thread's CPU time, the guest's linear memory),
wall time from assignment to result, the bytes `http.fetch` brought in and the host calls the
guest made. The control plane stores it with the step (`steps.usage`), shows it in `agentflow
status`, and exports it as `agentflow_agent_resource_usage{workflow,agent,resource}`.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any

from agentflow.vocabulary import ResourceLimit


class UsageResource(enum.StrEnum):
    """The `resource` label of `agentflow_agent_resource_usage`, and the keys of the stored form."""

    CPU_SECONDS = "cpu_seconds"
    PEAK_MEMORY_BYTES = "peak_memory_bytes"
    WALL_SECONDS = "wall_seconds"
    FETCHED_BYTES = "fetched_bytes"
    HOST_CALLS = "host_calls"


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourceUsage:
    cpu_seconds: float = 0.0
    peak_memory_bytes: int = 0
    wall_seconds: float = 0.0
    fetched_bytes: int = 0
    host_calls: int = 0
    limits_hit: tuple[ResourceLimit, ...] = ()  # in the order they were hit; the fatal one last

    def figures(self) -> dict[UsageResource, float]:
        return {
            UsageResource.CPU_SECONDS: self.cpu_seconds,
            UsageResource.PEAK_MEMORY_BYTES: float(self.peak_memory_bytes),
            UsageResource.WALL_SECONDS: self.wall_seconds,
            UsageResource.FETCHED_BYTES: float(self.fetched_bytes),
            UsageResource.HOST_CALLS: float(self.host_calls),
        }

    def to_dict(self) -> dict[str, Any]:
        """The stored and `--json` form: the figures by `UsageResource`, and `limits_hit`."""
        return {
            UsageResource.CPU_SECONDS: round(self.cpu_seconds, 6),
            UsageResource.PEAK_MEMORY_BYTES: self.peak_memory_bytes,
            UsageResource.WALL_SECONDS: round(self.wall_seconds, 6),
            UsageResource.FETCHED_BYTES: self.fetched_bytes,
            UsageResource.HOST_CALLS: self.host_calls,
            "limits_hit": [limit.value for limit in self.limits_hit],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ResourceUsage:
        return cls(
            cpu_seconds=float(data.get(UsageResource.CPU_SECONDS, 0.0)),
            peak_memory_bytes=int(data.get(UsageResource.PEAK_MEMORY_BYTES, 0)),
            wall_seconds=float(data.get(UsageResource.WALL_SECONDS, 0.0)),
            fetched_bytes=int(data.get(UsageResource.FETCHED_BYTES, 0)),
            host_calls=int(data.get(UsageResource.HOST_CALLS, 0)),
            limits_hit=tuple(ResourceLimit(v) for v in data.get("limits_hit", ())),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> ResourceUsage:
        """The stored form back; '' (a step no attempt has finished yet) is no usage."""
        return cls.from_dict(json.loads(text)) if text else NO_USAGE


NO_USAGE = ResourceUsage()
