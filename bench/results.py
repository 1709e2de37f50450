"""bench/results.md holds one section per benchmark; each run of a benchmark replaces its own."""

from __future__ import annotations

import re
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results.md"


def write_section(script: str, body: str) -> None:
    """Replace (or add) the section headed `# bench/<script>` with `body`."""
    heading = f"# bench/{script}\n\n"
    text = RESULTS.read_text() if RESULTS.exists() else ""
    sections = [s for s in re.split(r"(?m)^(?=# bench/)", text) if s.strip()]
    kept = [s.rstrip() + "\n" for s in sections if not s.startswith(heading.rstrip("\n"))]
    RESULTS.write_text("\n".join([*kept, heading + body.rstrip() + "\n"]))
