"""Turn node and step names into cgroup directory names."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

MAX_NAME_LEN = 64
_UNSAFE = re.compile(r"[^a-z0-9_-]+")
_DIGEST_LEN = 12
# Control files without a dot in v1 hierarchies, which a cgroup directory would collide with.
_RESERVED = frozenset({"tasks", "notify_on_release", "release_agent"})


def slug(name: str) -> str:
    """A directory name of `[a-z0-9_-]`, at most `MAX_NAME_LEN` long, unique per `name`.

    A name that already is such a slug is kept; any other is cleaned, truncated and
    suffixed with a hash of the original, so "Run/1" and "run-1" do not collide.
    """
    if name and len(name) <= MAX_NAME_LEN and not _UNSAFE.search(name) and name[0].isalnum() and name not in _RESERVED:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:_DIGEST_LEN]
    head = _UNSAFE.sub("-", name.lower()).strip("-_")[: MAX_NAME_LEN - _DIGEST_LEN - 1].rstrip("-_")
    return f"{head}-{digest}" if head else digest


def node_subtree(name: str, data_dir: Path) -> str:
    """The directory of one node's cgroups: its name and a hash of its data directory.

    Leftovers are cleaned up per subtree at start-up, so two nodes of the same name on one host
    (say two `agentflow up` with different data dirs) must never share one.
    """
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:8]
    return slug(f"{slug(name)}-{digest}")
