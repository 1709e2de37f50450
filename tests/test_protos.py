"""The committed stubs in agentflow/v1 are exactly what the .proto files generate."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parent.parent


def test_committed_stubs_are_current() -> None:
    proc = subprocess.run(
        [sys.executable, "scripts/gen_protos.py", "--check"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr


def test_generated_package_holds_only_generated_files() -> None:
    names = {p.name for p in (ROOT / "agentflow" / "v1").iterdir() if p.name != "__pycache__"}
    protos = {p.stem for p in (ROOT / "proto" / "agentflow" / "v1").glob("*.proto")}
    expected = {"__init__.py"} | {
        f"{stem}{suffix}" for stem in protos for suffix in ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")
    }
    assert names == expected
