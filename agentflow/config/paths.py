"""Default locations on disk."""

from __future__ import annotations

import os
from pathlib import Path


def default_data_home() -> Path:
    """`$XDG_DATA_HOME/agentflow`, else `~/.local/share/agentflow`."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "agentflow"


# noded's local admin API listens on this unix socket in its data dir unless told otherwise.
NODE_ADMIN_SOCKET = "noded.sock"


def default_node_data_dir() -> Path:
    """Where noded keeps its state by default (also `agentflow up`'s node, under its data dir)."""
    return default_data_home() / "noded"


def default_router_data_dir() -> Path:
    """Where the router keeps its cache, journal and spend ledger by default."""
    return default_data_home() / "router"
