"""Building what noded runs, for the node tier's tests: the stdin document, a StepJob for a
module file, and the digest of a module file."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from noded.sandbox import StepJob

MiB = 1024 * 1024


def digest_of(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def step_stdin(
    input: Any = None,
    upstream: dict[str, Any] | None = None,
    *,
    run: str = "run-1",
    name: str = "step",
    attempt: int = 1,
) -> bytes:
    """The ABI v1 stdin document the control plane sends."""
    doc = {
        "input": {} if input is None else input,
        "upstream": upstream or {},
        "step": {"run": run, "name": name, "attempt": attempt},
    }
    return json.dumps(doc).encode()


def job_for(path: Path, stdin: bytes = b"{}", *, scratch: Path, **overrides: Any) -> StepJob:
    """A StepJob for the module at `path` (10 s, 64 MiB unless overridden)."""
    fields: dict[str, Any] = {
        "digest": digest_of(path).removeprefix("sha256:"),
        "module_path": str(path),
        "stdin": stdin,
        "timeout_s": 10.0,
        "memory_limit_bytes": 64 * MiB,
        "scratch_dir": str(scratch),
    }
    fields.update(overrides)
    return StepJob(**fields)
