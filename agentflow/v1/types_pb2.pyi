import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RunStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RUN_STATUS_UNSPECIFIED: _ClassVar[RunStatus]
    RUN_STATUS_RUNNING: _ClassVar[RunStatus]
    RUN_STATUS_SUCCEEDED: _ClassVar[RunStatus]
    RUN_STATUS_FAILED: _ClassVar[RunStatus]
    RUN_STATUS_CANCELLED: _ClassVar[RunStatus]

class StepStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STEP_STATUS_UNSPECIFIED: _ClassVar[StepStatus]
    STEP_STATUS_PENDING: _ClassVar[StepStatus]
    STEP_STATUS_READY: _ClassVar[StepStatus]
    STEP_STATUS_ASSIGNED: _ClassVar[StepStatus]
    STEP_STATUS_RUNNING: _ClassVar[StepStatus]
    STEP_STATUS_SUCCEEDED: _ClassVar[StepStatus]
    STEP_STATUS_FAILED: _ClassVar[StepStatus]
    STEP_STATUS_CANCELLED: _ClassVar[StepStatus]
    STEP_STATUS_SKIPPED: _ClassVar[StepStatus]

class NodeStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NODE_STATUS_UNSPECIFIED: _ClassVar[NodeStatus]
    NODE_STATUS_READY: _ClassVar[NodeStatus]
    NODE_STATUS_DISCONNECTED: _ClassVar[NodeStatus]
    NODE_STATUS_DOWN: _ClassVar[NodeStatus]
    NODE_STATUS_DRAINING: _ClassVar[NodeStatus]
    NODE_STATUS_STOPPING: _ClassVar[NodeStatus]

class Isolation(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ISOLATION_UNSPECIFIED: _ClassVar[Isolation]
    ISOLATION_NONE: _ClassVar[Isolation]
    ISOLATION_CGROUP1: _ClassVar[Isolation]
    ISOLATION_CGROUP2: _ClassVar[Isolation]

class SandboxLayer(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SANDBOX_LAYER_UNSPECIFIED: _ClassVar[SandboxLayer]
    SANDBOX_LAYER_NETNS: _ClassVar[SandboxLayer]
    SANDBOX_LAYER_SECCOMP: _ClassVar[SandboxLayer]
    SANDBOX_LAYER_LANDLOCK: _ClassVar[SandboxLayer]

class StepOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STEP_OUTCOME_UNSPECIFIED: _ClassVar[StepOutcome]
    STEP_OUTCOME_SUCCEEDED: _ClassVar[StepOutcome]
    STEP_OUTCOME_FAILED: _ClassVar[StepOutcome]
    STEP_OUTCOME_CANCELLED: _ClassVar[StepOutcome]

class FailureKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FAILURE_KIND_UNSPECIFIED: _ClassVar[FailureKind]
    FAILURE_KIND_EXIT: _ClassVar[FailureKind]
    FAILURE_KIND_TRAP: _ClassVar[FailureKind]
    FAILURE_KIND_TIMEOUT: _ClassVar[FailureKind]
    FAILURE_KIND_MEMORY: _ClassVar[FailureKind]
    FAILURE_KIND_OUTPUT_LIMIT: _ClassVar[FailureKind]
    FAILURE_KIND_INVALID_OUTPUT: _ClassVar[FailureKind]
    FAILURE_KIND_MODULE: _ClassVar[FailureKind]
    FAILURE_KIND_WORKER_LOST: _ClassVar[FailureKind]
    FAILURE_KIND_HOST_CALL_LIMIT: _ClassVar[FailureKind]

class Role(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROLE_UNSPECIFIED: _ClassVar[Role]
    ROLE_NODE: _ClassVar[Role]
    ROLE_VIEWER: _ClassVar[Role]
    ROLE_OPERATOR: _ClassVar[Role]
    ROLE_ADMIN: _ClassVar[Role]

class ResourceLimit(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RESOURCE_LIMIT_UNSPECIFIED: _ClassVar[ResourceLimit]
    RESOURCE_LIMIT_MEMORY: _ClassVar[ResourceLimit]
    RESOURCE_LIMIT_WALL_TIME: _ClassVar[ResourceLimit]
    RESOURCE_LIMIT_OUTPUT: _ClassVar[ResourceLimit]
    RESOURCE_LIMIT_FETCH_SIZE: _ClassVar[ResourceLimit]
    RESOURCE_LIMIT_HOST_CALLS: _ClassVar[ResourceLimit]
RUN_STATUS_UNSPECIFIED: RunStatus
RUN_STATUS_RUNNING: RunStatus
RUN_STATUS_SUCCEEDED: RunStatus
RUN_STATUS_FAILED: RunStatus
RUN_STATUS_CANCELLED: RunStatus
STEP_STATUS_UNSPECIFIED: StepStatus
STEP_STATUS_PENDING: StepStatus
STEP_STATUS_READY: StepStatus
STEP_STATUS_ASSIGNED: StepStatus
STEP_STATUS_RUNNING: StepStatus
STEP_STATUS_SUCCEEDED: StepStatus
STEP_STATUS_FAILED: StepStatus
STEP_STATUS_CANCELLED: StepStatus
STEP_STATUS_SKIPPED: StepStatus
NODE_STATUS_UNSPECIFIED: NodeStatus
NODE_STATUS_READY: NodeStatus
NODE_STATUS_DISCONNECTED: NodeStatus
NODE_STATUS_DOWN: NodeStatus
NODE_STATUS_DRAINING: NodeStatus
NODE_STATUS_STOPPING: NodeStatus
ISOLATION_UNSPECIFIED: Isolation
ISOLATION_NONE: Isolation
ISOLATION_CGROUP1: Isolation
ISOLATION_CGROUP2: Isolation
SANDBOX_LAYER_UNSPECIFIED: SandboxLayer
SANDBOX_LAYER_NETNS: SandboxLayer
SANDBOX_LAYER_SECCOMP: SandboxLayer
SANDBOX_LAYER_LANDLOCK: SandboxLayer
STEP_OUTCOME_UNSPECIFIED: StepOutcome
STEP_OUTCOME_SUCCEEDED: StepOutcome
STEP_OUTCOME_FAILED: StepOutcome
STEP_OUTCOME_CANCELLED: StepOutcome
FAILURE_KIND_UNSPECIFIED: FailureKind
FAILURE_KIND_EXIT: FailureKind
FAILURE_KIND_TRAP: FailureKind
FAILURE_KIND_TIMEOUT: FailureKind
FAILURE_KIND_MEMORY: FailureKind
FAILURE_KIND_OUTPUT_LIMIT: FailureKind
FAILURE_KIND_INVALID_OUTPUT: FailureKind
FAILURE_KIND_MODULE: FailureKind
FAILURE_KIND_WORKER_LOST: FailureKind
FAILURE_KIND_HOST_CALL_LIMIT: FailureKind
ROLE_UNSPECIFIED: Role
ROLE_NODE: Role
ROLE_VIEWER: Role
ROLE_OPERATOR: Role
ROLE_ADMIN: Role
RESOURCE_LIMIT_UNSPECIFIED: ResourceLimit
RESOURCE_LIMIT_MEMORY: ResourceLimit
RESOURCE_LIMIT_WALL_TIME: ResourceLimit
RESOURCE_LIMIT_OUTPUT: ResourceLimit
RESOURCE_LIMIT_FETCH_SIZE: ResourceLimit
RESOURCE_LIMIT_HOST_CALLS: ResourceLimit

class Resources(_message.Message):
    __slots__ = ("cpu_millis", "memory_bytes", "slots")
    CPU_MILLIS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    SLOTS_FIELD_NUMBER: _ClassVar[int]
    cpu_millis: int
    memory_bytes: int
    slots: int
    def __init__(self, cpu_millis: _Optional[int] = ..., memory_bytes: _Optional[int] = ..., slots: _Optional[int] = ...) -> None: ...

class Step(_message.Message):
    __slots__ = ("name", "status", "attempt", "max_attempts", "node", "error", "output_json", "exit_code", "stderr", "depends_on", "started_at", "finished_at", "not_before", "llm", "usage")
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_JSON_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    STDERR_FIELD_NUMBER: _ClassVar[int]
    DEPENDS_ON_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    NOT_BEFORE_FIELD_NUMBER: _ClassVar[int]
    LLM_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    name: str
    status: StepStatus
    attempt: int
    max_attempts: int
    node: str
    error: str
    output_json: str
    exit_code: int
    stderr: str
    depends_on: _containers.RepeatedScalarFieldContainer[str]
    started_at: _timestamp_pb2.Timestamp
    finished_at: _timestamp_pb2.Timestamp
    not_before: _timestamp_pb2.Timestamp
    llm: LLMUsage
    usage: ResourceUsage
    def __init__(self, name: _Optional[str] = ..., status: _Optional[_Union[StepStatus, str]] = ..., attempt: _Optional[int] = ..., max_attempts: _Optional[int] = ..., node: _Optional[str] = ..., error: _Optional[str] = ..., output_json: _Optional[str] = ..., exit_code: _Optional[int] = ..., stderr: _Optional[str] = ..., depends_on: _Optional[_Iterable[str]] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., not_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., llm: _Optional[_Union[LLMUsage, _Mapping]] = ..., usage: _Optional[_Union[ResourceUsage, _Mapping]] = ...) -> None: ...

class Run(_message.Message):
    __slots__ = ("id", "workflow_name", "workflow_version", "workflow_id", "status", "input_json", "error", "steps", "created_at", "finished_at", "llm", "budget", "reserved", "trace_id")
    ID_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_NAME_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_VERSION_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    INPUT_JSON_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    LLM_FIELD_NUMBER: _ClassVar[int]
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    RESERVED_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    workflow_name: str
    workflow_version: str
    workflow_id: str
    status: RunStatus
    input_json: str
    error: str
    steps: _containers.RepeatedCompositeFieldContainer[Step]
    created_at: _timestamp_pb2.Timestamp
    finished_at: _timestamp_pb2.Timestamp
    llm: LLMUsage
    budget: LLMGrant
    reserved: LLMGrant
    trace_id: str
    def __init__(self, id: _Optional[str] = ..., workflow_name: _Optional[str] = ..., workflow_version: _Optional[str] = ..., workflow_id: _Optional[str] = ..., status: _Optional[_Union[RunStatus, str]] = ..., input_json: _Optional[str] = ..., error: _Optional[str] = ..., steps: _Optional[_Iterable[_Union[Step, _Mapping]]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., llm: _Optional[_Union[LLMUsage, _Mapping]] = ..., budget: _Optional[_Union[LLMGrant, _Mapping]] = ..., reserved: _Optional[_Union[LLMGrant, _Mapping]] = ..., trace_id: _Optional[str] = ...) -> None: ...

class Node(_message.Message):
    __slots__ = ("id", "name", "status", "isolation", "labels", "capacity", "allocated", "running", "last_heartbeat", "registered_at", "version", "draining", "drain_deadline", "sandbox_layers")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ISOLATION_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    ALLOCATED_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    LAST_HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_AT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DRAINING_FIELD_NUMBER: _ClassVar[int]
    DRAIN_DEADLINE_FIELD_NUMBER: _ClassVar[int]
    SANDBOX_LAYERS_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    status: NodeStatus
    isolation: Isolation
    labels: _containers.ScalarMap[str, str]
    capacity: Resources
    allocated: Resources
    running: int
    last_heartbeat: _timestamp_pb2.Timestamp
    registered_at: _timestamp_pb2.Timestamp
    version: str
    draining: bool
    drain_deadline: _timestamp_pb2.Timestamp
    sandbox_layers: _containers.RepeatedScalarFieldContainer[SandboxLayer]
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., status: _Optional[_Union[NodeStatus, str]] = ..., isolation: _Optional[_Union[Isolation, str]] = ..., labels: _Optional[_Mapping[str, str]] = ..., capacity: _Optional[_Union[Resources, _Mapping]] = ..., allocated: _Optional[_Union[Resources, _Mapping]] = ..., running: _Optional[int] = ..., last_heartbeat: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., registered_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., version: _Optional[str] = ..., draining: _Optional[bool] = ..., drain_deadline: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., sandbox_layers: _Optional[_Iterable[_Union[SandboxLayer, str]]] = ...) -> None: ...

class Module(_message.Message):
    __slots__ = ("digest", "size", "name", "created_at")
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    digest: str
    size: int
    name: str
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, digest: _Optional[str] = ..., size: _Optional[int] = ..., name: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("seq", "type", "run_id", "step", "attempt", "node", "data_json", "time", "id")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    DATA_JSON_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    seq: int
    type: str
    run_id: str
    step: str
    attempt: int
    node: str
    data_json: str
    time: _timestamp_pb2.Timestamp
    id: str
    def __init__(self, seq: _Optional[int] = ..., type: _Optional[str] = ..., run_id: _Optional[str] = ..., step: _Optional[str] = ..., attempt: _Optional[int] = ..., node: _Optional[str] = ..., data_json: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., id: _Optional[str] = ...) -> None: ...

class Assignment(_message.Message):
    __slots__ = ("run_id", "step", "attempt", "module_digest", "stdin_json", "resources", "timeout", "capabilities", "workflow_name", "llm", "journal", "grant", "traceparent", "after_step", "after_attempt")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    MODULE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    STDIN_JSON_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    CAPABILITIES_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_NAME_FIELD_NUMBER: _ClassVar[int]
    LLM_FIELD_NUMBER: _ClassVar[int]
    JOURNAL_FIELD_NUMBER: _ClassVar[int]
    GRANT_FIELD_NUMBER: _ClassVar[int]
    TRACEPARENT_FIELD_NUMBER: _ClassVar[int]
    AFTER_STEP_FIELD_NUMBER: _ClassVar[int]
    AFTER_ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    step: str
    attempt: int
    module_digest: str
    stdin_json: str
    resources: Resources
    timeout: _duration_pb2.Duration
    capabilities: Capabilities
    workflow_name: str
    llm: LLMSettings
    journal: _containers.RepeatedCompositeFieldContainer[JournalEntry]
    grant: LLMGrant
    traceparent: str
    after_step: str
    after_attempt: int
    def __init__(self, run_id: _Optional[str] = ..., step: _Optional[str] = ..., attempt: _Optional[int] = ..., module_digest: _Optional[str] = ..., stdin_json: _Optional[str] = ..., resources: _Optional[_Union[Resources, _Mapping]] = ..., timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., capabilities: _Optional[_Union[Capabilities, _Mapping]] = ..., workflow_name: _Optional[str] = ..., llm: _Optional[_Union[LLMSettings, _Mapping]] = ..., journal: _Optional[_Iterable[_Union[JournalEntry, _Mapping]]] = ..., grant: _Optional[_Union[LLMGrant, _Mapping]] = ..., traceparent: _Optional[str] = ..., after_step: _Optional[str] = ..., after_attempt: _Optional[int] = ...) -> None: ...

class LLMGrant(_message.Message):
    __slots__ = ("usd", "tokens")
    USD_FIELD_NUMBER: _ClassVar[int]
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    usd: float
    tokens: int
    def __init__(self, usd: _Optional[float] = ..., tokens: _Optional[int] = ...) -> None: ...

class LLMUsage(_message.Message):
    __slots__ = ("calls", "input_tokens", "output_tokens", "cost_usd", "cache_hits", "replays", "upstream_calls")
    CALLS_FIELD_NUMBER: _ClassVar[int]
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    CACHE_HITS_FIELD_NUMBER: _ClassVar[int]
    REPLAYS_FIELD_NUMBER: _ClassVar[int]
    UPSTREAM_CALLS_FIELD_NUMBER: _ClassVar[int]
    calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    cache_hits: int
    replays: int
    upstream_calls: int
    def __init__(self, calls: _Optional[int] = ..., input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., cost_usd: _Optional[float] = ..., cache_hits: _Optional[int] = ..., replays: _Optional[int] = ..., upstream_calls: _Optional[int] = ...) -> None: ...

class JournalEntry(_message.Message):
    __slots__ = ("run_id", "step", "attempt", "call_index", "entry_json")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    CALL_INDEX_FIELD_NUMBER: _ClassVar[int]
    ENTRY_JSON_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    step: str
    attempt: int
    call_index: int
    entry_json: str
    def __init__(self, run_id: _Optional[str] = ..., step: _Optional[str] = ..., attempt: _Optional[int] = ..., call_index: _Optional[int] = ..., entry_json: _Optional[str] = ...) -> None: ...

class LLMSettings(_message.Message):
    __slots__ = ("model", "provider", "temperature", "max_tokens")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    model: str
    provider: str
    temperature: float
    max_tokens: int
    def __init__(self, model: _Optional[str] = ..., provider: _Optional[str] = ..., temperature: _Optional[float] = ..., max_tokens: _Optional[int] = ...) -> None: ...

class Capabilities(_message.Message):
    __slots__ = ("llm", "http_allowed_hosts", "allowed_paths", "llm_models", "writable_paths")
    LLM_FIELD_NUMBER: _ClassVar[int]
    HTTP_ALLOWED_HOSTS_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_PATHS_FIELD_NUMBER: _ClassVar[int]
    LLM_MODELS_FIELD_NUMBER: _ClassVar[int]
    WRITABLE_PATHS_FIELD_NUMBER: _ClassVar[int]
    llm: bool
    http_allowed_hosts: _containers.RepeatedScalarFieldContainer[str]
    allowed_paths: _containers.RepeatedScalarFieldContainer[str]
    llm_models: _containers.RepeatedScalarFieldContainer[str]
    writable_paths: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, llm: _Optional[bool] = ..., http_allowed_hosts: _Optional[_Iterable[str]] = ..., allowed_paths: _Optional[_Iterable[str]] = ..., llm_models: _Optional[_Iterable[str]] = ..., writable_paths: _Optional[_Iterable[str]] = ...) -> None: ...

class StepResult(_message.Message):
    __slots__ = ("run_id", "step", "attempt", "outcome", "output_json", "error", "exit_code", "stderr", "duration", "denied_host_calls", "failure_kind", "llm", "usage")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_JSON_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    STDERR_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    DENIED_HOST_CALLS_FIELD_NUMBER: _ClassVar[int]
    FAILURE_KIND_FIELD_NUMBER: _ClassVar[int]
    LLM_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    step: str
    attempt: int
    outcome: StepOutcome
    output_json: str
    error: str
    exit_code: int
    stderr: str
    duration: _duration_pb2.Duration
    denied_host_calls: int
    failure_kind: FailureKind
    llm: LLMUsage
    usage: ResourceUsage
    def __init__(self, run_id: _Optional[str] = ..., step: _Optional[str] = ..., attempt: _Optional[int] = ..., outcome: _Optional[_Union[StepOutcome, str]] = ..., output_json: _Optional[str] = ..., error: _Optional[str] = ..., exit_code: _Optional[int] = ..., stderr: _Optional[str] = ..., duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., denied_host_calls: _Optional[int] = ..., failure_kind: _Optional[_Union[FailureKind, str]] = ..., llm: _Optional[_Union[LLMUsage, _Mapping]] = ..., usage: _Optional[_Union[ResourceUsage, _Mapping]] = ...) -> None: ...

class Token(_message.Message):
    __slots__ = ("id", "role", "description", "created_at", "expires_at", "single_use", "used_at", "revoked_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    SINGLE_USE_FIELD_NUMBER: _ClassVar[int]
    USED_AT_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    role: Role
    description: str
    created_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    single_use: bool
    used_at: _timestamp_pb2.Timestamp
    revoked_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., role: _Optional[_Union[Role, str]] = ..., description: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., single_use: _Optional[bool] = ..., used_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., revoked_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ResourceUsage(_message.Message):
    __slots__ = ("cpu_seconds", "peak_memory_bytes", "wall_seconds", "fetched_bytes", "host_calls", "limits_hit")
    CPU_SECONDS_FIELD_NUMBER: _ClassVar[int]
    PEAK_MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    WALL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    FETCHED_BYTES_FIELD_NUMBER: _ClassVar[int]
    HOST_CALLS_FIELD_NUMBER: _ClassVar[int]
    LIMITS_HIT_FIELD_NUMBER: _ClassVar[int]
    cpu_seconds: float
    peak_memory_bytes: int
    wall_seconds: float
    fetched_bytes: int
    host_calls: int
    limits_hit: _containers.RepeatedScalarFieldContainer[ResourceLimit]
    def __init__(self, cpu_seconds: _Optional[float] = ..., peak_memory_bytes: _Optional[int] = ..., wall_seconds: _Optional[float] = ..., fetched_bytes: _Optional[int] = ..., host_calls: _Optional[int] = ..., limits_hit: _Optional[_Iterable[_Union[ResourceLimit, str]]] = ...) -> None: ...
