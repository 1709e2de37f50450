"""StepJob validation and result formatting (no wasm)."""

from __future__ import annotations

from typing import Any

import pytest

from noded.sandbox import StepJob, format_bytes

pytestmark = pytest.mark.unit

MiB = 1024 * 1024


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"timeout_s": 0}, "timeout_s"),
        ({"memory_limit_bytes": 0}, "memory_limit_bytes"),
        ({"capabilities": frozenset({"fs.write"})}, "unknown capabilities: fs.write"),
        ({"allowed_paths": ("relative/dir",)}, "must be absolute"),
        ({"max_stdout_bytes": 0}, "max_stdout_bytes"),
    ],
    ids=["timeout", "memory", "capability", "relative-path", "stdout-cap"],
)
def test_step_job_validation(overrides: dict[str, Any], message: str) -> None:
    fields: dict[str, Any] = {
        "digest": "ab" * 32,
        "module_path": "/m.wasm",
        "stdin": b"",
        "timeout_s": 1.0,
        "memory_limit_bytes": MiB,
        "scratch_dir": "/tmp",
    }
    with pytest.raises(ValueError, match=message):
        StepJob(**(fields | overrides))


@pytest.mark.parametrize(
    ("n", "text"),
    [(64 * MiB, "64Mi"), (1 << 30, "1Gi"), (512 * 1024, "512Ki"), (16 * MiB + 64 * 1024, "16.1Mi"), (100, "100B")],
    ids=str,
)
def test_format_bytes(n: int, text: str) -> None:
    assert format_bytes(n) == text
