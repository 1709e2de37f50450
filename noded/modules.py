"""Modules on the node's disk, fetched by digest from the control plane and verified.

`<data dir>/modules/<hex>.wasm` holds only bytes whose sha256 matched their digest: a download
is hashed into a temporary file and renamed into place only when it matches.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from agentflow.spec import DIGEST_PREFIX, is_digest
from noded.errors import ModuleFetchError


class ModuleStore:
    def __init__(self, root: Path, fetch: Callable[[str], AsyncIterator[bytes]]) -> None:
        self._root = root
        self._root.mkdir(parents=True, exist_ok=True)
        self._fetch = fetch
        self._inflight: dict[str, asyncio.Future[Path]] = {}
        self.hits = 0
        self.misses = 0
        self.joined = 0  # requests that waited for a download already in flight

    def path(self, digest: str) -> Path:
        if not is_digest(digest):
            raise ModuleFetchError(f'"{digest}" is not a sha256 digest')
        return self._root / f"{digest.removeprefix(DIGEST_PREFIX)}.wasm"

    async def ensure(self, digest: str) -> Path:
        """The verified module file, downloading it once even when many steps ask at once."""
        path = self.path(digest)
        while True:
            if path.is_file():
                self.hits += 1
                return path
            pending = self._inflight.get(digest)
            if pending is None:
                break
            self.joined += 1
            try:
                return await asyncio.shield(pending)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if not pending.cancelled() or (task is not None and task.cancelling()):
                    raise
                # The task downloading it was cancelled, not this one: fetch it ourselves.
        self.misses += 1
        future: asyncio.Future[Path] = asyncio.get_running_loop().create_future()
        self._inflight[digest] = future
        try:
            await self._download(digest, path)
            future.set_result(path)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters (if any) re-raise it themselves
            raise
        finally:
            del self._inflight[digest]
        return path

    async def _download(self, digest: str, path: Path) -> None:
        hasher = hashlib.sha256()
        fd, tmp_name = tempfile.mkstemp(dir=self._root, prefix=".fetch-")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                async for chunk in self._fetch(digest):
                    hasher.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            got = DIGEST_PREFIX + hasher.hexdigest()
            if got != digest:
                raise ModuleFetchError(f"module {digest}: downloaded bytes hash to {got}")
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
