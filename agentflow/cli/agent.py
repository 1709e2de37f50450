"""`agentflow agent new|build`: write an agent in C or AssemblyScript, from nothing to a module."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from agentflow.authoring import LANGUAGES, AuthoringError, build_agent, language_named, scaffold
from agentflow.authoring.errors import EXIT_FAILED, EXIT_USAGE
from agentflow.authoring.toolchains import Host

EXIT_OK = 0

EPILOG = f"""\
exit codes: {EXIT_OK} done; {EXIT_FAILED} the build failed, or a toolchain it needs is missing and could
            not be installed (the message says what and how to get it); {EXIT_USAGE} bad NAME, --lang
            or directory, or a bad agent.toml
"""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    agent = sub.add_parser(
        "agent",
        help="write an agent: scaffold one (new) and compile it to WebAssembly (build)",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    agent_sub = agent.add_subparsers(dest="agent_command", metavar="new|build", required=True)
    langs = ", ".join(LANGUAGES)
    new = agent_sub.add_parser(
        "new",
        help="create ./NAME: an agent's source, agent.toml, workflow.yaml and README.md",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    new.add_argument(
        "name", metavar="NAME", help="lowercase letters, digits and '-' (names the directory, module, workflow)"
    )
    new.add_argument("--lang", required=True, metavar="LANGUAGE", help=f"one of: {langs}")
    new.add_argument("--dir", type=Path, default=Path("."), metavar="PARENT",
                     help="create the agent in PARENT/NAME (default: the current directory)")  # fmt: skip
    new.set_defaults(handler=cmd_agent_new)
    build = agent_sub.add_parser(
        "build",
        help="compile the agent in DIR to its module (installs the toolchain on first use)",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    build.add_argument("dir", nargs="?", type=Path, default=Path("."), metavar="DIR",
                       help="the agent's directory, holding agent.toml (default: the current directory)")  # fmt: skip
    build.set_defaults(handler=cmd_agent_build)


def _progress(line: str) -> None:
    print(f"agentflow agent build: {line}", file=sys.stderr, flush=True)


def cmd_agent_new(args: argparse.Namespace, out: TextIO) -> int:
    try:
        language = language_named(args.lang)
        made = scaffold(args.name, language, args.dir)
    except AuthoringError as exc:
        print(f"agentflow agent new: {exc}", file=sys.stderr)
        return exc.exit_code
    print(f"created {language.title} agent {args.name} in {made.dir}:", file=out)
    for rel in made.files:
        print(f"  {rel}", file=out)
    source = language.source.replace("__name__", args.name)
    print(f"next (then edit {source}):", file=out)
    print(f"  cd {made.dir}", file=out)
    print("  agentflow agent build", file=out)
    print('  agentflow run workflow.yaml --input \'{"text": "hello wasm world"}\' --wait', file=out)
    note = language.toolchain_status(Host())
    if note:
        print(f"note: {note}", file=out)
    return EXIT_OK


def cmd_agent_build(args: argparse.Namespace, out: TextIO) -> int:
    try:
        built = build_agent(args.dir, progress=_progress)
    except AuthoringError as exc:
        print(f"agentflow agent build: {exc}", file=sys.stderr)
        return exc.exit_code
    print(
        f"built {built.module} ({built.language.title}, {built.size:,} bytes, {built.seconds:.1f} s)",
        file=out,
    )
    return EXIT_OK
