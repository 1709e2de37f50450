"""`agentflow` commands that never reach a control plane: validation, bad input, no server."""

from __future__ import annotations

from pathlib import Path

import pytest
from wasm_modules import MINIMAL_AGENT

from agentflow.cli.main import main

pytestmark = [pytest.mark.unit, pytest.mark.timeout(30)]

CLOSED = "127.0.0.1:1"  # nothing listens on port 1
WASM_HEADER = MINIMAL_AGENT


@pytest.fixture
def workflow(tmp_path: Path) -> Path:
    """A valid one-step workflow next to a (header-only) module."""
    (tmp_path / "agent.wasm").write_bytes(WASM_HEADER)
    path = tmp_path / "one.yaml"
    path.write_text(
        "apiVersion: agentflow/v1\nkind: Workflow\nname: one\nversion: '1'\n"
        "agents:\n  - name: only\n    module: ./agent.wasm\n"
    )
    return path


def test_validate_reports_every_problem_as_file_path_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "ok.wasm").write_bytes(WASM_HEADER)
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        "apiVersion: agentflow/v1\n"
        "kind: Workflow\n"
        "name: broken\n"
        "version: '1'\n"
        "agents:\n"
        "  - name: fetch\n"
        "    module: ./missing.wasm\n"
        "    dependsOn: [summarise]\n"
        "  - name: summarize\n"
        "    module: ./ok.wasm\n"
        "    timeout: 5x\n"
    )
    assert main(["validate", str(broken)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        f"{broken}: agents[0].module: module file ./missing.wasm not found (looked for {tmp_path / 'missing.wasm'})",
        f'{broken}: agents[0].dependsOn[0]: unknown agent "summarise" (did you mean "summarize"?)',
        f'{broken}: agents[1].timeout: "5x": unknown unit "x" (use ms, s, m or h)',
    ]


def test_validate_of_unparsable_yaml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("agents: [unclosed\n")
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{bad}: ")
    assert err.count("\n") >= 1


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("name: a\x00b\n", "invalid YAML at line 1, column 8: character #x0000 is not allowed"),
        ("version: !!int\n", 'invalid YAML at line 1, column 10: "" is not a valid !!int value'),
    ],
    ids=["nul-byte", "bare-int-tag"],
)
def test_validate_of_yaml_the_reader_refuses_exits_2_with_the_position(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, reason: str
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    assert main(["validate", str(bad)]) == 2
    assert capsys.readouterr().err.startswith(f"{bad}: (root): {reason}")


def test_validate_of_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.yaml"
    assert main(["validate", str(missing)]) == 2
    assert capsys.readouterr().err == f"{missing}: cannot read: No such file or directory\n"


def test_validate_of_a_binary_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    binary = tmp_path / "agent.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    assert main(["validate", str(binary)]) == 2
    assert capsys.readouterr().err == f"{binary}: not UTF-8 text\n"


def test_validate_of_a_valid_temp_workflow(workflow: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(workflow)]) == 0
    assert capsys.readouterr().out == f"{workflow}: valid workflow one v1 (1 agents)\n"


def test_run_with_input_that_is_not_json(workflow: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--server", CLOSED, "run", str(workflow), "--input", "not json"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == "--input: not valid JSON: Expecting value: line 1 column 1 (char 0)\n"


def test_run_with_an_input_file_that_is_not_json(
    tmp_path: Path, workflow: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    input_file = tmp_path / "input.json"
    input_file.write_text('{"text": }')
    assert main(["run", str(workflow), "--input-file", str(input_file), "--server", CLOSED]) == 2
    assert capsys.readouterr().err.startswith(f"{input_file}: not valid JSON: Expecting value: line 1 column 10")


def test_run_with_a_missing_input_file(tmp_path: Path, workflow: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "input.json"
    assert main(["run", str(workflow), "--input-file", str(missing), "--server", CLOSED]) == 2
    assert capsys.readouterr().err == f"{missing}: cannot read: No such file or directory\n"


def test_run_with_both_inputs(tmp_path: Path, workflow: Path, capsys: pytest.CaptureFixture[str]) -> None:
    input_file = tmp_path / "input.json"
    input_file.write_text("{}")
    argv = ["run", str(workflow), "--input", "{}", "--input-file", str(input_file), "--server", CLOSED]
    assert main(argv) == 2
    assert capsys.readouterr().err == "give --input or --input-file, not both\n"


def test_run_of_an_invalid_workflow_fails_before_connecting(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: agentflow/v1\nkind: Workflow\nname: bad\nversion: '1'\nagents: []\n")
    assert main(["run", str(bad), "--server", CLOSED]) == 2  # 3 would mean it tried the server
    assert capsys.readouterr().err.startswith(f"{bad}: agents: ")


@pytest.mark.parametrize("server_first", [True, False], ids=["server-before-command", "server-after-command"])
def test_run_against_a_closed_port_is_unreachable(
    workflow: Path, capsys: pytest.CaptureFixture[str], server_first: bool
) -> None:
    args = ["run", str(workflow), "--input", '{"text": "hi"}']
    argv = ["--server", CLOSED, *args] if server_first else [*args, "--server", CLOSED]
    assert main(argv) == 3
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"agentflow: control plane at {CLOSED} is unreachable")


CLIENT_COMMANDS = {
    "status": ["status", "run-123"],
    "status-json": ["status", "run-123", "--json"],
    "runs": ["runs"],
    "cancel": ["cancel", "run-123"],
    "retry": ["retry", "run-123"],
    "nodes": ["nodes", "--json"],
    "module-list": ["module", "list"],
}


@pytest.mark.parametrize("argv", CLIENT_COMMANDS.values(), ids=CLIENT_COMMANDS.keys())
def test_client_commands_against_a_closed_port_exit_3(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*argv, "--server", CLOSED]) == 3
    out, err = capsys.readouterr()
    assert out == ""
    assert "unreachable" in err and CLOSED in err


def test_server_after_the_command_overrides_the_one_before(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--server", "127.0.0.1:7070", "status", "X", "--server", CLOSED]) == 3
    assert f"control plane at {CLOSED} is unreachable" in capsys.readouterr().err


def test_module_push_of_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.wasm"
    assert main(["module", "push", str(missing), "--server", CLOSED]) == 2  # refused before connecting
    assert capsys.readouterr().err == f"{missing}: no such file\n"


def test_module_push_of_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["module", "push", str(tmp_path), "--server", CLOSED]) == 2
    assert capsys.readouterr().err == f"{tmp_path}: no such file\n"


def test_module_push_of_a_file_against_a_closed_port(workflow: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["module", "push", str(workflow.parent / "agent.wasm"), "--server", CLOSED]) == 3
    assert "unreachable" in capsys.readouterr().err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2
    assert "invalid choice: 'frobnicate'" in capsys.readouterr().err
