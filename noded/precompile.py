"""Compiling components ahead of their steps, in noded, outside any step's cgroup and timeout.

A core module compiles in milliseconds inside the worker; a Python component (18 MB, an
interpreter inside) takes seconds, which would count against the first step's CPU share and
wall time. So noded compiles a component into the shared compiled-module cache the moment it
is on disk, once per digest (concurrent steps wait for the one compile), in a thread; the
worker then loads it in milliseconds. The engine has the workers' configuration, so the
cached file is the one they look for.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from agentflow.wasm_check import is_component

if TYPE_CHECKING:
    import wasmtime

    from noded.sandbox.module_cache import CompiledModuleCache

log = logging.getLogger(__name__)


class Precompiler:
    def __init__(self, cache_dir: Path) -> None:
        self._cache_dir = cache_dir
        self._cache: CompiledModuleCache | None = None
        self._engine: wasmtime.Engine | None = None
        self._locks: dict[str, asyncio.Lock] = {}
        self.compiled = 0

    async def ensure(self, module_path: Path, digest: str) -> None:
        """Compile `module_path` into the cache if it is a component not compiled yet.
        A component that does not compile is left to the worker, which fails the step with why."""
        with module_path.open("rb") as f:
            if not is_component(f.read(8)):
                return
        import wasmtime  # here, on the first component: a node that runs none never loads an engine

        from noded.sandbox.engine import create_engine
        from noded.sandbox.module_cache import CompiledModuleCache

        if self._cache is None or self._engine is None:
            self._cache, self._engine = CompiledModuleCache(self._cache_dir), create_engine()
        cache, engine = self._cache, self._engine
        if cache.path_for(digest, is_component=True).exists():
            return
        async with self._locks.setdefault(digest, asyncio.Lock()):
            if cache.path_for(digest, is_component=True).exists():
                return
            started = time.monotonic()
            try:
                await asyncio.to_thread(cache.load, engine, module_path, digest)
            except wasmtime.WasmtimeError as exc:
                log.warning("component does not compile", extra={"digest": digest, "error": str(exc)[:500]})
                return
            finally:
                self._locks.pop(digest, None)
            self.compiled += 1
            log.info("compiled a component ahead of its step",
                     extra={"digest": digest, "seconds": round(time.monotonic() - started, 3)})  # fmt: skip
