"""Errors of the node daemon."""

from agentflow.daemon import FatalError


class Error(Exception):
    """Root of every noded error."""


class ModuleFetchError(Error):
    """A module could not be fetched or did not match its digest."""


class RegistrationError(Error, FatalError):
    """The control plane refused this node (e.g. its name is taken)."""
