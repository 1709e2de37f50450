"""Fixtures shared by every test tier."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from processes import NatsServer

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def built_agents() -> Path:
    """Builds every example and test agent (``make -f mk/agents.mk agents``); returns the repo root.

    The .wasm files sit next to their sources: ``examples/agents/NAME.wasm``,
    ``tests/agents/NAME.wasm``.
    """
    cmd = ["make", "-f", "mk/agents.mk", f"-j{os.cpu_count() or 2}", "agents", f"PYTHON={sys.executable}"]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.fail(
            f"building the agents failed ({' '.join(cmd)} exited with {proc.returncode}):\n"
            f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}",
            pytrace=False,
        )
    return REPO_ROOT


# Property-based tests: reproducible by default (CI), many more random cases on demand.
settings.register_profile("default", derandomize=True, max_examples=300, deadline=None, database=None)
settings.register_profile("fuzz", max_examples=20_000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    """A real `nats-server -js` on a free port with its store in the test's directory."""
    server = NatsServer(tmp_path / "jetstream").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def python_agent(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/agents/pyagent built into a component (componentize-py from PyPI on first use)."""
    from agentflow.authoring.errors import BuildFailed
    from agentflow.authoring.python import build_python_agent

    output = tmp_path_factory.mktemp("pyagent") / "pyagent.wasm"
    try:
        return build_python_agent(REPO_ROOT / "tests" / "agents" / "pyagent", output, progress=lambda _: None)
    except BuildFailed as exc:  # ToolchainMissing too
        pytest.fail(f"building the Python test agent failed: {exc}", pytrace=False)
