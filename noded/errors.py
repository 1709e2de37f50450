"""Errors of the node daemon."""

from agentflow.daemon import FatalError


class Error(Exception):
    """Root of every noded error."""


class ModuleFetchError(Error):
    """A module could not be fetched or did not match its digest."""


class StateError(Error):
    """The node's local state (its identity or outbox) could not be read or written."""


class StateFull(StateError):
    """The disk under the node's data dir is full; nothing was written."""


class NotConnected(Error):
    """The node has no stream to the control plane right now."""


class NotConfirmed(Error):
    """The control plane did not answer the node's request in time."""


class RegistrationError(Error, FatalError):
    """The control plane refused this node (e.g. its name is taken)."""
