"""A step cgroup made of plain directories (one per hierarchy on v1, one on v2), lent out by a pool."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from noded.cgroups import fs
from noded.cgroups.errors import CgroupError
from noded.cgroups.fs import ControlDir
from noded.cgroups.limits import CgroupStats

RELEASE_TIMEOUT_S = 1.0
"""How long `release` waits for a step cgroup to empty (tasks still exiting) before it kills what is left."""


@dataclass(eq=False, slots=True)
class Slot:
    """One pooled step cgroup: the directory `steps/pool-<n>` in each hierarchy.

    `placements` pairs each of its directories with the workers cgroup of the same
    hierarchy, where `release` moves the process back to; `paths` maps each controller to
    its directory (several controllers share one on v2, or where v1 co-mounts them).
    """

    name: str
    placements: tuple[tuple[ControlDir, ControlDir], ...]
    paths: Mapping[str, ControlDir]
    uses: int = field(default=0)
    """How many steps it has been lent to; 0 while it is fresh from `mkdir`."""

    @property
    def dirs(self) -> tuple[Path, ...]:
        return tuple(step.path for step, _ in self.placements)

    @property
    def fresh(self) -> bool:
        return self.uses == 0


def for_step(name: str, e: CgroupError) -> CgroupError:
    """`e` with the step's name in front, so that a pooled directory's error says whose it was."""
    return CgroupError(f"step cgroup {name}: {e}", path=e.path, errno=e.errno)


class FileStepCgroup:
    """One step's cgroup; see `noded.cgroups.driver` for the contract of `attach` and `release`.

    `name` is the step's (for logs and errors); the directories are those of a pooled
    `Slot`, which `release` hands to `give_back` once the process is out of them.
    """

    def __init__(
        self,
        name: str,
        *,
        slot: Slot,
        read_stats: Callable[[], CgroupStats],
        give_back: Callable[[str, Slot], None],
    ) -> None:
        self.name = name
        self.slot = slot
        self._read_stats = read_stats
        self._give_back = give_back
        self._stats: CgroupStats | None = None
        self._moved_out = False
        self._released = False

    def path(self, controller: str) -> Path:
        """The directory of this step in `controller`'s hierarchy."""
        return self.slot.paths[controller].path

    @property
    def dirs(self) -> tuple[Path, ...]:
        return self.slot.dirs

    def attach(self, pid: int) -> None:
        if self._released:
            raise CgroupError(f"step cgroup {self.name} is already released")
        try:
            for step, _ in self.slot.placements:
                fs.write(step.file("cgroup.procs"), pid)
        except CgroupError as e:
            raise for_step(self.name, e) from e

    def release(self, pid: int | None) -> CgroupStats:
        try:
            if self._stats is None:
                self._stats = self._read_stats()
            if self._released:
                return self._stats
            if pid is not None and not self._moved_out:
                for _, workers in self.slot.placements:
                    if not fs.move(workers.file("cgroup.procs"), pid):
                        break  # the process is gone; nothing left to move
                self._moved_out = True
            self._give_back(self.name, self.slot)
        except CgroupError as e:
            raise for_step(self.name, e) from e
        self._released = True
        return self._stats

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} in {self.slot.name} {[str(d) for d in self.dirs]}>"
