"""A step cgroup made of plain directories: one per hierarchy on v1, one on v2."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from noded.cgroups import fs
from noded.cgroups.errors import CgroupError
from noded.cgroups.limits import CgroupStats

RELEASE_TIMEOUT_S = 1.0
"""How long `release` waits for a step cgroup to empty (tasks still exiting) before giving up."""


class FileStepCgroup:
    """One step's cgroup; see `noded.cgroups.driver` for the contract of `attach` and `release`.

    `placements` pairs each of the step's directories with the workers cgroup of the same
    hierarchy, where `release` moves the process back to.
    """

    def __init__(
        self,
        name: str,
        *,
        placements: Sequence[tuple[Path, Path]],
        paths: Mapping[str, Path],
        read_stats: Callable[[], CgroupStats],
    ) -> None:
        self.name = name
        self._placements = tuple(placements)
        self._paths = dict(paths)
        self._read_stats = read_stats
        self._stats: CgroupStats | None = None
        self._moved_out = False
        self._released = False

    def path(self, controller: str) -> Path:
        """The directory of this step in `controller`'s hierarchy."""
        return self._paths[controller]

    @property
    def dirs(self) -> tuple[Path, ...]:
        return tuple(step for step, _ in self._placements)

    def attach(self, pid: int) -> None:
        if self._released:
            raise CgroupError(f"step cgroup {self.name} is already released")
        for step, _ in self._placements:
            fs.write(step / "cgroup.procs", pid)

    def release(self, pid: int | None) -> CgroupStats:
        if self._stats is None:
            self._stats = self._read_stats()
        if self._released:
            return self._stats
        if pid is not None and not self._moved_out:
            for _, workers in self._placements:
                if not fs.move(workers / "cgroup.procs", pid):
                    break  # the process is gone; nothing left to move
            self._moved_out = True
        for step, _ in self._placements:
            fs.remove(step, timeout_s=RELEASE_TIMEOUT_S)
        self._released = True
        return self._stats

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {[str(d) for d in self.dirs]}>"
