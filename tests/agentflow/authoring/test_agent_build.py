"""`agentflow agent build` without compiling anything: agent.toml errors, and toolchains that are
missing or fail to install (pip, npm) reported with what is missing and how to get it. A fake
`Host` stands in for PATH, pip, npm and the compilers; the real builds run in
tests/integration/test_authoring_e2e.py."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from wasm_modules import MINIMAL_AGENT

from agentflow.authoring import LANGUAGES, BuildFailed, Host, ToolchainMissing, UsageError, build_agent, scaffold
from agentflow.authoring.toolchains import ZIGLANG_REQUIREMENT, c_include_dir
from agentflow.cli.main import main

pytestmark = [pytest.mark.unit, pytest.mark.timeout(30)]

PYTHON = "/opt/py/bin/python3"


@dataclass
class FakeHost:
    """Answers `run` from `answers` (first matching argv prefix), records every command."""

    modules: set[str] = field(default_factory=set)
    programs: dict[str, str] = field(default_factory=dict)
    answers: list[tuple[tuple[str, ...], int, str, str]] = field(default_factory=list)
    ran: list[tuple[list[str], Path | None]] = field(default_factory=list)
    on_run: dict[str, object] = field(default_factory=dict)

    def host(self) -> Host:
        return Host(python=PYTHON, which=self.programs.get, run=self.run, has_module=self.has_module)

    def has_module(self, python: str, module: str) -> bool:
        assert python == PYTHON
        return module in self.modules

    def run(self, argv: Sequence[str], cwd: Path | None) -> subprocess.CompletedProcess[str]:
        self.ran.append((list(argv), cwd))
        for prefix, code, out, err in self.answers:
            if tuple(argv[: len(prefix)]) == prefix:
                effect = self.on_run.get(prefix[-1])
                if callable(effect):
                    effect(argv, cwd)
                return subprocess.CompletedProcess(list(argv), code, out, err)
        raise AssertionError(f"unexpected command {argv}")


def _write_module(argv: Sequence[str], cwd: Path | None) -> None:
    """What a compiler does: write the module named after -o / --outFile."""
    flag = "-o" if "-o" in argv else "--outFile"
    out = Path(argv[list(argv).index(flag) + 1])
    out = out if out.is_absolute() else (cwd or Path.cwd()) / out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(MINIMAL_AGENT)


def new_agent(tmp_path: Path, lang: str) -> Path:
    return scaffold("hello", LANGUAGES[lang], tmp_path).dir


# ---- agent.toml --------------------------------------------------------------------------


def test_a_directory_without_agent_toml_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as refused:
        build_agent(tmp_path)
    assert str(refused.value) == (
        f"{tmp_path}: no agent.toml here, so it is not an agent directory "
        "(make one with: agentflow agent new NAME --lang LANGUAGE)"
    )


C_AGENT = '[agent]\nname = "x"\nlanguage = "c"\n'
AS_AGENT = '[agent]\nname = "x"\nlanguage = "assemblyscript"\n'


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[agent\n", "not valid TOML: "),
        ('[agent]\nname = "x"\n', "agent.language: missing"),
        ('[agent]\nname = "X"\nlanguage = "c"\n', "agent.name: 'X' is not a valid agent name"),
        ('[agent]\nname = "x"\nlanguage = "rust"\n', "agent.language: unknown language 'rust'; known: "),
        (C_AGENT + 'nmae = "y"\n', 'agent.nmae: unknown field (did you mean "name"?)'),
        ("[agnet]\n", 'agnet: unknown table (did you mean "agent"?); known: agent, build'),
        (C_AGENT + '[build]\nsource = ["x.c"]\n',
         'build.source: unknown field for a c agent (did you mean "sources"?); known: cflags, output, sources'),
        (C_AGENT + '[build]\nsources = "x.c"\n', "build.sources: must be a list of strings"),
        (C_AGENT + '[build]\nsources = ["missing.c"]\n', "build.sources[0]: missing.c not found in "),
        (C_AGENT + '[build]\nsources = ["../x.c"]\n',
         "build.sources[0]: '../x.c' must be relative to the agent directory, without '..'"),
        (C_AGENT + '[build]\nsources = ["x.c"]\noutput = "x.bin"\n', "build.output: 'x.bin' must end in .wasm"),
        (AS_AGENT + '[build]\nentry = "assembly/main.ts"\n', "build.entry: assembly/main.ts not found in "),
    ],
    ids=["syntax", "no-language", "bad-name", "unknown-language", "unknown-agent-key", "unknown-table",
         "unknown-build-key", "sources-type", "missing-source", "escaping-source", "output-suffix", "missing-entry"],
)  # fmt: skip
def test_agent_toml_problems_name_the_file_and_field(tmp_path: Path, toml: str, message: str) -> None:
    (tmp_path / "agent.toml").write_text(toml)
    (tmp_path / "x.c").write_text("int main(void) { return 0; }\n")
    fake = FakeHost(modules={"ziglang"})
    with pytest.raises(UsageError) as refused:
        build_agent(tmp_path, host=fake.host())
    assert str(refused.value).startswith(f"{tmp_path / 'agent.toml'}: {message}"), refused.value
    assert fake.ran == []  # nothing was run


# ---- C -----------------------------------------------------------------------------------


def test_c_build_runs_zig_cc_with_the_packaged_header(tmp_path: Path) -> None:
    agent = new_agent(tmp_path, "c")
    fake = FakeHost(modules={"ziglang"}, answers=[((PYTHON, "-m", "ziglang", "cc"), 0, "", "")],
                    on_run={"cc": _write_module})  # fmt: skip
    lines: list[str] = []
    built = build_agent(agent, host=fake.host(), progress=lines.append)
    assert built.module == agent / "build" / "hello.wasm" and built.size == len(MINIMAL_AGENT)
    [(argv, cwd)] = fake.ran
    with c_include_dir() as include:
        assert (include / "agentflow.h").is_file()
        assert argv == [PYTHON, "-m", "ziglang", "cc", "--target=wasm32-wasi",
                        "-O2", "-s", "-Wl,-z,stack-size=262144", "-I", str(include),
                        str(agent / "hello.c"), "-o", str(agent / "build" / "hello.wasm")]  # fmt: skip
    assert cwd == agent
    assert any(line.startswith("compiling hello.c with zig cc") for line in lines)


def test_c_toolchain_is_installed_with_pip_on_first_use(tmp_path: Path) -> None:
    agent = new_agent(tmp_path, "c")
    fake = FakeHost(answers=[((PYTHON, "-m", "pip", "install"), 0, "Successfully installed", ""),
                             ((PYTHON, "-m", "ziglang", "cc"), 0, "", "")])  # fmt: skip
    fake.on_run = {"install": lambda argv, cwd: fake.modules.add("ziglang"), "cc": _write_module}
    lines: list[str] = []
    build_agent(agent, host=fake.host(), progress=lines.append)
    assert fake.ran[0][0] == [PYTHON, "-m", "pip", "install", "--disable-pip-version-check", ZIGLANG_REQUIREMENT]
    assert (
        lines[0]
        == f"installing the C toolchain: pip install {ZIGLANG_REQUIREMENT} into {PYTHON} (once, about 50 MB) ..."
    )
    assert lines[1] == "installed the C toolchain (zig cc from the ziglang wheel)"


def test_c_toolchain_that_pip_cannot_install_says_what_and_how(tmp_path: Path) -> None:
    agent = new_agent(tmp_path, "c")
    fake = FakeHost(answers=[((PYTHON, "-m", "pip", "install"), 1, "",
                              "ERROR: Could not find a version that satisfies the requirement ziglang==0.17.1\n"
                              "ERROR: No matching distribution found (network unreachable)")])  # fmt: skip
    with pytest.raises(ToolchainMissing) as missing:
        build_agent(agent, host=fake.host())
    message = str(missing.value)
    assert message.startswith(
        f"the C toolchain (zig cc, from the {ZIGLANG_REQUIREMENT} wheel) is not installed and pip could not "
        "install it (exit code 1; is PyPI reachable?):"
    )
    assert "No matching distribution found (network unreachable)" in message
    assert f"install it yourself with `{PYTHON} -m pip install {ZIGLANG_REQUIREMENT}`" in message
    assert missing.value.exit_code == 1
    assert not (agent / "build" / "hello.wasm").exists()


def test_c_toolchain_without_pip_says_to_install_pip(tmp_path: Path) -> None:
    agent = new_agent(tmp_path, "c")
    fake = FakeHost(answers=[((PYTHON, "-m", "pip"), 1, "", f"{PYTHON}: No module named pip")])
    with pytest.raises(ToolchainMissing, match=r"has no pip to install it: install pip \(Debian/Ubuntu: python3-pip"):
        build_agent(agent, host=fake.host())


def test_a_compile_error_is_shown_with_the_compiler_output(tmp_path: Path) -> None:
    agent = new_agent(tmp_path, "c")
    error = "hello.c:3:5: error: use of undeclared identifier 'oops'"
    fake = FakeHost(modules={"ziglang"}, answers=[((PYTHON, "-m", "ziglang", "cc"), 1, "", error)])
    with pytest.raises(BuildFailed) as failed:
        build_agent(agent, host=fake.host())
    assert str(failed.value).startswith(
        f"{agent}: zig cc exited with code 1:\n  {error}\n(command: {PYTHON} -m ziglang cc"
    )
    assert failed.value.exit_code == 1


def test_a_module_the_node_could_not_run_fails_the_build(tmp_path: Path) -> None:
    agent = new_agent(tmp_path, "c")

    def write_junk(argv: Sequence[str], cwd: Path | None) -> None:
        (agent / "build").mkdir(exist_ok=True)
        (agent / "build" / "hello.wasm").write_bytes(b"not wasm")

    fake = FakeHost(
        modules={"ziglang"}, answers=[((PYTHON, "-m", "ziglang", "cc"), 0, "", "")], on_run={"cc": write_junk}
    )
    with pytest.raises(BuildFailed) as failed:
        build_agent(agent, host=fake.host())
    module = agent / "build" / "hello.wasm"
    why = "is not a WebAssembly module (it does not start with \\0asm)"
    assert str(failed.value) == f"{module}: the built module {why}"


# ---- AssemblyScript ------------------------------------------------------------------------


def test_assemblyscript_without_npm_names_nodejs_and_npm(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    agent = new_agent(tmp_path, "assemblyscript")
    fake = FakeHost(programs={"node": "/usr/bin/node"})
    with pytest.raises(ToolchainMissing) as missing:
        build_agent(agent, host=fake.host())
    assert str(missing.value) == (
        "npm not found on PATH: AssemblyScript agents build with the npm packages assemblyscript and "
        "@assemblyscript/wasi-shim; install Node.js (18 or newer) and npm: on Debian/Ubuntu "
        "`sudo apt-get install nodejs npm`, elsewhere https://nodejs.org/, then run agentflow agent build again"
    )
    assert fake.ran == []


def test_assemblyscript_runs_npm_install_once_then_asc(tmp_path: Path) -> None:
    agent = new_agent(tmp_path, "assemblyscript")

    def npm_install(argv: Sequence[str], cwd: Path | None) -> None:
        assert cwd == agent
        bin_dir = agent / "node_modules" / ".bin"
        bin_dir.mkdir(parents=True)
        (bin_dir / "asc").write_text("#!/bin/sh\n")
        shim = agent / "node_modules" / "@assemblyscript" / "wasi-shim"
        shim.mkdir(parents=True)
        (shim / "asconfig.json").write_text("{}")

    asc = str(agent / "node_modules" / ".bin" / "asc")
    fake = FakeHost(programs={"node": "/usr/bin/node", "npm": "/usr/bin/npm"},
                    answers=[(("/usr/bin/npm", "install"), 0, "", ""), ((asc,), 0, "", "")],
                    on_run={"install": npm_install, asc: _write_module})  # fmt: skip
    lines: list[str] = []
    build_agent(agent, host=fake.host(), progress=lines.append)
    assert [argv for argv, _ in fake.ran] == [
        ["/usr/bin/npm", "install", "--no-audit", "--no-fund", "--loglevel=error"],
        [asc, "assembly/index.ts", "--config", "asconfig.json", "--target", "release", "--outFile", "build/hello.wasm"],
    ]
    assert lines[0].startswith(f"installing the AssemblyScript toolchain into {agent / 'node_modules'}: npm install")
    fake.ran.clear()
    build_agent(agent, host=fake.host())
    assert [argv[0] for argv, _ in fake.ran] == [asc]  # installed: no second npm install


def test_a_failing_npm_install_names_the_registry_and_shows_npm_output(tmp_path: Path) -> None:
    agent = new_agent(tmp_path, "assemblyscript")
    npm_error = "npm error code ENOTFOUND\nnpm error network request failed"
    fake = FakeHost(programs={"node": "/usr/bin/node", "npm": "/usr/bin/npm"},
                    answers=[(("/usr/bin/npm", "install"), 1, "", npm_error),
                             (("/usr/bin/npm", "config", "get"), 0, "https://registry.npmjs.org/\n", "")])  # fmt: skip
    with pytest.raises(ToolchainMissing) as missing:
        build_agent(agent, host=fake.host())
    message = str(missing.value)
    assert message.startswith(
        f"npm install in {agent} failed (exit code 1); it fetches assemblyscript and @assemblyscript/wasi-shim "
        "from https://registry.npmjs.org/:\n"
    )
    assert "npm error network request failed" in message and "check the network" in message


# The one test here that runs the real zig cc: on a cold zig cache the first compile also builds
# wasi-libc, which takes well over the 30 s the fake-host tests get.
@pytest.mark.timeout(300)
def test_cli_build_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["agent", "build", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith(f"agentflow agent build: {tmp_path}: no agent.toml here")
    agent = new_agent(tmp_path, "c")
    (agent / "hello.c").write_text("int main(void) { return oops; }\n")
    assert main(["agent", "build", str(agent)]) == 1
    err = capsys.readouterr().err
    assert f"agentflow agent build: {agent}: zig cc exited with code 1:" in err
    assert "oops" in err


def test_cli_build_without_npm_on_path_exits_1_naming_nodejs_and_npm(tmp_path: Path) -> None:
    agent = new_agent(tmp_path, "assemblyscript")
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    done = subprocess.run([sys.executable, "-m", "agentflow.cli.main", "agent", "build", str(agent)],
                          env={**os.environ, "PATH": str(empty)}, capture_output=True, text=True, timeout=60,
                          check=False)  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert done.stdout == ""
    assert done.stderr.startswith("agentflow agent build: node and npm not found on PATH: ")
    assert "install Node.js (18 or newer) and npm: on Debian/Ubuntu `sudo apt-get install nodejs npm`" in done.stderr
    assert not (agent / "node_modules").exists()
