"""Default locations on disk."""

from __future__ import annotations

import os
from pathlib import Path


def default_data_home() -> Path:
    """`$XDG_DATA_HOME/agentflow`, else `~/.local/share/agentflow`."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "agentflow"
