"""Worker processes that run agent steps, and the warm pool noded keeps of them.

Each worker (``python -m noded.workers.worker_main``) owns one wasmtime engine and runs one
step at a time with ``noded.sandbox.run_step``; the pool talks to it over its stdin/stdout
with length-prefixed JSON frames (``noded.workers.protocol``).
"""

from noded.workers.errors import (
    PoolClosed,
    ProtocolError,
    StepCancelled,
    WorkerCrashed,
    WorkerError,
    WorkerStartError,
)
from noded.workers.pool import (
    DEFAULT_GRACE_S,
    DEFAULT_GUARD_S,
    DEFAULT_START_TIMEOUT_S,
    BeforeJob,
    HostHandler,
    OnEnd,
    OnStart,
    PoolState,
    WorkerPool,
)

__all__ = [
    "DEFAULT_GRACE_S",
    "DEFAULT_GUARD_S",
    "DEFAULT_START_TIMEOUT_S",
    "BeforeJob",
    "HostHandler",
    "OnEnd",
    "OnStart",
    "PoolClosed",
    "PoolState",
    "ProtocolError",
    "StepCancelled",
    "WorkerCrashed",
    "WorkerError",
    "WorkerPool",
    "WorkerStartError",
]
