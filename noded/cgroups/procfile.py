"""Parse `/proc/<pid>/cgroup`: which cgroup a process is in, per hierarchy."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from noded.cgroups.errors import CgroupError

PROC_SELF_CGROUP = Path("/proc/self/cgroup")


@dataclass(frozen=True, slots=True, kw_only=True)
class Membership:
    """One line `hierarchy-id:controllers:path`; the cgroup v2 line has id 0 and no controllers."""

    hierarchy_id: int
    controllers: tuple[str, ...]
    path: str


def parse(text: str, *, source: Path | str = PROC_SELF_CGROUP) -> list[Membership]:
    memberships = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split(":", 2)
        if len(fields) != 3 or not fields[0].isdigit() or not fields[2].startswith("/"):
            raise CgroupError(f"{source}:{lineno}: not `id:controllers:/path`: {line!r}")
        controllers = tuple(c for c in fields[1].split(",") if c)
        memberships.append(Membership(hierarchy_id=int(fields[0]), controllers=controllers, path=fields[2]))
    return memberships


def read(path: Path) -> list[Membership]:
    try:
        text = path.read_text()
    except OSError as e:
        raise CgroupError(f"cannot read {path}: {e.strerror}", path=path, errno=e.errno) from e
    return parse(text, source=path)


def v2_path(memberships: list[Membership]) -> str | None:
    """The cgroup v2 path (the `0::/path` line), if there is one."""
    return next((m.path for m in memberships if m.hierarchy_id == 0 and not m.controllers), None)
