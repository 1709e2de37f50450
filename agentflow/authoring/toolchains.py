"""Finding, installing and running the compilers that turn an agent's source into a module.

Every toolchain installs from a package registry on first use, with a progress message:

- C: `zig cc` from the `ziglang` wheel (PyPI), installed with pip into the Python that runs
  agentflow; the AgentFlow header ships inside this package (`agentflow/authoring/c`).
- AssemblyScript: npm packages `assemblyscript` and `@assemblyscript/wasi-shim`, installed by
  `npm install` into the agent's own `node_modules` (npm keeps its usual cache; nothing else
  is cached globally).

When a tool is missing and cannot be installed, `ToolchainMissing` says what and how to get it.
All commands go through a `Host`, so tests can stand in for PATH, pip and npm.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from agentflow.authoring.errors import BuildFailed, ToolchainMissing, UsageError
from agentflow.authoring.project import AgentProject

Progress = Callable[[str], None]
"""Receives one line of progress ("installing ...", "compiling ...") for the user."""

Completed = subprocess.CompletedProcess[str]
Runner = Callable[[Sequence[str], Path | None], Completed]

ZIGLANG_REQUIREMENT = "ziglang==0.17.1"  # the same pin as the `agents` extra in pyproject.toml
ZIG_TARGET = "--target=wasm32-wasi"
DEFAULT_CFLAGS = ("-O2", "-s", "-Wl,-z,stack-size=262144")
"""A 256 KiB stack instead of zig's 16 MiB keeps a small agent's memory near 1 MiB (as mk/agents.mk)."""

ASSEMBLYSCRIPT_PACKAGES = ("assemblyscript", "@assemblyscript/wasi-shim")
NODE_HINT = (
    "install Node.js (18 or newer) and npm: on Debian/Ubuntu `sudo apt-get install nodejs npm`, "
    "elsewhere https://nodejs.org/"
)
_TAIL_LINES = 30


def _run(argv: Sequence[str], cwd: Path | None) -> Completed:
    return subprocess.run(list(argv), cwd=cwd, capture_output=True, text=True, check=False)


def _has_module(python: str, module: str) -> bool:
    if python == sys.executable:
        importlib.invalidate_caches()  # pip may have installed it since the last look
        return importlib.util.find_spec(module) is not None
    probe = subprocess.run([python, "-c", f"import {module}"], capture_output=True, check=False)
    return probe.returncode == 0


@dataclass(frozen=True, slots=True)
class Host:
    """The machine the build runs on: which Python, how to find and run programs."""

    python: str = sys.executable
    which: Callable[[str], str | None] = shutil.which
    run: Runner = _run
    has_module: Callable[[str, str], bool] = _has_module


def tail(text: str, lines: int = _TAIL_LINES) -> str:
    kept = text.strip().splitlines()[-lines:]
    return "\n".join("  " + line for line in kept)


def _output_of(done: Completed) -> str:
    return tail((done.stdout or "") + "\n" + (done.stderr or ""))


@contextmanager
def c_include_dir() -> Iterator[Path]:
    """The directory holding agentflow.h, as a real path for the compiler's -I."""
    with resources.as_file(resources.files("agentflow.authoring") / "c") as path:
        yield Path(path)


# ---- C: zig cc from the ziglang wheel ------------------------------------------------------


def c_toolchain_status(host: Host) -> str | None:
    """None when `zig cc` is ready, else what the first build will install."""
    if host.has_module(host.python, "ziglang"):
        return None
    return f"the first build installs the C toolchain with pip ({ZIGLANG_REQUIREMENT}, about 50 MB)"


def ensure_zig(host: Host, progress: Progress) -> None:
    """Installs the ziglang wheel into the running Python unless it is there."""
    if host.has_module(host.python, "ziglang"):
        return
    command = [host.python, "-m", "pip", "install", "--disable-pip-version-check", ZIGLANG_REQUIREMENT]
    progress(
        f"installing the C toolchain: pip install {ZIGLANG_REQUIREMENT} into {host.python} (once, about 50 MB) ..."
    )
    done = host.run(command, None)
    if done.returncode == 0 and host.has_module(host.python, "ziglang"):
        progress("installed the C toolchain (zig cc from the ziglang wheel)")
        return
    output = (done.stdout or "") + (done.stderr or "")
    how = f"install it yourself with `{host.python} -m pip install {ZIGLANG_REQUIREMENT}`" + (
        " or `pip install 'agentflow[agents]'`"
    )
    if done.returncode == 0:
        raise ToolchainMissing(
            f"pip installed {ZIGLANG_REQUIREMENT} but {host.python} cannot import ziglang:\n{tail(output)}\n{how}"
        )
    if "No module named pip" in output:
        raise ToolchainMissing(
            f"the C toolchain (zig cc, from the {ZIGLANG_REQUIREMENT} wheel) is not installed and "
            f"{host.python} has no pip to install it: install pip (Debian/Ubuntu: python3-pip, or "
            f"`{host.python} -m ensurepip`), then {how}"
        )
    raise ToolchainMissing(
        f"the C toolchain (zig cc, from the {ZIGLANG_REQUIREMENT} wheel) is not installed and pip could "
        f"not install it (exit code {done.returncode}; is PyPI reachable?):\n{tail(output)}\n{how}, "
        "then run agentflow agent build again"
    )


def _zig_cache_dir() -> Path:
    if os.environ.get("ZIG_GLOBAL_CACHE_DIR"):
        return Path(os.environ["ZIG_GLOBAL_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "zig"


C_BUILD_KEYS = frozenset({"sources", "output", "cflags"})


def build_c(project: AgentProject, host: Host, progress: Progress) -> Path:
    """`zig cc --target=wasm32-wasi CFLAGS -I <agentflow.h> SOURCES -o OUTPUT`."""
    sources = project.string_list("sources", [f"{project.name}.c"])
    if not sources:
        raise project.problem("build.sources", "must name at least one .c file")
    files = [project.existing_file("sources", s, field=f"build.sources[{i}]") for i, s in enumerate(sources)]
    cflags = project.string_list("cflags", list(DEFAULT_CFLAGS))
    output = project.output()
    ensure_zig(host, progress)
    output.parent.mkdir(parents=True, exist_ok=True)
    if not _zig_cache_dir().exists():
        progress("the first zig build also builds wasi-libc (about 30 s, then cached)")
    progress(f"compiling {', '.join(sources)} with zig cc ({ZIG_TARGET})")
    with c_include_dir() as include:
        command = [host.python, "-m", "ziglang", "cc", ZIG_TARGET, *cflags, "-I", str(include),
                   *(str(f) for f in files), "-o", str(output)]  # fmt: skip
        done = host.run(command, project.dir)
    if done.returncode != 0:
        raise BuildFailed(
            f"{project.dir}: zig cc exited with code {done.returncode}:\n{_output_of(done)}\n"
            f"(command: {' '.join(command)})"
        )
    return output


# ---- AssemblyScript: asc with the WASI shim, from npm ----------------------------------------


def _npm(host: Host) -> tuple[str, str]:
    """Paths of npm and node, or ToolchainMissing naming what is missing."""
    npm, node = host.which("npm"), host.which("node")
    if npm is None or node is None:
        missing = " and ".join(name for name, path in (("node", node), ("npm", npm)) if path is None)
        raise ToolchainMissing(
            f"{missing} not found on PATH: AssemblyScript agents build with the npm packages "
            f"{' and '.join(ASSEMBLYSCRIPT_PACKAGES)}; {NODE_HINT}, then run agentflow agent build again"
        )
    return npm, node


def assemblyscript_toolchain_status(host: Host) -> str | None:
    """None when npm and node are on PATH (the packages install on the first build), else what is missing."""
    try:
        _npm(host)
    except ToolchainMissing as exc:
        return str(exc)
    return None


def _asc(project: AgentProject) -> Path:
    return project.dir / "node_modules" / ".bin" / "asc"


def _installed(project: AgentProject) -> bool:
    shim = project.dir / "node_modules" / "@assemblyscript" / "wasi-shim" / "asconfig.json"
    return _asc(project).exists() and shim.is_file()


def ensure_node_modules(project: AgentProject, host: Host, progress: Progress) -> None:
    """`npm install` in the agent directory, unless its node_modules has the compiler and the shim."""
    npm, _ = _npm(host)
    if _installed(project):
        return
    if not (project.dir / "package.json").is_file():
        raise UsageError(f"{project.dir}: package.json not found (npm install reads the compiler's packages from it)")
    progress(
        f"installing the AssemblyScript toolchain into {project.dir / 'node_modules'}: npm install "
        f"({', '.join(ASSEMBLYSCRIPT_PACKAGES)}; once per agent, up to a minute) ..."
    )
    done = host.run([npm, "install", "--no-audit", "--no-fund", "--loglevel=error"], project.dir)
    if done.returncode != 0:
        registry = host.run([npm, "config", "get", "registry"], project.dir).stdout.strip() or "the npm registry"
        raise ToolchainMissing(
            f"npm install in {project.dir} failed (exit code {done.returncode}); it fetches "
            f"{' and '.join(ASSEMBLYSCRIPT_PACKAGES)} from {registry}:\n{_output_of(done)}\n"
            "check the network (or set another registry with `npm config set registry URL`), "
            "then run agentflow agent build again"
        )
    if not _installed(project):
        raise ToolchainMissing(
            f"npm install in {project.dir} succeeded but left no node_modules/.bin/asc or "
            "@assemblyscript/wasi-shim: check package.json's devDependencies "
            f"({', '.join(ASSEMBLYSCRIPT_PACKAGES)})"
        )
    progress("installed the AssemblyScript toolchain")


ASSEMBLYSCRIPT_BUILD_KEYS = frozenset({"entry", "output", "target"})


def build_assemblyscript(project: AgentProject, host: Host, progress: Progress) -> Path:
    """`asc ENTRY --config asconfig.json --target TARGET --outFile OUTPUT` (asconfig.json extends the WASI shim)."""
    entry = project.existing_file("entry", project.build.get("entry", "assembly/index.ts"))
    target = project.build.get("target", "release")
    if not isinstance(target, str) or not target:
        raise project.problem("build.target", "must be the name of a target in asconfig.json, e.g. release")
    if not (project.dir / "asconfig.json").is_file():
        raise UsageError(f"{project.dir}: asconfig.json not found (the compiler's targets, extending the WASI shim's)")
    output = project.output()
    ensure_node_modules(project, host, progress)
    output.parent.mkdir(parents=True, exist_ok=True)
    progress(f"compiling {entry.relative_to(project.dir)} with asc (AssemblyScript, WASI shim)")
    command = [str(_asc(project)), str(entry.relative_to(project.dir)), "--config", "asconfig.json",
               "--target", target, "--outFile", str(output.relative_to(project.dir))]  # fmt: skip
    done = host.run(command, project.dir)
    if done.returncode != 0:
        raise BuildFailed(
            f"{project.dir}: asc exited with code {done.returncode}:\n{_output_of(done)}\n"
            f"(command: {' '.join(command)})"
        )
    return output
