"""`agentflow agent new`: a new agent directory from a language's templates.

The files are written into a temporary directory beside the target and moved into place at
the end, so a refused or failed scaffold leaves nothing behind.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path, PurePosixPath

from agentflow.authoring.errors import UsageError
from agentflow.authoring.languages import Language
from agentflow.authoring.project import AGENT_FILE, name_problem

NAME_PLACEHOLDER = "{{name}}"
NAME_IN_PATH = "__name__"
DOT_PREFIX = "dot-"  # templates/x/dot-gitignore becomes .gitignore


@dataclass(frozen=True, slots=True)
class Scaffolded:
    dir: Path
    files: tuple[PurePosixPath, ...]
    """Paths relative to `dir`, sorted."""


def package_root() -> Traversable:
    return resources.files("agentflow.authoring")


def resource(spec: str) -> Traversable:
    """The file or directory named "package:path" (path with '/'), e.g. "agentflow.authoring:c"."""
    package, sep, path = spec.partition(":")
    if not sep or not package or not path:
        raise ValueError(f"library resource {spec!r} must be 'package:path'")
    node = resources.files(package)
    for part in path.split("/"):
        node = node / part
    return node


def _walk(node: Traversable, prefix: PurePosixPath) -> Iterator[tuple[PurePosixPath, Traversable]]:
    for child in sorted(node.iterdir(), key=lambda c: c.name):
        if child.name == "__pycache__":
            continue
        rel = prefix / child.name
        if child.is_dir():
            yield from _walk(child, rel)
        else:
            yield rel, child


def _destination(template_path: PurePosixPath, name: str) -> PurePosixPath:
    parts = [p.replace(NAME_IN_PATH, name) for p in template_path.parts]
    parts = ["." + p[len(DOT_PREFIX) :] if p.startswith(DOT_PREFIX) else p for p in parts]
    return PurePosixPath(*parts)


def render(language: Language, name: str) -> dict[PurePosixPath, bytes]:
    """Every file of a new agent `name` in `language`: relative path -> content."""
    templates = package_root() / "templates" / language.templates
    if not templates.is_dir():
        raise RuntimeError(f"the {language.name} templates are missing from the agentflow package ({templates})")
    files: dict[PurePosixPath, bytes] = {}
    for rel, node in _walk(templates, PurePosixPath()):
        files[_destination(rel, name)] = node.read_text().replace(NAME_PLACEHOLDER, name).encode()
    for destination, spec in language.library.items():
        node = resource(spec)
        if node.is_dir():
            for rel, child in _walk(node, PurePosixPath(destination)):
                files[rel] = child.read_bytes()
        elif node.is_file():
            files[PurePosixPath(destination)] = node.read_bytes()
        else:
            raise RuntimeError(f"the {language.name} library {spec} is missing from its package")
    if PurePosixPath(AGENT_FILE) not in files:
        raise RuntimeError(f"the {language.name} templates have no {AGENT_FILE}")
    return files


def _check_target(target: Path) -> None:
    if not target.parent.is_dir():
        raise UsageError(f"{target.parent}: no such directory (the parent of the new agent; see --dir)")
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise UsageError(f"{target}: already exists and is not a directory; pick another NAME or --dir")
    if target.is_dir():
        entries = sorted(os.listdir(target))
        if entries:
            shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
            count = f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'}"
            raise UsageError(
                f"{target}: already exists and is not empty ({count}: {shown}); "
                "pick another NAME or --dir, or remove it"
            )


def scaffold(name: str, language: Language, parent: Path) -> Scaffolded:
    """Creates `parent/name` holding a working agent called `name` in `language`."""
    problem = name_problem(name)
    if problem is not None:
        raise UsageError(f"NAME: {problem}")
    target = parent / name
    _check_target(target)
    files = render(language, name)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=parent))
    try:
        for rel, content in files.items():
            path = staging / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        staging.chmod(0o777 & ~_umask())
        os.replace(staging, target)  # onto an absent or empty directory
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Scaffolded(dir=target, files=tuple(sorted(files)))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
