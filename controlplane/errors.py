"""Errors of the control plane. `controlplane.api.errors` maps them to gRPC status codes."""

from __future__ import annotations


class Error(Exception):
    """Root of every control-plane error."""


class NotFound(Error):
    """The named run, node or module does not exist."""


class InvalidArgument(Error):
    """A request is malformed; the message says which field and why (one problem per line)."""


class FailedPrecondition(Error):
    """The request is valid but the state forbids it (e.g. cancelling a finished run)."""


class AlreadyExists(Error):
    """The name is taken by a live object."""


class ResourceExhausted(Error):
    """A size or queue limit was hit."""


class Unauthenticated(Error):
    """The caller did not identify itself (e.g. a node stream without a node id)."""


class PermissionDenied(Error):
    """The caller is known, but may not do this (a node's certificate acting as another node)."""


class StorageError(Error):
    """The database or module store failed; the state was left as it was."""


class StorageFull(StorageError):
    """The disk under the data directory is full; the state was left as it was."""
