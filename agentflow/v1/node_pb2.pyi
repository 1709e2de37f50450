import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from agentflow.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RegisterRequest(_message.Message):
    __slots__ = ("name", "node_id", "labels", "capacity", "isolation", "version", "join_token", "sandbox_layers")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    ISOLATION_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    JOIN_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SANDBOX_LAYERS_FIELD_NUMBER: _ClassVar[int]
    name: str
    node_id: str
    labels: _containers.ScalarMap[str, str]
    capacity: _types_pb2.Resources
    isolation: _types_pb2.Isolation
    version: str
    join_token: str
    sandbox_layers: _containers.RepeatedScalarFieldContainer[_types_pb2.SandboxLayer]
    def __init__(self, name: _Optional[str] = ..., node_id: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., capacity: _Optional[_Union[_types_pb2.Resources, _Mapping]] = ..., isolation: _Optional[_Union[_types_pb2.Isolation, str]] = ..., version: _Optional[str] = ..., join_token: _Optional[str] = ..., sandbox_layers: _Optional[_Iterable[_Union[_types_pb2.SandboxLayer, str]]] = ...) -> None: ...

class RegisterResponse(_message.Message):
    __slots__ = ("node_id", "heartbeat_interval", "heartbeat_ttl")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_TTL_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    heartbeat_interval: _duration_pb2.Duration
    heartbeat_ttl: _duration_pb2.Duration
    def __init__(self, node_id: _Optional[str] = ..., heartbeat_interval: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., heartbeat_ttl: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class AttemptRef(_message.Message):
    __slots__ = ("run_id", "step", "attempt")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    step: str
    attempt: int
    def __init__(self, run_id: _Optional[str] = ..., step: _Optional[str] = ..., attempt: _Optional[int] = ...) -> None: ...

class NodeMessage(_message.Message):
    __slots__ = ("hello", "heartbeat", "started", "result", "drain", "goodbye", "journal", "batch")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    DRAIN_FIELD_NUMBER: _ClassVar[int]
    GOODBYE_FIELD_NUMBER: _ClassVar[int]
    JOURNAL_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    hello: Hello
    heartbeat: Heartbeat
    started: StepStarted
    result: _types_pb2.StepResult
    drain: DrainRequest
    goodbye: Goodbye
    journal: Journal
    batch: NodeMessages
    def __init__(self, hello: _Optional[_Union[Hello, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., started: _Optional[_Union[StepStarted, _Mapping]] = ..., result: _Optional[_Union[_types_pb2.StepResult, _Mapping]] = ..., drain: _Optional[_Union[DrainRequest, _Mapping]] = ..., goodbye: _Optional[_Union[Goodbye, _Mapping]] = ..., journal: _Optional[_Union[Journal, _Mapping]] = ..., batch: _Optional[_Union[NodeMessages, _Mapping]] = ...) -> None: ...

class NodeMessages(_message.Message):
    __slots__ = ("messages",)
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[NodeMessage]
    def __init__(self, messages: _Optional[_Iterable[_Union[NodeMessage, _Mapping]]] = ...) -> None: ...

class Journal(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[_types_pb2.JournalEntry]
    def __init__(self, entries: _Optional[_Iterable[_Union[_types_pb2.JournalEntry, _Mapping]]] = ...) -> None: ...

class JournalAck(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[_types_pb2.JournalEntry]
    def __init__(self, entries: _Optional[_Iterable[_Union[_types_pb2.JournalEntry, _Mapping]]] = ...) -> None: ...

class Goodbye(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DrainRequest(_message.Message):
    __slots__ = ("draining", "deadline")
    DRAINING_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_FIELD_NUMBER: _ClassVar[int]
    draining: bool
    deadline: _duration_pb2.Duration
    def __init__(self, draining: _Optional[bool] = ..., deadline: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class Hello(_message.Message):
    __slots__ = ("in_flight", "unacked")
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    UNACKED_FIELD_NUMBER: _ClassVar[int]
    in_flight: _containers.RepeatedCompositeFieldContainer[AttemptRef]
    unacked: _containers.RepeatedCompositeFieldContainer[AttemptRef]
    def __init__(self, in_flight: _Optional[_Iterable[_Union[AttemptRef, _Mapping]]] = ..., unacked: _Optional[_Iterable[_Union[AttemptRef, _Mapping]]] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("time", "running", "idle_workers")
    TIME_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    IDLE_WORKERS_FIELD_NUMBER: _ClassVar[int]
    time: _timestamp_pb2.Timestamp
    running: int
    idle_workers: int
    def __init__(self, time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., running: _Optional[int] = ..., idle_workers: _Optional[int] = ...) -> None: ...

class StepStarted(_message.Message):
    __slots__ = ("attempt",)
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    attempt: AttemptRef
    def __init__(self, attempt: _Optional[_Union[AttemptRef, _Mapping]] = ...) -> None: ...

class ControlMessage(_message.Message):
    __slots__ = ("assign", "cancel", "ack", "drain", "journal_ack", "batch")
    ASSIGN_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    ACK_FIELD_NUMBER: _ClassVar[int]
    DRAIN_FIELD_NUMBER: _ClassVar[int]
    JOURNAL_ACK_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    assign: _types_pb2.Assignment
    cancel: AttemptRef
    ack: ResultAck
    drain: Drain
    journal_ack: JournalAck
    batch: ControlMessages
    def __init__(self, assign: _Optional[_Union[_types_pb2.Assignment, _Mapping]] = ..., cancel: _Optional[_Union[AttemptRef, _Mapping]] = ..., ack: _Optional[_Union[ResultAck, _Mapping]] = ..., drain: _Optional[_Union[Drain, _Mapping]] = ..., journal_ack: _Optional[_Union[JournalAck, _Mapping]] = ..., batch: _Optional[_Union[ControlMessages, _Mapping]] = ...) -> None: ...

class ControlMessages(_message.Message):
    __slots__ = ("messages",)
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[ControlMessage]
    def __init__(self, messages: _Optional[_Iterable[_Union[ControlMessage, _Mapping]]] = ...) -> None: ...

class Drain(_message.Message):
    __slots__ = ("draining", "deadline")
    DRAINING_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_FIELD_NUMBER: _ClassVar[int]
    draining: bool
    deadline: _timestamp_pb2.Timestamp
    def __init__(self, draining: _Optional[bool] = ..., deadline: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ResultAck(_message.Message):
    __slots__ = ("attempt", "stale")
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    STALE_FIELD_NUMBER: _ClassVar[int]
    attempt: AttemptRef
    stale: bool
    def __init__(self, attempt: _Optional[_Union[AttemptRef, _Mapping]] = ..., stale: _Optional[bool] = ...) -> None: ...

class FetchModuleRequest(_message.Message):
    __slots__ = ("digest",)
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    digest: str
    def __init__(self, digest: _Optional[str] = ...) -> None: ...

class ModuleChunk(_message.Message):
    __slots__ = ("data", "total_size")
    DATA_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    total_size: int
    def __init__(self, data: _Optional[bytes] = ..., total_size: _Optional[int] = ...) -> None: ...
