"""Durable state of the control plane: SQLite records and content-addressed module blobs."""

from controlplane.store.blobs import ModuleBlobs, StoredBlob
from controlplane.store.database import Database
from controlplane.store.records import (
    AttemptRecord,
    EventRecord,
    EventWhere,
    JournalRecord,
    ModuleRecord,
    NodeRecord,
    ReadyRow,
    RunRecord,
    RunTrace,
    StepRecord,
    WorkflowRecord,
    event_id,
)
from controlplane.store.store import Reader, StateStore, Tx

__all__ = [
    "AttemptRecord",
    "Database",
    "EventRecord",
    "EventWhere",
    "JournalRecord",
    "ModuleBlobs",
    "ModuleRecord",
    "NodeRecord",
    "Reader",
    "ReadyRow",
    "RunRecord",
    "RunTrace",
    "StateStore",
    "StepRecord",
    "StoredBlob",
    "Tx",
    "WorkflowRecord",
    "event_id",
]
