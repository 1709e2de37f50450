"""noded's main process stays small: it does not load wasmtime (the workers do), nor
cryptography (the control plane reads node certificates; noded only presents one), nor
aiohttp until a step calls an LLM or fetches a URL."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("wasmtime", "cryptography", "aiohttp")


@pytest.mark.parametrize("module", ["noded.app", "noded.runner", "noded.precompile"])
def test_the_daemon_imports_no_engine_no_x509_library_and_no_http_client(module: str) -> None:
    probe = f"import json, sys, {module}; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    loaded = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout
    assert json.loads(loaded) == [], f"importing {module} loads {loaded.strip()}"


def test_the_worker_still_has_its_engine() -> None:
    probe = "import json, sys, noded.workers.worker_main; print(json.dumps('wasmtime' in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout
    assert json.loads(loaded) is True
