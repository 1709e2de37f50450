"""The in-process wasmtime executor for agent ABI v1 (synchronous; no asyncio).

Typical use inside a worker process::

    engine = create_engine()
    EpochTicker(engine).start()
    cache = CompiledModuleCache(cache_dir)
    result = run_step(job, engine=engine, cache=cache)
"""

from agentflow.spec.quantity import format_bytes
from noded.sandbox.engine import (
    EPOCH_TICK_S,
    EpochTicker,
    create_engine,
    deadline_ticks,
    engine_config,
    engine_fingerprint,
    has_running_ticker,
)
from noded.sandbox.executor import (
    DEFAULT_MAX_STDERR_BYTES,
    DEFAULT_MAX_STDOUT_BYTES,
    SCRATCH_GUEST_PATH,
    ExecResult,
    StepJob,
    run_step,
)
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
from noded.sandbox.module_cache import CacheStats, CompiledModuleCache

__all__ = [
    "DEFAULT_MAX_STDERR_BYTES",
    "DEFAULT_MAX_STDOUT_BYTES",
    "DEFAULT_OPERATIONS",
    "EPOCH_TICK_S",
    "KNOWN_CAPABILITIES",
    "MAX_MESSAGE_BYTES",
    "SCRATCH_GUEST_PATH",
    "CacheStats",
    "CompiledModuleCache",
    "EpochTicker",
    "ExecResult",
    "HostCallContext",
    "HostCallError",
    "HostCallRefused",
    "HostCalls",
    "HostOperation",
    "StepJob",
    "create_engine",
    "deadline_ticks",
    "engine_config",
    "engine_fingerprint",
    "format_bytes",
    "has_running_ticker",
    "run_step",
]
