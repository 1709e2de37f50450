"""`noded.isolation.detect` and `resolve` against cgroupfs-shaped temporary trees."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from agentflow.vocabulary import Isolation
from noded.isolation import CGROUP_ROOT, V1_CONTROLLERS, detect, resolve

pytestmark = pytest.mark.unit


def v2_tree(root: Path, controllers: str = "cpuset cpu io memory pids") -> Path:
    (root / "cgroup.controllers").write_text(controllers + "\n")
    (root / "cgroup.subtree_control").write_text("")
    return root


def v1_tree(root: Path, controllers: tuple[str, ...] = ("cpuset", "cpu", "cpuacct", "memory", "pids")) -> Path:
    for name in controllers:
        (root / name).mkdir()
    return root


def hybrid_tree(root: Path) -> Path:
    """v1 controllers plus an empty v2 hierarchy mounted at `unified/`, as on older systemd hosts."""
    v1_tree(root)
    (root / "unified").mkdir()
    (root / "unified" / "cgroup.controllers").write_text("\n")
    return root


TREES: dict[str, tuple[Callable[[Path], Path], Isolation]] = {
    "v2": (v2_tree, Isolation.CGROUP2),
    "v2-controllers-on-one-line-each": (lambda r: v2_tree(r, "memory\npids\ncpu"), Isolation.CGROUP2),
    "v2-without-pids": (lambda r: v2_tree(r, "cpuset cpu io memory"), Isolation.NONE),
    "v2-without-memory": (lambda r: v2_tree(r, "cpuset cpu io pids"), Isolation.NONE),
    "v2-no-controllers": (lambda r: v2_tree(r, ""), Isolation.NONE),
    "v2-without-pids-but-v1-dirs": (lambda r: v1_tree(v2_tree(r, "cpu io memory")), Isolation.CGROUP1),
    "v1": (v1_tree, Isolation.CGROUP1),
    "v1-minimal": (lambda r: v1_tree(r, V1_CONTROLLERS), Isolation.CGROUP1),
    "v1-without-pids": (lambda r: v1_tree(r, ("cpu", "memory")), Isolation.NONE),
    "v1-without-memory": (lambda r: v1_tree(r, ("cpu", "pids")), Isolation.NONE),
    "v1-controller-is-a-file": (
        lambda r: (v1_tree(r, ("cpu", "pids")), (r / "memory").write_text(""))[0],
        Isolation.NONE,
    ),
    "hybrid": (hybrid_tree, Isolation.CGROUP1),
    "controllers-is-a-directory": (lambda r: ((r / "cgroup.controllers").mkdir(), r)[1], Isolation.NONE),
    "empty": (lambda r: r, Isolation.NONE),
}


@pytest.mark.parametrize(("build", "expected"), TREES.values(), ids=TREES.keys())
def test_detect(tmp_path: Path, build: Callable[[Path], Path], expected: Isolation) -> None:
    assert detect(build(tmp_path)) is expected


def test_detect_on_a_missing_root(tmp_path: Path) -> None:
    assert detect(tmp_path / "no-cgroupfs-here") is Isolation.NONE


def test_resolve_none_is_always_available_and_auto_is_detect(tmp_path: Path) -> None:
    for name, (build, expected) in TREES.items():
        root = tmp_path / name
        root.mkdir()
        build(root)
        assert resolve("none", root) is Isolation.NONE
        assert resolve("auto", root) is detect(root) is expected


@pytest.mark.parametrize(
    ("build", "requested"),
    [(v2_tree, "cgroup2"), (v1_tree, "cgroup1")],
    ids=["cgroup2-on-v2", "cgroup1-on-v1"],
)
def test_resolve_explicit_mode_that_is_available(tmp_path: Path, build: Callable[[Path], Path], requested: str) -> None:
    assert resolve(requested, build(tmp_path)) is Isolation(requested)


UNAVAILABLE = {
    "cgroup2-on-v1": (v1_tree, "cgroup2", "cgroup1"),
    "cgroup1-on-v2": (v2_tree, "cgroup1", "cgroup2"),
    "cgroup2-on-empty": (lambda r: r, "cgroup2", "none"),
    "cgroup1-on-empty": (lambda r: r, "cgroup1", "none"),
}


@pytest.mark.parametrize(("build", "requested", "found"), UNAVAILABLE.values(), ids=UNAVAILABLE.keys())
def test_resolve_unavailable_mode_names_both(
    tmp_path: Path, build: Callable[[Path], Path], requested: str, found: str
) -> None:
    root = build(tmp_path)
    with pytest.raises(ValueError) as info:
        resolve(requested, root)
    message = str(info.value)
    assert f'isolation "{requested}" is not available' in message
    assert f'found "{found}"' in message
    assert str(root) in message


def test_resolve_unknown_mode(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="docker"):
        resolve("docker", tmp_path)


def test_detect_on_this_host() -> None:
    mode = detect()
    assert mode in set(Isolation)
    v1_usable = all((CGROUP_ROOT / c).is_dir() and os.access(CGROUP_ROOT / c, os.W_OK) for c in V1_CONTROLLERS)
    if v1_usable:
        assert mode is not Isolation.NONE
    controllers = CGROUP_ROOT / "cgroup.controllers"
    if not controllers.is_file() and not v1_usable:
        assert mode is Isolation.NONE
