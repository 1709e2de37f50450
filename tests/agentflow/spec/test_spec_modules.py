"""Local module files, checked when a base directory is given."""

import pathlib

import pytest
import wasmtime
from wasm_modules import MINIMAL_AGENT

from agentflow.spec import InvalidWorkflow, ModuleRef, Problem, load_workflow

pytestmark = pytest.mark.unit

WASM = MINIMAL_AGENT


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
    elsewhere.write_bytes(WASM)
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


def _wat(text: str) -> bytes:
    return bytes(wasmtime.wat2wasm(text))


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        pytest.param(
            MINIMAL_AGENT[: len(MINIMAL_AGENT) - 3],
            "is not valid WebAssembly: unexpected end-of-file",
            id="truncated",
        ),
        pytest.param(
            _wat('(module (import "env" "open" (func)) (func (export "_start")))'),
            "imports env.open, but the host provides only wasi_snapshot_preview1 and agentflow",
            id="unknown-import-module",
        ),
        pytest.param(
            _wat('(module (import "agentflow" "spawn" (func)) (func (export "_start")))'),
            "imports agentflow.spawn, which the host does not provide (the agentflow module has host_call, "
            "host_result)",
            id="unknown-abi-function",
        ),
        pytest.param(
            _wat(
                '(module (import "agentflow" "host_result" (func (param i64) (result i32))) (func (export "_start")))'
            ),
            "imports agentflow.host_result as (i64) -> (i32), but the host defines it as (i32, i32) -> (i32)",
            id="wrong-abi-signature",
        ),
        pytest.param(
            _wat('(module (import "wasi_snapshot_preview1" "sock_open" (func)) (func (export "_start")))'),
            "imports wasi_snapshot_preview1.sock_open, which is not a WASI preview 1 function",
            id="unknown-wasi-function",
        ),
        pytest.param(
            _wat('(module (import "env" "memory" (memory 1)) (func (export "_start")))'),
            "imports env.memory (memory), but the host provides only functions",
            id="imported-memory",
        ),
        pytest.param(
            _wat('(module (func (export "main")))'),
            "has no _start function export (build it as a WASI command, e.g. --target=wasm32-wasi)",
            id="no-start",
        ),
    ],
)
def test_modules_the_host_cannot_run_are_refused_with_the_reason(
    tmp_path: pathlib.Path, content: bytes, reason: str
) -> None:
    (tmp_path / "x.wasm").write_bytes(content)
    [problem] = problems_of(workflow("x.wasm"), tmp_path)
    assert problem.path == "agents[0].module"
    assert problem.reason.startswith(f"module file x.wasm {reason}"), problem.reason


def test_a_module_using_wasi_and_the_abi_is_accepted(tmp_path: pathlib.Path) -> None:
    (tmp_path / "x.wasm").write_bytes(
        _wat(
            '(module (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))'
            ' (import "agentflow" "host_call" (func (param i32 i32 i32 i32) (result i64)))'
            ' (memory (export "memory") 1) (func (export "_start")))'
        )
    )
    assert load_workflow(workflow("x.wasm"), source="w", base_dir=tmp_path).agents[0].module == ModuleRef(path="x.wasm")
