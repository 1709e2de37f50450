"""Building a Python agent (`agent.py` with `run(input)`) into a WASI preview 2 component.

The toolchain is `componentize-py` from PyPI, installed on first use into a per-user cache
(`$XDG_CACHE_HOME/agentflow/toolchains/componentize-py-<version>`), with a progress message,
and found there afterwards; the build bundles CPython, the guest `agentflow` library, the
agent's directory and the entry glue into one component of the `agent` world.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from agentflow.authoring.errors import BuildFailed, ToolchainMissing
from agentflow.authoring.project import AgentProject
from agentflow.authoring.toolchains import Host, Progress
from agentflow.sdk import PYTHON_GUEST_DIR, WIT_DIR, WORLD

COMPONENTIZE_PY_VERSION = "0.25.1"
ENTRY_MODULE = "app"  # agentflow/sdk/python/app.py: the world's `run`, calling agent.run
AGENT_MODULE = "agent.py"

PYTHON_BUILD_KEYS = frozenset({"output"})


def cache_home() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "agentflow" / "toolchains"


def toolchain_dir() -> Path:
    return cache_home() / f"componentize-py-{COMPONENTIZE_PY_VERSION}"


def ensure_componentize_py(progress: Progress) -> Path:
    """The componentize-py install to run, installing it into the per-user cache the first time."""
    target = toolchain_dir()
    if (target / "componentize_py").is_dir():
        return target
    progress(f"installing componentize-py {COMPONENTIZE_PY_VERSION} from PyPI into {target} (once) …")
    staging = target.with_name(target.name + f".partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    started = time.monotonic()
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--target",
           str(staging), f"componentize-py=={COMPONENTIZE_PY_VERSION}"]  # fmt: skip
    try:
        done = subprocess.run(pip, capture_output=True, text=True, check=False, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ToolchainMissing(f"cannot run pip to install componentize-py: {exc}") from None
    if done.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise ToolchainMissing(
            f"cannot install componentize-py {COMPONENTIZE_PY_VERSION} from PyPI (pip exited with "
            f"{done.returncode}):\n{tail}\nInstall it by hand with: pip install --target {target} "
            f"componentize-py=={COMPONENTIZE_PY_VERSION}"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        staging.rename(target)
    except OSError:  # another build installed it meanwhile
        shutil.rmtree(staging, ignore_errors=True)
    progress(f"installed componentize-py in {time.monotonic() - started:.0f}s")
    return target


def build_python_agent(agent_dir: Path, output: Path, progress: Progress) -> Path:
    """Build `agent_dir` (its `agent.py` defines `run(input)`) into the component `output`."""
    agent_dir, output = agent_dir.resolve(), output.resolve()
    if not (agent_dir / AGENT_MODULE).is_file():
        raise BuildFailed(f"{agent_dir / AGENT_MODULE}: not found (a Python agent defines run(input) in it)")
    toolchain = ensure_componentize_py(progress)
    output.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-c", "from componentize_py import script; script()",
               "-d", str(WIT_DIR), "-w", WORLD, "componentize",
               "-p", str(PYTHON_GUEST_DIR), "-p", str(agent_dir), ENTRY_MODULE, "-o", str(output)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(toolchain)}
    progress(f"building {output} with componentize-py (CPython and the agent into one component) …")
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env, cwd=agent_dir)
    if done.returncode != 0:
        raise BuildFailed(_compiler_error(done.stderr or done.stdout))
    return output


def _compiler_error(text: str) -> str:
    """componentize-py's message without its Rust backtrace."""
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("  ")]
    kept = [line for line in lines if not line.startswith(("Stack backtrace", "Caused by"))]
    return "\n".join(kept[-12:]) or "componentize-py failed"


def python_toolchain_status(host: Host) -> str | None:
    """None when componentize-py is in the cache, else what the first build installs."""
    if (toolchain_dir() / "componentize_py").is_dir():
        return None
    return (
        f"the first build installs componentize-py {COMPONENTIZE_PY_VERSION} from PyPI (about 20 MB) "
        f"into {toolchain_dir()}"
    )


def build_python(project: AgentProject, host: Host, progress: Progress) -> Path:
    """agent.py and its directory, CPython and the guest library: one component at build.output."""
    return build_python_agent(project.dir, project.output(), progress)
