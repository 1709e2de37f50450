"""The agent libraries shipped in the package mirror the host: every error code of
noded's HostCallError, with a name, in the C header and in the AssemblyScript library; and the
repository's examples include the one header the package ships."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agentflow.authoring import c_include_dir
from agentflow.authoring.scaffold import package_root
from noded.sandbox import HostCallError

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]
HEADER = package_root() / "c" / "agentflow.h"
LIBRARY = package_root() / "assemblyscript" / "agentflow.ts"
HOST_CODES = {e.name: e.value for e in HostCallError}


def test_the_c_header_defines_every_host_error_code() -> None:
    defines = dict(re.findall(r"#define AF_ERR_(\w+) \((-\d+)\)", HEADER.read_text()))
    assert {name: int(value) for name, value in defines.items()} == HOST_CODES


def test_af_error_name_names_every_code() -> None:
    body = HEADER.read_text().split("static inline const char *af_error_name(int64_t code) {", 1)[1].split("\n}\n")[0]
    cases = re.findall(r"case AF_ERR_(\w+): return \"([^\"]+)\";", body)
    assert {name for name, _ in cases} == set(HOST_CODES)
    assert len({text for _, text in cases}) == len(cases)  # all different


def test_the_assemblyscript_library_defines_every_host_error_code() -> None:
    text = LIBRARY.read_text()
    consts = dict(re.findall(r"export const ERR_(\w+): i32 = (-\d+);", text))
    assert {name: int(value) for name, value in consts.items()} == HOST_CODES
    body = text.split("export function errorName(code: i64): string {", 1)[1].split("\n}\n")[0]
    cases = re.findall(r"case ERR_(\w+): return \"([^\"]+)\";", body)
    assert {name for name, _ in cases} == set(HOST_CODES)


def test_both_libraries_use_the_same_error_names() -> None:
    c = dict(re.findall(r"case AF_ERR_(\w+): return \"([^\"]+)\";", HEADER.read_text()))
    assemblyscript = dict(re.findall(r"case ERR_(\w+): return \"([^\"]+)\";", LIBRARY.read_text()))
    assert c == assemblyscript


def test_the_assemblyscript_imports_have_the_abi_signature() -> None:
    text = LIBRARY.read_text()
    # usize is i32 on wasm32: (i32, i32, i32, i32) -> i64 and (i32, i32) -> i32, as agentflow.wasm_check wants
    call = "declare function host_call(opPtr: usize, opLen: i32, reqPtr: usize, reqLen: i32): i64;"
    result = "declare function host_result(bufPtr: usize, bufLen: i32): i32;"
    assert f'@external("agentflow", "host_call")\n{call}' in text
    assert f'@external("agentflow", "host_result")\n{result}' in text


def test_the_examples_include_the_packaged_header() -> None:
    with c_include_dir() as include:
        packaged = (include / "agentflow.h").resolve()
    assert (REPO / "examples" / "agents" / "include" / "agentflow.h").resolve() == packaged
    assert "AGENT_INCLUDE := agentflow/authoring/c" in (REPO / "mk" / "agents.mk").read_text()
