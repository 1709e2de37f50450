"""Local module files, checked when a base directory is given."""

import pathlib

import pytest

from agentflow.spec import InvalidWorkflow, ModuleRef, Problem, load_workflow

pytestmark = pytest.mark.unit

WASM = b"\0asm\x01\0\0\0"


def workflow(*modules: str) -> str:
    lines = ["apiVersion: agentflow/v1", "kind: Workflow", "name: mods", "version: '1'", "agents:"]
    for i, module in enumerate(modules):
        lines += [f"  - name: a{i}", f"    module: {module!r}"]
    return "\n".join(lines) + "\n"


def problems_of(text: str, base_dir: pathlib.Path) -> list[Problem]:
    with pytest.raises(InvalidWorkflow) as info:
        load_workflow(text, source="wf.yaml", base_dir=base_dir)
    return list(info.value.problems)


def test_relative_and_absolute_paths_resolve(tmp_path: pathlib.Path) -> None:
    (tmp_path / "agents").mkdir()
    (tmp_path / "agents" / "x.wasm").write_bytes(WASM)
    elsewhere = tmp_path / "abs.wasm"
    elsewhere.write_bytes(WASM + b"more")
    spec = load_workflow(workflow("./agents/x.wasm", "agents/x.wasm", str(elsewhere)), source="w", base_dir=tmp_path)
    assert [a.module for a in spec.agents] == [
        ModuleRef(path="./agents/x.wasm"),
        ModuleRef(path="agents/x.wasm"),
        ModuleRef(path=str(elsewhere)),
    ]


def test_digests_need_no_file(tmp_path: pathlib.Path) -> None:
    spec = load_workflow(workflow("sha256:" + "f" * 64), source="w", base_dir=tmp_path)
    assert spec.agents[0].module == ModuleRef(digest="sha256:" + "f" * 64)


def test_missing_file(tmp_path: pathlib.Path) -> None:
    problems = problems_of(workflow("./agents/x.wasm"), tmp_path)
    assert len(problems) == 1
    assert problems[0].path == "agents[0].module"
    assert problems[0].reason == (
        f"module file ./agents/x.wasm not found (looked for {tmp_path / 'agents' / 'x.wasm'})"
    )


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\0as", id="truncated-magic"),
        pytest.param(b"#!/bin/sh\necho hi\n", id="script"),
        pytest.param(b"(module)", id="wat-text"),
    ],
)
def test_not_webassembly(tmp_path: pathlib.Path, content: bytes) -> None:
    (tmp_path / "x.wasm").write_bytes(content)
    problems = problems_of(workflow("x.wasm"), tmp_path)
    assert problems == [
        Problem("agents[0].module", "module file x.wasm is not a WebAssembly module (it does not start with \\0asm)")
    ]


def test_directory_is_not_a_module(tmp_path: pathlib.Path) -> None:
    (tmp_path / "dir.wasm").mkdir()
    assert problems_of(workflow("dir.wasm"), tmp_path) == [
        Problem("agents[0].module", "module file dir.wasm is not a file")
    ]


def test_every_bad_module_is_reported(tmp_path: pathlib.Path) -> None:
    (tmp_path / "good.wasm").write_bytes(WASM)
    (tmp_path / "text.wasm").write_text("hello")
    problems = problems_of(workflow("good.wasm", "gone.wasm", "text.wasm", "notes.txt"), tmp_path)
    assert [(p.path, p.reason.split(" (")[0]) for p in problems] == [
        ("agents[1].module", "module file gone.wasm not found"),
        ("agents[2].module", "module file text.wasm is not a WebAssembly module"),
        ("agents[3].module", '"notes.txt" is not a module'),
    ]
