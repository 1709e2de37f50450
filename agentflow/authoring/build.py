"""`agentflow agent build`: an agent directory's module, built by its language's toolchain and
checked with the same test `agentflow validate` and the control plane apply."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from agentflow.authoring.errors import BuildFailed
from agentflow.authoring.languages import Language, language_named
from agentflow.authoring.project import AgentProject, load_project
from agentflow.authoring.toolchains import Host, Progress
from agentflow.wasm_check import module_problem


@dataclass(frozen=True, slots=True)
class Built:
    project: AgentProject
    language: Language
    module: Path
    size: int
    seconds: float


def build_agent(directory: Path, *, host: Host | None = None, progress: Progress = lambda line: None) -> Built:
    """Builds the agent in `directory` (its agent.toml says how); raises an AuthoringError subclass."""
    started = time.monotonic()
    project = load_project(directory)
    language = language_named(project.language, where=f"{project.manifest}: agent.language")
    project.check_build_keys(language.build_keys)
    module = language.build(project, host or Host(), progress)
    try:
        data = module.read_bytes()
    except OSError as exc:
        raise BuildFailed(f"{module}: the build wrote no module ({exc.strerror or exc})") from None
    problem = module_problem(data)
    if problem is not None:
        raise BuildFailed(f"{module}: the built module {problem}")
    return Built(project=project, language=language, module=module, size=len(data),
                 seconds=time.monotonic() - started)  # fmt: skip
