"""Parsing `/proc/<pid>/cgroup`."""

from __future__ import annotations

from pathlib import Path

import pytest

from noded.cgroups import CgroupError
from noded.cgroups.procfile import Membership, parse, read, v2_path

pytestmark = pytest.mark.unit

HYBRID = """\
9:name=systemd:/
8:pids:/
4:memory:/process_api/3dcc
3:cpu,cpuacct:/system.slice/noded.service
0::/
"""


def test_parse_hybrid() -> None:
    memberships = parse(HYBRID)
    assert memberships[0] == Membership(hierarchy_id=9, controllers=("name=systemd",), path="/")
    assert memberships[3] == Membership(
        hierarchy_id=3, controllers=("cpu", "cpuacct"), path="/system.slice/noded.service"
    )
    assert memberships[4] == Membership(hierarchy_id=0, controllers=(), path="/")
    assert v2_path(memberships) == "/"


def test_v2_only() -> None:
    assert v2_path(parse("0::/system.slice/noded.service\n")) == "/system.slice/noded.service"


def test_v1_only_has_no_v2_path() -> None:
    assert v2_path(parse("4:memory:/\n")) is None


def test_paths_may_contain_colons() -> None:
    assert parse("0::/a:b\n")[0].path == "/a:b"


def test_malformed_line_names_file_and_line(tmp_path: Path) -> None:
    proc = tmp_path / "cgroup"
    proc.write_text("0::/\nnonsense\n")
    with pytest.raises(CgroupError, match=rf"{proc}:2: not"):
        read(proc)


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(CgroupError, match="cannot read") as info:
        read(tmp_path / "missing")
    assert info.value.path == tmp_path / "missing"
