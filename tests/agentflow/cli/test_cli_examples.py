"""`agentflow validate` of the shipped examples (their modules are built first)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentflow.cli.main import main

pytestmark = [pytest.mark.component, pytest.mark.timeout(300)]


@pytest.mark.parametrize(
    ("name", "summary"),
    [("diamond", "valid workflow diamond v1 (4 agents)"), ("fanout", "valid workflow fanout v1 (25 agents)")],
    ids=["diamond", "fanout"],
)
def test_validate_examples(built_agents: Path, capsys: pytest.CaptureFixture[str], name: str, summary: str) -> None:
    path = built_agents / "examples" / f"{name}.yaml"
    assert main(["validate", str(path)]) == 0
    out, err = capsys.readouterr()
    assert out == f"{path}: {summary}\n"
    assert err == ""
