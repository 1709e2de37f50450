"""Module bytes on disk, content-addressed: `<dir>/sha256/<hex>`.

A blob is written to a temporary file while it is hashed, checked, fsynced and only then renamed
into place, so a crash or a bad upload never leaves a partial module under a digest.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from agentflow.spec import DIGEST_PREFIX, is_digest
from agentflow.storage import is_disk_full
from agentflow.wasm_check import module_problem
from controlplane.errors import InvalidArgument, NotFound, ResourceExhausted, StorageError, StorageFull

CHUNK_SIZE = 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredBlob:
    digest: str
    size: int


class ModuleBlobs:
    def __init__(self, root: Path, *, max_bytes: int) -> None:
        self._dir = root / "sha256"
        self._dir.mkdir(parents=True, exist_ok=True)
        self._max_bytes = max_bytes

    def path(self, digest: str) -> Path:
        if not is_digest(digest):
            raise InvalidArgument(f'digest: "{digest}" is not sha256:<64 hex digits>')
        return self._dir / digest.removeprefix(DIGEST_PREFIX)

    def exists(self, digest: str) -> bool:
        return self.path(digest).is_file()

    async def write(self, chunks: AsyncIterable[bytes], *, expected_digest: str = "") -> StoredBlob:
        """Store a module from chunks; verify the digest (if given) and that it is valid wasm."""
        try:
            return await self._write(chunks, expected_digest)
        except OSError as exc:
            if is_disk_full(exc):
                raise StorageFull(f"{self._dir}: no space left to store the module; nothing was changed") from exc
            raise StorageError(f"{self._dir}: cannot store the module: {exc}") from exc

    async def _write(self, chunks: AsyncIterable[bytes], expected_digest: str) -> StoredBlob:
        hasher = hashlib.sha256()
        size = 0
        fd, tmp_name = tempfile.mkstemp(dir=self._dir, prefix=".upload-")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > self._max_bytes:
                        raise ResourceExhausted(f"module is larger than the limit of {self._max_bytes} bytes")
                    hasher.update(chunk)
                    out.write(chunk)
                out.flush()
                await asyncio.to_thread(os.fsync, out.fileno())
            digest = DIGEST_PREFIX + hasher.hexdigest()
            if expected_digest and expected_digest != digest:
                raise InvalidArgument(f"expected_digest: upload hashes to {digest}, not {expected_digest}")
            await asyncio.to_thread(_validate_wasm, tmp)
            final = self.path(digest)
            os.replace(tmp, final)
            return StoredBlob(digest=digest, size=size)
        finally:
            tmp.unlink(missing_ok=True)

    async def read(self, digest: str) -> AsyncIterator[bytes]:
        path = self.path(digest)
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            raise NotFound(f"module {digest} is not stored") from None
        with handle:
            while chunk := await asyncio.to_thread(handle.read, CHUNK_SIZE):
                yield chunk


def _validate_wasm(path: Path) -> None:
    problem = module_problem(path.read_bytes())
    if problem is not None:
        raise InvalidArgument(f"module: {problem}")
