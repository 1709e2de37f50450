"""The systemd units in systemd/: `systemd-analyze verify` is clean on each, and each says what the
daemons rely on (notify with a watchdog, restart on failure, hardening, noded's delegation)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from noded.config import DEFAULT_SHUTDOWN_GRACE

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
UNITS = sorted((ROOT / "systemd").glob("*.service"))
INSTALLED = "/opt/agentflow/venv/bin/agentflow"
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "CapabilityBoundingSet": "",
}


def unit(path: Path) -> dict[str, dict[str, str]]:
    """Section -> key -> value; a key given more than once (SystemCallFilter) joined by spaces."""
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, _, value = line.partition("=")
        current[key] = f"{current[key]} {value}" if key in current else value
    return sections


def systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        pytest.fail("systemd-analyze is missing: install Debian's systemd package (apt-get install systemd)")
    return found


def verify(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([systemd_analyze(), "verify", str(path)], capture_output=True, text=True, check=False)


def test_there_is_a_unit_per_daemon() -> None:
    assert [u.name for u in UNITS] == [
        "agentflow-controlplane.service",
        "agentflow-noded.service",
        "agentflow-router.service",
    ]


@pytest.mark.parametrize("path", UNITS, ids=[u.stem for u in UNITS])
def test_systemd_analyze_verify_is_clean(path: Path, tmp_path: Path) -> None:
    # verify insists that ExecStart exists: point it at this checkout's agentflow.
    agentflow = Path(sys.executable).parent / "agentflow"
    assert agentflow.exists(), f"{agentflow} is missing: install the project into its venv (make venv-dev)"
    local = tmp_path / path.name
    local.write_text(path.read_text().replace(INSTALLED, str(agentflow)))
    result = verify(local)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_verify_would_catch_a_broken_unit(tmp_path: Path) -> None:
    broken = tmp_path / "agentflow-broken.service"
    broken.write_text((ROOT / "systemd" / "agentflow-router.service").read_text().replace(INSTALLED, "/nonexistent"))
    result = verify(broken)
    assert result.returncode != 0 and "/nonexistent" in result.stderr


@pytest.mark.parametrize("path", UNITS, ids=[u.stem for u in UNITS])
def test_every_unit_notifies_restarts_and_is_hardened(path: Path) -> None:
    service = unit(path)["Service"]
    assert service["Type"] == "notify" and service["NotifyAccess"] == "main"
    assert service["Restart"] == "on-failure"
    assert service["WatchdogSec"].endswith("s") and int(service["WatchdogSec"][:-1]) >= 10
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert {k: service.get(k) for k in HARDENING} == HARDENING
    state = service["StateDirectory"]
    assert service["ReadWritePaths"] == f"/var/lib/{state}"
    exec_start = service["ExecStart"].split()
    assert exec_start[0] == INSTALLED
    assert exec_start[exec_start.index("--data-dir") + 1] == f"/var/lib/{state}"
    assert exec_start[exec_start.index("--config") + 1].startswith("/etc/agentflow/")


@pytest.mark.parametrize("path", UNITS, ids=[u.stem for u in UNITS])
def test_exec_start_names_options_the_daemon_has(path: Path) -> None:
    argv = unit(path)["Service"]["ExecStart"].split()[1:]
    subcommand, options = argv[0], [a for a in argv[1:] if a.startswith("--")]
    shown = subprocess.run(
        [sys.executable, "-m", "agentflow.cli.main", subcommand, "--help"],
        capture_output=True, text=True, check=False, cwd=ROOT,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert all(option in shown.stdout for option in options), (options, shown.stdout)


def test_noded_owns_its_cgroup_subtree_and_outlasts_its_drain() -> None:
    service = unit(ROOT / "systemd" / "agentflow-noded.service")["Service"]
    assert service["Delegate"] == "yes" and service["KillMode"] == "mixed"
    stop = timedelta(seconds=int(service["TimeoutStopSec"].removesuffix("s")))
    assert stop >= 3 * DEFAULT_SHUTDOWN_GRACE
    # wasmtime compiles guest code and workers unshare their network: these must stay off.
    assert "MemoryDenyWriteExecute" not in service and "RestrictNamespaces" not in service
    assert "landlock_restrict_self" in service["SystemCallFilter"]
