"""Compiled-module cache: compile a module once per node, load it in under a millisecond.

``Module.serialize()`` output is written to ``<dir>/<digest>-<fingerprint hash>.cwasm``.
Files are written to a temporary name and renamed into place, so workers sharing the
directory never see a partial file; two workers compiling the same module at once both
succeed and the last rename wins. A file that fails to deserialize (corrupt, truncated, or
from another engine build) is deleted and the module recompiled.

Deserializing runs native code from the file without validation: the directory must be
writable by noded alone.

A small in-process LRU of loaded ``wasmtime.Module`` objects sits in front of the files,
since a worker process runs the same few modules over and over.

Components (the Python agents' form) are cached the same way, as ``.component.cwasm`` files:
compiling one takes seconds, loading it milliseconds.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import wasmtime
from wasmtime import component

from agentflow.wasm_check import is_component
from noded.sandbox.engine import engine_fingerprint
from noded.sandbox.linking import ModuleLinker

Compiled = wasmtime.Module | component.Component

log = logging.getLogger(__name__)

DEFAULT_MEMORY_ENTRIES = 32
_DIGEST_RE = re.compile(r"^(?:sha256:)?[0-9a-fA-F]{16,128}$")


@dataclass(slots=True)
class CacheStats:
    """Where loads were served from (counters since the cache was created)."""

    memory_hits: int = 0
    disk_hits: int = 0
    compiled: int = 0
    corrupt_recovered: int = 0


class CompiledModuleCache:
    """Loads modules by content digest through an in-memory LRU and a directory of compiled files."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        fingerprint: str | None = None,
        memory_entries: int = DEFAULT_MEMORY_ENTRIES,
    ) -> None:
        self._dir = Path(directory)
        self._dir.mkdir(parents=True, exist_ok=True)
        self._fingerprint = fingerprint or engine_fingerprint()
        self._key_suffix = hashlib.sha256(self._fingerprint.encode()).hexdigest()[:16]
        self._memory_entries = memory_entries
        # Modules belong to the engine that compiled them: one LRU per live engine.
        self._memory: weakref.WeakKeyDictionary[wasmtime.Engine, OrderedDict[str, Compiled]] = (
            weakref.WeakKeyDictionary()
        )
        self._linkers: weakref.WeakKeyDictionary[wasmtime.Engine, ModuleLinker] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()
        self.stats = CacheStats()

    def linker(self, engine: wasmtime.Engine) -> ModuleLinker:
        """The linker that instantiates this cache's modules of `engine` (made on first use)."""
        with self._lock:
            found = self._linkers.get(engine)
            if found is None:
                found = self._linkers[engine] = ModuleLinker(engine)
            return found

    @property
    def directory(self) -> Path:
        return self._dir

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    def path_for(self, digest: str, *, is_component: bool = False) -> Path:
        """The compiled file for ``digest`` under this cache's engine fingerprint."""
        if not _DIGEST_RE.match(digest):
            raise ValueError(f"invalid module digest {digest!r}: expected hex sha256")
        name = digest.removeprefix("sha256:").lower()
        kind = ".component" if is_component else ""
        return self._dir / f"{name}-{self._key_suffix}{kind}.cwasm"

    def load(self, engine: wasmtime.Engine, wasm_path: str | os.PathLike[str], digest: str) -> Compiled:
        """The compiled module (or component) for ``digest``; compiles ``wasm_path`` on a miss.

        ``wasm_path`` must already be verified to hash to ``digest``. Raises
        ``wasmtime.WasmtimeError`` if the module does not compile, ``OSError`` if it
        cannot be read.
        """
        module_path, component_path = self.path_for(digest), self.path_for(digest, is_component=True)
        with self._lock:
            lru = self._memory.setdefault(engine, OrderedDict())
            for key in (module_path.name, component_path.name):
                module = lru.get(key)
                if module is not None:
                    lru.move_to_end(key)
                    self.stats.memory_hits += 1
                    return module
        # A compiled file says what it is; the source is read only when there is none.
        loaded: Compiled | None = None
        for path, kind in ((module_path, wasmtime.Module), (component_path, component.Component)):
            if path.exists() and (loaded := self._load_file(engine, path, kind)) is not None:
                break
        if loaded is None:
            with open(wasm_path, "rb") as f:
                kind = component.Component if is_component(f.read(8)) else wasmtime.Module
            path = component_path if kind is component.Component else module_path
            loaded = kind.from_file(engine, os.fspath(wasm_path))
            self.stats.compiled += 1
            try:
                self._write(path, loaded.serialize())
            except OSError as exc:  # a full disk costs speed, not correctness
                log.warning("cannot store compiled module %s: %s", path.name, exc)
        module, key = loaded, path.name
        with self._lock:
            lru[key] = module
            lru.move_to_end(key)
            while len(lru) > self._memory_entries:
                lru.popitem(last=False)
        return module

    def forget(self) -> None:
        """Drops the in-memory entries (the files stay)."""
        with self._lock:
            self._memory.clear()

    def _load_file(
        self, engine: wasmtime.Engine, path: Path, kind: type[wasmtime.Module] | type[component.Component]
    ) -> Compiled | None:
        try:
            module: Compiled = kind.deserialize_file(engine, os.fspath(path))
        except wasmtime.WasmtimeError as exc:
            if not path.exists():
                return None
            log.warning("compiled module %s is unusable (%s); recompiling", path.name, exc)
            self.stats.corrupt_recovered += 1
            path.unlink(missing_ok=True)
            return None
        self.stats.disk_hits += 1
        return module

    def _write(self, path: Path, data: bytes | bytearray) -> None:
        fd, tmp = tempfile.mkstemp(dir=self._dir, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
