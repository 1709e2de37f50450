"""`StepLimits` validation and its CFS quota."""

from __future__ import annotations

import pytest

from noded.cgroups import CPU_PERIOD_US, StepLimits

pytestmark = pytest.mark.unit

MiB = 1024 * 1024


@pytest.mark.parametrize(
    ("cpu_millis", "quota"),
    [(0, None), (10, 1_000), (100, 10_000), (250, 25_000), (1000, 100_000), (2500, 250_000)],
    ids=["no-quota", "minimum", "tenth-core", "quarter-core", "one-core", "two-and-a-half-cores"],
)
def test_cpu_quota(cpu_millis: int, quota: int | None) -> None:
    assert StepLimits(memory_bytes=MiB, cpu_millis=cpu_millis, pids_max=1).cpu_quota_us == quota
    assert CPU_PERIOD_US == 100_000


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"memory_bytes": 0, "cpu_millis": 0, "pids_max": 1}, "memory_bytes"),
        ({"memory_bytes": MiB, "cpu_millis": -1, "pids_max": 1}, "cpu_millis"),
        ({"memory_bytes": MiB, "cpu_millis": 5, "pids_max": 1}, "cpu_millis"),
        ({"memory_bytes": MiB, "cpu_millis": 0, "pids_max": 0}, "pids_max"),
    ],
    ids=["no-memory", "negative-cpu", "cpu-below-kernel-minimum", "no-pids"],
)
def test_invalid_limits_name_the_field(fields: dict[str, int], field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field}: "):
        StepLimits(**fields)
