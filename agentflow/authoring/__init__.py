"""Writing agents: `agentflow agent new` scaffolds one, `agentflow agent build` compiles it.

The languages are entries of `languages.LANGUAGES`; each brings its templates (package data
under `templates/<language>/`), its helper library (the C header `c/agentflow.h`, the
AssemblyScript `assemblyscript/agentflow.ts`) and its toolchain (`toolchains.py`).
"""

from agentflow.authoring.build import Built, build_agent
from agentflow.authoring.errors import AuthoringError, BuildFailed, ToolchainMissing, UsageError
from agentflow.authoring.languages import LANGUAGES, Language, language_named, register
from agentflow.authoring.project import AGENT_FILE, AgentProject, load_project, name_problem
from agentflow.authoring.scaffold import Scaffolded, scaffold
from agentflow.authoring.toolchains import Host, Progress, c_include_dir

__all__ = [
    "AGENT_FILE",
    "LANGUAGES",
    "AgentProject",
    "AuthoringError",
    "BuildFailed",
    "Built",
    "Host",
    "Language",
    "Progress",
    "Scaffolded",
    "ToolchainMissing",
    "UsageError",
    "build_agent",
    "c_include_dir",
    "language_named",
    "load_project",
    "name_problem",
    "register",
    "scaffold",
]
