"""Domain records <-> protobuf messages: the only module of the control plane that does this."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from agentflow import wire
from agentflow.llm import Grant, LLMUsage
from agentflow.spec import LLMConfig
from agentflow.usage_pb import usage_from_pb, usage_to_pb
from agentflow.v1 import node_pb2, types_pb2
from agentflow.vocabulary import FailureKind, Isolation, SandboxLayer, StepOutcome, StepStatus
from controlplane.domain import Resources
from controlplane.engine import (
    AckJournal,
    AckResult,
    AssignStep,
    AttemptKey,
    CancelAttempt,
    DrainNotice,
    NodeHello,
    NodeInfo,
    NodeRegistration,
    RunView,
    StepResultReport,
    ToNode,
)
from controlplane.errors import InvalidArgument
from controlplane.store import EventRecord, JournalRecord, ModuleRecord, event_id
from controlplane.tokens import TokenRecord

MAX_JOURNAL_ENTRY_BYTES = 4 * 1024 * 1024


def timestamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    out = Timestamp()
    out.FromDatetime(value)
    return out


def duration(value: timedelta) -> Duration:
    out = Duration()
    out.FromTimedelta(value)
    return out


def resources(value: Resources) -> types_pb2.Resources:
    return types_pb2.Resources(cpu_millis=value.cpu_millis, memory_bytes=value.memory_bytes, slots=value.slots)


def run(view: RunView) -> types_pb2.Run:
    r = view.run
    return types_pb2.Run(
        id=r.id,
        workflow_name=r.workflow_name,
        workflow_version=r.workflow_version,
        workflow_id=r.workflow_id,
        status=wire.to_pb(r.status, types_pb2.RunStatus),
        input_json=r.input_json,
        error=r.error,
        created_at=timestamp(r.created_at),
        finished_at=timestamp(r.finished_at),
        llm=llm_usage(r.llm),
        budget=None if view.budget is None else grant_pb(Grant(usd=view.budget.usd, tokens=view.budget.tokens)),
        reserved=grant_pb(r.reserved) if view.budget is not None else None,
        trace_id=r.trace.span.trace_id if r.trace is not None else "",
        steps=[
            types_pb2.Step(
                name=s.name,
                status=wire.to_pb(s.status, types_pb2.StepStatus),
                attempt=s.attempt,
                max_attempts=s.max_attempts,
                node=view.node_names.get(s.node_id, s.node_id) if s.node_id else "",
                error=s.error or (f"waiting: {s.blocked}" if s.blocked and s.status is StepStatus.READY else ""),
                output_json=s.output_json or "",
                exit_code=s.exit_code,
                stderr=s.stderr,
                depends_on=list(s.depends_on),
                started_at=timestamp(s.started_at),
                finished_at=timestamp(s.finished_at),
                not_before=timestamp(s.not_before),
                llm=llm_usage(s.llm),
                usage=usage_to_pb(s.usage),
            )
            for s in view.steps
        ],
    )


def llm_usage(usage: LLMUsage) -> types_pb2.LLMUsage:
    return types_pb2.LLMUsage(
        calls=usage.calls,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cost_usd=usage.cost_usd,
        cache_hits=usage.cache_hits,
        replays=usage.replays,
        upstream_calls=usage.upstream_calls,
    )


def llm_usage_from_pb(message: types_pb2.LLMUsage, *, field: str) -> LLMUsage:
    counts = (message.calls, message.input_tokens, message.output_tokens, message.cache_hits, message.replays,
              message.upstream_calls)  # fmt: skip
    if min(counts) < 0 or not message.cost_usd >= 0 or message.cost_usd == float("inf"):
        raise InvalidArgument(f"{field}: counts and cost must not be negative")
    return LLMUsage(
        calls=message.calls,
        input_tokens=message.input_tokens,
        output_tokens=message.output_tokens,
        cost_usd=message.cost_usd,
        cache_hits=message.cache_hits,
        replays=message.replays,
        upstream_calls=message.upstream_calls,
    )


def grant_pb(grant: Grant) -> types_pb2.LLMGrant:
    return types_pb2.LLMGrant(usd=grant.usd, tokens=grant.tokens)


def node(info: NodeInfo) -> types_pb2.Node:
    n = info.record
    return types_pb2.Node(
        id=n.id,
        name=n.name,
        status=wire.to_pb(info.status, types_pb2.NodeStatus),
        isolation=wire.to_pb(n.isolation, types_pb2.Isolation),
        sandbox_layers=[wire.to_pb(layer, types_pb2.SandboxLayer) for layer in sorted(n.sandbox_layers)],
        labels=n.labels,
        capacity=resources(n.capacity),
        allocated=resources(info.allocated),
        running=info.running,
        last_heartbeat=timestamp(info.last_heartbeat),
        registered_at=timestamp(n.registered_at),
        version=n.version,
        draining=n.draining,
        drain_deadline=timestamp(n.drain_deadline),
    )


def module(record: ModuleRecord) -> types_pb2.Module:
    return types_pb2.Module(
        digest=record.digest, size=record.size, name=record.name, created_at=timestamp(record.created_at)
    )


def event(record: EventRecord, store_id: str) -> types_pb2.Event:
    return types_pb2.Event(
        id=event_id(store_id, record.seq),
        seq=record.seq,
        type=record.type,
        run_id=record.run_id,
        step=record.step,
        attempt=record.attempt,
        node=record.node,
        data_json=json.dumps(record.data, sort_keys=True),
        time=timestamp(record.time),
    )


def attempt_ref(key: AttemptKey) -> node_pb2.AttemptRef:
    return node_pb2.AttemptRef(run_id=key.run_id, step=key.step, attempt=key.attempt)


def attempt_key(ref: node_pb2.AttemptRef) -> AttemptKey:
    if not ref.run_id or not ref.step or ref.attempt < 1:
        raise InvalidArgument("attempt: run_id, step and a positive attempt are required")
    return AttemptKey(run_id=ref.run_id, step=ref.step, attempt=ref.attempt)


def llm_settings(llm: LLMConfig) -> types_pb2.LLMSettings:
    return types_pb2.LLMSettings(
        model=llm.model, provider=llm.provider or "", temperature=llm.temperature, max_tokens=llm.max_tokens
    )


def journal_entry(record: JournalRecord) -> types_pb2.JournalEntry:
    return types_pb2.JournalEntry(
        run_id=record.run_id,
        step=record.step,
        attempt=record.attempt,
        call_index=record.call_index,
        entry_json=record.entry_json,
    )


def journal(message: node_pb2.Journal) -> tuple[JournalRecord, ...]:
    records = []
    for i, e in enumerate(message.entries):
        if not e.run_id or not e.step or e.attempt < 1 or e.call_index < 0:
            raise InvalidArgument(
                f"journal.entries[{i}]: run_id, step, a positive attempt and a call index are required"
            )
        if len(e.entry_json) > MAX_JOURNAL_ENTRY_BYTES:
            raise InvalidArgument(f"journal.entries[{i}].entry_json: larger than {MAX_JOURNAL_ENTRY_BYTES} bytes")
        records.append(
            JournalRecord(
                run_id=e.run_id, step=e.step, attempt=e.attempt, call_index=e.call_index, entry_json=e.entry_json
            )
        )
    return tuple(records)


def to_node(message: ToNode) -> node_pb2.ControlMessage:
    match message:
        case AssignStep():
            caps = message.capabilities
            return node_pb2.ControlMessage(
                assign=types_pb2.Assignment(
                    run_id=message.key.run_id,
                    step=message.key.step,
                    attempt=message.key.attempt,
                    module_digest=message.module_digest,
                    stdin_json=message.stdin_json,
                    resources=resources(message.resources),
                    timeout=duration(message.timeout),
                    workflow_name=message.workflow_name,
                    capabilities=types_pb2.Capabilities(
                        llm=caps.llm,
                        llm_models=list(caps.llm_models),
                        http_allowed_hosts=list(caps.http_allowed_hosts),
                        allowed_paths=list(caps.allowed_paths),
                        writable_paths=list(caps.writable_paths),
                    ),
                    llm=None if message.llm is None else llm_settings(message.llm),
                    journal=[journal_entry(e) for e in message.journal],
                    grant=None if message.grant is None else grant_pb(message.grant),
                    traceparent=message.traceparent,
                    after_step=message.after.step if message.after else "",
                    after_attempt=message.after.attempt if message.after else 0,
                )
            )
        case CancelAttempt():
            return node_pb2.ControlMessage(cancel=attempt_ref(message.key))
        case AckResult():
            return node_pb2.ControlMessage(
                ack=node_pb2.ResultAck(attempt=attempt_ref(message.key), stale=message.stale)
            )
        case AckJournal():
            return node_pb2.ControlMessage(
                journal_ack=node_pb2.JournalAck(entries=[journal_entry(e) for e in message.entries])
            )
        case DrainNotice():
            return node_pb2.ControlMessage(
                drain=node_pb2.Drain(draining=message.draining, deadline=timestamp(message.deadline))
            )
    raise TypeError(f"not a message for nodes: {message!r}")


def registration(request: node_pb2.RegisterRequest) -> NodeRegistration:
    cap = request.capacity
    isolation = wire.from_pb(Isolation, types_pb2.Isolation, request.isolation, field="isolation")
    if not request.name:
        raise InvalidArgument("name: required")
    return NodeRegistration(
        name=request.name,
        node_id=request.node_id,
        labels=dict(request.labels),
        capacity=Resources(cpu_millis=cap.cpu_millis, memory_bytes=cap.memory_bytes, slots=cap.slots),
        isolation=isolation,
        version=request.version,
        sandbox_layers=frozenset(
            wire.from_pb(SandboxLayer, types_pb2.SandboxLayer, layer, field=f"sandbox_layers[{i}]")
            for i, layer in enumerate(request.sandbox_layers)
        ),
        join_token=request.join_token,
    )


def hello(message: node_pb2.Hello) -> NodeHello:
    return NodeHello(
        in_flight=tuple(attempt_key(r) for r in message.in_flight),
        unacked=tuple(attempt_key(r) for r in message.unacked),
    )


def result(message: types_pb2.StepResult) -> StepResultReport:
    outcome = wire.from_pb(StepOutcome, types_pb2.StepOutcome, message.outcome, field="result.outcome")
    failure_kind = None
    if outcome is StepOutcome.FAILED:
        failure_kind = wire.from_pb(
            FailureKind, types_pb2.FailureKind, message.failure_kind, field="result.failure_kind"
        )
    return StepResultReport(
        key=AttemptKey(run_id=message.run_id, step=message.step, attempt=message.attempt),
        outcome=outcome,
        output_json=message.output_json,
        error=message.error,
        exit_code=message.exit_code,
        stderr=message.stderr,
        duration=wire.duration(message.duration, field="result.duration"),
        failure_kind=failure_kind,
        llm=llm_usage_from_pb(message.llm, field="result.llm"),
        denied_host_calls=message.denied_host_calls,
        usage=usage_from_pb(message.usage, field="result.usage"),
    )


def token(record: TokenRecord) -> types_pb2.Token:
    return types_pb2.Token(
        id=record.id,
        role=wire.to_pb(record.role, types_pb2.Role),
        description=record.description,
        created_at=timestamp(record.created_at),
        expires_at=timestamp(record.expires_at),
        single_use=record.single_use,
        used_at=timestamp(record.used_at),
        revoked_at=timestamp(record.revoked_at),
    )
