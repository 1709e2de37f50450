"""The languages an agent can be written in: one `Language` entry each, in `LANGUAGES`.

An entry says everything `agentflow agent new|build` need to know about a language:

- `templates`: the directory under `agentflow/authoring/templates/` scaffolded into a new agent
  (`__name__` in a file name and `{{name}}` in a file's text become the agent's name; a leading
  `dot-` becomes `.`). It must hold an `agent.toml` whose `agent.language` is the entry's name.
- `library`: files (or directories) of an installed package copied into the new agent as they
  are (its helper library), each named "package:path", e.g. "agentflow.authoring:c/agentflow.h".
- `build`: turns the agent directory into its module (`build.output` of agent.toml) and returns
  the module's path; `build_keys` are the `[build]` keys it accepts.
- `toolchain_status`: None when the build tools are ready, else a sentence on what the first
  build installs or what is missing (shown by `agentflow agent new`).

Adding a language is one `register(Language(...))` call below, plus its templates directory.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from agentflow.authoring import python, toolchains
from agentflow.authoring.errors import UsageError
from agentflow.authoring.project import AgentProject
from agentflow.authoring.toolchains import Host, Progress
from agentflow.spec.suggest import did_you_mean

BuildFunction = Callable[[AgentProject, Host, Progress], Path]


@dataclass(frozen=True, slots=True, kw_only=True)
class Language:
    name: str
    """What `--lang` and agent.toml's `agent.language` say, e.g. "c"."""
    title: str
    """For people, e.g. "C"."""
    templates: str
    """Directory under agentflow/authoring/templates/."""
    build: BuildFunction
    build_keys: frozenset[str]
    toolchain_status: Callable[[Host], str | None]
    source: str
    """The file a new agent's author edits first (after the name is filled in)."""
    library: Mapping[str, str] = field(default_factory=dict)
    """Destination in the new agent -> "package:path" of a file or directory to copy there."""
    aliases: tuple[str, ...] = ()


LANGUAGES: dict[str, Language] = {}
"""Every language by its name, in registration order."""
_ALIASES: dict[str, str] = {}


def register(language: Language) -> Language:
    for key in (language.name, *language.aliases):
        if key in LANGUAGES or key in _ALIASES:
            raise ValueError(f"language {key!r} is registered twice")
    LANGUAGES[language.name] = language
    for alias in language.aliases:
        _ALIASES[alias] = language.name
    return language


def language_named(name: str, *, where: str = "--lang") -> Language:
    """The language called `name` (or one of its aliases), or UsageError listing the known ones."""
    found = LANGUAGES.get(_ALIASES.get(name, name))
    if found is None:
        known = ", ".join(LANGUAGES)
        raise UsageError(f"{where}: unknown language {name!r}{did_you_mean(name, LANGUAGES)}; known: {known}")
    return found


C = register(
    Language(
        name="c",
        title="C",
        templates="c",
        build=toolchains.build_c,
        build_keys=toolchains.C_BUILD_KEYS,
        toolchain_status=toolchains.c_toolchain_status,
        source="__name__.c",
    )
)

ASSEMBLYSCRIPT = register(
    Language(
        name="assemblyscript",
        title="AssemblyScript",
        templates="assemblyscript",
        build=toolchains.build_assemblyscript,
        build_keys=toolchains.ASSEMBLYSCRIPT_BUILD_KEYS,
        toolchain_status=toolchains.assemblyscript_toolchain_status,
        source="assembly/index.ts",
        library={"assembly/agentflow.ts": "agentflow.authoring:assemblyscript/agentflow.ts"},
        aliases=("as",),
    )
)

PYTHON = register(
    Language(
        name="python",
        title="Python",
        templates="python",
        build=python.build_python,
        build_keys=python.PYTHON_BUILD_KEYS,
        toolchain_status=python.python_toolchain_status,
        source="agent.py",
        aliases=("py",),
    )
)
