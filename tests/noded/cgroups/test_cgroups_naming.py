"""`noded.cgroups.slug` and `node_subtree`: safe, unique cgroup directory names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from noded.cgroups import MAX_NAME_LEN, node_subtree, slug

pytestmark = pytest.mark.unit

SAFE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


@pytest.mark.parametrize("name", ["step-1", "r1_s2_a3", "0abc", "a" * MAX_NAME_LEN], ids=str.__len__)
def test_a_slug_is_kept(name: str) -> None:
    assert slug(name) == name


@pytest.mark.parametrize(
    ("name", "head"),
    [
        ("Run/42:summarize#1", "run-42-summarize-1"),
        ("../../etc", "etc"),
        ("-leading-dash", "leading-dash"),
        ("tasks", "tasks"),
        ("", ""),
        ("ünïcødé", "n-c-d"),
    ],
    ids=["mixed", "traversal", "leading-dash", "v1-control-file", "empty", "non-ascii"],
)
def test_other_names_are_cleaned_and_hashed(name: str, head: str) -> None:
    result = slug(name)
    assert SAFE.match(result), result
    assert len(result) <= MAX_NAME_LEN
    assert result.startswith(head)
    assert result != name


def test_long_names_are_truncated_and_stay_unique() -> None:
    a, b = slug("x" * 200 + "a"), slug("x" * 200 + "b")
    assert len(a) == len(b) == MAX_NAME_LEN
    assert a != b
    assert SAFE.match(a)


def test_names_that_clean_alike_do_not_collide() -> None:
    assert len({slug("run-1"), slug("Run-1"), slug("run/1"), slug("run 1")}) == 4


def test_slug_is_stable() -> None:
    assert slug("Run/1") == slug("Run/1")


def test_node_subtree_tells_apart_nodes_of_one_name_by_data_dir(tmp_path: Path, monkeypatch) -> None:
    a, b = node_subtree("alpha", tmp_path / "a"), node_subtree("alpha", tmp_path / "b")
    assert a != b
    assert a.startswith("alpha-") and b.startswith("alpha-")
    assert slug(a) == a
    monkeypatch.chdir(tmp_path)
    assert node_subtree("alpha", Path("a")) == a  # the same directory, however it is written


def test_node_subtree_of_a_long_or_odd_name_is_a_slug(tmp_path: Path) -> None:
    for name in ("x" * 200, "Web/Node 1", "tasks"):
        subtree = node_subtree(name, tmp_path)
        assert slug(subtree) == subtree
        assert len(subtree) <= MAX_NAME_LEN
