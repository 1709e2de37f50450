"""The wasmtime sandbox for agent ABI v1 (synchronous; no asyncio).

This package's top level is what noded's main process needs and imports without wasmtime: a
step attempt and its result (`job`), the host calls and their errors (`hostcalls`). The
executor and its parts import wasmtime and are imported by the worker from their modules::

    from noded.sandbox.engine import EpochTicker, create_engine
    from noded.sandbox.executor import run_step
    from noded.sandbox.module_cache import CompiledModuleCache

    engine = create_engine()
    EpochTicker(engine).start()
    cache = CompiledModuleCache(cache_dir)
    result = run_step(job, engine=engine, cache=cache)
"""

from agentflow.spec.quantity import format_bytes
from noded.sandbox.hostcalls import (
    DEFAULT_OPERATIONS,
    KNOWN_CAPABILITIES,
    MAX_MESSAGE_BYTES,
    HostCallContext,
    HostCallError,
    HostCallRefused,
    HostCalls,
    HostOperation,
)
from noded.sandbox.job import DEFAULT_MAX_STDERR_BYTES, DEFAULT_MAX_STDOUT_BYTES, ExecResult, StepJob

__all__ = [
    "DEFAULT_MAX_STDERR_BYTES",
    "DEFAULT_MAX_STDOUT_BYTES",
    "DEFAULT_OPERATIONS",
    "KNOWN_CAPABILITIES",
    "MAX_MESSAGE_BYTES",
    "ExecResult",
    "HostCallContext",
    "HostCallError",
    "HostCallRefused",
    "HostCalls",
    "HostOperation",
    "StepJob",
    "format_bytes",
]
