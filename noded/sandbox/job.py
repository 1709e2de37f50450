"""A step attempt as the worker receives it (`StepJob`) and what comes back (`ExecResult`):
plain data, no wasmtime, so noded's main process and the worker protocol import them freely."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from agentflow.vocabulary import FailureKind
from noded.sandbox.hostcalls import KNOWN_CAPABILITIES

DEFAULT_MAX_STDOUT_BYTES = 1024 * 1024
DEFAULT_MAX_STDERR_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class StepJob:
    """Everything a worker needs to run one step attempt."""

    digest: str
    module_path: str
    stdin: bytes
    timeout_s: float
    memory_limit_bytes: int
    scratch_dir: str
    allowed_paths: tuple[str, ...] = ()
    writable_paths: tuple[str, ...] = ()
    capabilities: frozenset[str] = field(default_factory=frozenset)
    max_stdout_bytes: int = DEFAULT_MAX_STDOUT_BYTES
    max_stderr_bytes: int = DEFAULT_MAX_STDERR_BYTES

    def __post_init__(self) -> None:
        if not self.timeout_s > 0:
            raise ValueError(f"timeout_s must be positive, got {self.timeout_s}")
        if self.memory_limit_bytes <= 0:
            raise ValueError(f"memory_limit_bytes must be positive, got {self.memory_limit_bytes}")
        if self.max_stdout_bytes <= 0 or self.max_stderr_bytes <= 0:
            raise ValueError("max_stdout_bytes and max_stderr_bytes must be positive")
        if not isinstance(self.capabilities, frozenset):
            raise TypeError("capabilities must be a frozenset")
        unknown = self.capabilities - KNOWN_CAPABILITIES
        if unknown:
            raise ValueError(f"unknown capabilities: {', '.join(sorted(unknown))}")
        for path in (*self.allowed_paths, *self.writable_paths):
            if not os.path.isabs(path):
                raise ValueError(f"allowed and writable paths must be absolute, got {path!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecResult:
    """The outcome of one step attempt. ``failure_kind`` is None exactly on success."""

    exit_code: int | None
    trap: str | None
    failure_kind: FailureKind | None
    error: str
    output_json: str | None
    stderr: str
    duration_s: float
    denied_host_calls: int = 0
    cpu_s: float = 0.0  # CPU time of the thread that ran the guest (host calls it made included)
    memory_bytes: int = 0  # the guest's linear memory at the end: its peak (wasm memory never shrinks)
    host_calls: int = 0  # every host call the guest made, refused ones included

    @property
    def ok(self) -> bool:
        return self.failure_kind is None
