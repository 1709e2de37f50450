"""The Ansible roles and playbooks: ansible-lint (production profile) and --syntax-check clean, and
a real run of site.yml against localhost into a temporary root — every file, mode and owner it
lays down — that changes nothing when run again. Service actions are skipped (no systemd here)."""

from __future__ import annotations

import grp
import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from agentflow.certs import Kind, init_ca, issue
from controlplane.config import ControlPlaneConfig
from noded.config import NodedConfig
from router.config import RouterConfig

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE = ROOT / "ansible"
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    found = shutil.which(name, path=str(BIN)) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is missing: install the dev extras (ansible-core, ansible-lint)")
    return found


def run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ANSIBLE_CONFIG": str(ANSIBLE / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_LOCAL_TEMP": str(kwargs.pop("tmp")), "PATH": f"{BIN}:{os.environ['PATH']}"}  # fmt: skip
    return subprocess.run(argv, cwd=ANSIBLE, capture_output=True, text=True, env=env, check=False, timeout=900)


def test_ansible_lint_production_profile_is_clean(tmp_path: Path) -> None:
    result = run([tool("ansible-lint"), "--profile", "production", "site.yml", "rolling-upgrade.yml"], tmp=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("playbook", ["site.yml", "rolling-upgrade.yml"])
def test_syntax_check(playbook: str, tmp_path: Path) -> None:
    result = run([tool("ansible-playbook"), "--syntax-check", playbook], tmp=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This checkout as a wheel, for the role's pip task to install."""
    out = tmp_path_factory.mktemp("wheels")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(out), str(ROOT)], capture_output=True, text=True, check=False)  # fmt: skip
    assert built.returncode == 0, built.stderr
    return out


def test_site_yml_lays_down_the_install_and_is_idempotent(tmp_path: Path, wheels: Path) -> None:
    root, pki = tmp_path / "root", tmp_path / "pki"
    root.mkdir()
    init_ca(pki)
    issue(pki, Kind.SERVER, "cp", sans=("127.0.0.1",))
    issue(pki, Kind.NODE, "localhost")
    (pki / "join.token").write_text("aft_0123456789ab_" + "j" * 32 + "\n")
    user, group = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
    inventory = tmp_path / "hosts.yml"
    host = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inventory.write_text(json.dumps({"all": {"children": {
        "controlplane": {"hosts": {"localhost": host}}, "nodes": {"hosts": {"localhost": host}}}}}))  # fmt: skip
    extra = {
        "ansible_become": False,
        "agentflow_root": str(root),
        "agentflow_create_user": False,
        "agentflow_user": user, "agentflow_group": group,
        "agentflow_admin_user": user, "agentflow_admin_group": group,
        "agentflow_python": sys.executable,
        "agentflow_package": "agentflow==0.1.0",
        "agentflow_pip_extra_args": f"--find-links {wheels} --no-deps",
        "agentflow_pki_source": str(pki),
        "agentflow_join_token_source": str(pki / "join.token"),
        "agentflow_noded_server": "127.0.0.1:7070",
        "agentflow_noded_labels": {"zone": "test"},
        "agentflow_manage_services": False,
    }  # fmt: skip
    playbook = [tool("ansible-playbook"), "-i", str(inventory), "site.yml", "-e", json.dumps(extra)]
    first = run(playbook, tmp=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "changed=0" not in first.stdout

    expected = {  # path under the root: (mode, is a directory)
        "opt/agentflow": (0o755, True),
        "etc/agentflow": (0o750, True),
        "etc/agentflow/pki": (0o750, True),
        "etc/agentflow/pki/ca.pem": (0o644, False),
        "etc/agentflow/pki/server.pem": (0o644, False),
        "etc/agentflow/pki/server-key.pem": (0o640, False),
        "etc/agentflow/pki/node.pem": (0o644, False),
        "etc/agentflow/pki/node-key.pem": (0o640, False),
        "etc/agentflow/join.token": (0o640, False),
        "etc/agentflow/controlplane.toml": (0o640, False),
        "etc/agentflow/noded.toml": (0o640, False),
        "etc/agentflow/router.toml": (0o640, False),
        "var/lib/agentflow/controlplane": (0o700, True),
        "var/lib/agentflow/noded": (0o700, True),
        "var/lib/agentflow/router": (0o700, True),
        "etc/systemd/system/agentflow-controlplane.service": (0o644, False),
        "etc/systemd/system/agentflow-noded.service": (0o644, False),
        "etc/systemd/system/agentflow-router.service": (0o644, False),
    }
    for relative, (mode, is_dir) in expected.items():
        info = (root / relative).stat()
        assert (stat.S_IMODE(info.st_mode), stat.S_ISDIR(info.st_mode)) == (mode, is_dir), relative
        assert (info.st_uid, info.st_gid) == (os.getuid(), os.getgid()), relative
    assert (root / "opt/agentflow/venv/bin/agentflow").exists()
    noded = (root / "etc/agentflow/noded.toml").read_text()
    assert 'server = "127.0.0.1:7070"' in noded and 'name = "localhost"' in noded
    assert 'labels = { "zone" = "test" }' in noded and 'join_token_file = "/etc/agentflow/join.token"' in noded
    assert (root / "etc/systemd/system/agentflow-noded.service").read_text() == (
        ROOT / "systemd/agentflow-noded.service"
    ).read_text()
    # The settings it writes are ones the daemons accept.
    for load, name in (
        (ControlPlaneConfig.load, "controlplane"),
        (NodedConfig.load, "noded"),
        (RouterConfig.load, "router"),
    ):
        load(["--config", str(root / f"etc/agentflow/{name}.toml")], {})

    second = run(playbook, tmp=tmp_path)
    assert second.returncode == 0, second.stdout + second.stderr
    recap = [line for line in second.stdout.splitlines() if line.startswith("localhost")]
    assert recap and all("changed=0" in line and "failed=0" in line for line in recap), second.stdout
