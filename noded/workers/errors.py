"""Errors raised by the worker pool. Step failures are results, not exceptions."""

from __future__ import annotations


class WorkerError(Exception):
    """Root of the worker-pool errors."""


class ProtocolError(WorkerError):
    """A frame on a worker pipe is malformed, oversized or unexpected."""


class WorkerStartError(WorkerError):
    """A worker process could not be started or did not report ready in time."""


class WorkerCrashed(WorkerError):
    """A worker reported a host-side error while running a job (not a step failure)."""


class PoolClosed(WorkerError):
    """The pool is shut down, or shut down while the job was waiting or running."""


class StepCancelled(WorkerError):
    """The job was cancelled with ``WorkerPool.cancel``; its worker was killed."""

    def __init__(self, key: str) -> None:
        super().__init__(f"step {key} was cancelled")
        self.key = key
