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

class GetNodeStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DrainSelfRequest(_message.Message):
    __slots__ = ("deadline",)
    DEADLINE_FIELD_NUMBER: _ClassVar[int]
    deadline: _duration_pb2.Duration
    def __init__(self, deadline: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class UndrainSelfRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class NodeStatusReport(_message.Message):
    __slots__ = ("name", "node_id", "server", "connected", "draining", "drain_deadline", "isolation", "slots", "running", "unacked_results", "idle_workers", "version", "sandbox_layers")
    NAME_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    SERVER_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_FIELD_NUMBER: _ClassVar[int]
    DRAINING_FIELD_NUMBER: _ClassVar[int]
    DRAIN_DEADLINE_FIELD_NUMBER: _ClassVar[int]
    ISOLATION_FIELD_NUMBER: _ClassVar[int]
    SLOTS_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    UNACKED_RESULTS_FIELD_NUMBER: _ClassVar[int]
    IDLE_WORKERS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SANDBOX_LAYERS_FIELD_NUMBER: _ClassVar[int]
    name: str
    node_id: str
    server: str
    connected: bool
    draining: bool
    drain_deadline: _timestamp_pb2.Timestamp
    isolation: _types_pb2.Isolation
    slots: int
    running: _containers.RepeatedCompositeFieldContainer[RunningStep]
    unacked_results: int
    idle_workers: int
    version: str
    sandbox_layers: _containers.RepeatedScalarFieldContainer[_types_pb2.SandboxLayer]
    def __init__(self, name: _Optional[str] = ..., node_id: _Optional[str] = ..., server: _Optional[str] = ..., connected: _Optional[bool] = ..., draining: _Optional[bool] = ..., drain_deadline: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., isolation: _Optional[_Union[_types_pb2.Isolation, str]] = ..., slots: _Optional[int] = ..., running: _Optional[_Iterable[_Union[RunningStep, _Mapping]]] = ..., unacked_results: _Optional[int] = ..., idle_workers: _Optional[int] = ..., version: _Optional[str] = ..., sandbox_layers: _Optional[_Iterable[_Union[_types_pb2.SandboxLayer, str]]] = ...) -> None: ...

class RunningStep(_message.Message):
    __slots__ = ("run_id", "step", "attempt", "workflow", "since")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    step: str
    attempt: int
    workflow: str
    since: _timestamp_pb2.Timestamp
    def __init__(self, run_id: _Optional[str] = ..., step: _Optional[str] = ..., attempt: _Optional[int] = ..., workflow: _Optional[str] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
