"""What `agentflow agent new|build` refuse or fail with, each carrying the CLI's exit code."""

from __future__ import annotations

EXIT_FAILED = 1
EXIT_USAGE = 2


class AuthoringError(Exception):
    """A refusal that names the file, field or argument at fault and why."""

    exit_code = EXIT_USAGE


class UsageError(AuthoringError):
    """Bad arguments or a bad agent.toml: nothing was written or built (exit code 2)."""

    exit_code = EXIT_USAGE


class BuildFailed(AuthoringError):
    """The compiler (or a step of the build) failed (exit code 1)."""

    exit_code = EXIT_FAILED


class ToolchainMissing(BuildFailed):
    """A tool the build needs is not installed and could not be installed: the message says
    what is missing and how to get it (exit code 1)."""
