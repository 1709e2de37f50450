"""Errors of the cgroup drivers."""

from __future__ import annotations

from pathlib import Path


class CgroupError(Exception):
    """A cgroup hierarchy is unusable, or a cgroup file or directory could not be read, written, made or removed."""

    def __init__(self, message: str, *, path: Path | None = None, errno: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.errno = errno
