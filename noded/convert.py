"""noded's messages <-> protobuf: the only module of the node that does this (the outbox stores
results in their wire form, so it uses this module too)."""

from __future__ import annotations

from datetime import timedelta

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from agentflow import wire
from agentflow.attempt import AttemptKey
from agentflow.llm import Grant, LLMUsage
from agentflow.spec import Capabilities, LLMConfig
from agentflow.usage_pb import usage_from_pb, usage_to_pb
from agentflow.v1 import node_pb2, types_pb2
from agentflow.vocabulary import FailureKind, StepOutcome
from noded.messages import (
    Ack,
    Assignment,
    Cancel,
    DrainNotice,
    DrainRequest,
    FromControlPlane,
    Goodbye,
    Heartbeat,
    Hello,
    Journal,
    JournalAck,
    JournalEntry,
    Registered,
    Registration,
    Started,
    StepResult,
    ToControlPlane,
)


def attempt_ref(key: AttemptKey) -> node_pb2.AttemptRef:
    return node_pb2.AttemptRef(run_id=key.run_id, step=key.step, attempt=key.attempt)


def attempt_key(ref: node_pb2.AttemptRef, *, field: str) -> AttemptKey:
    if not ref.run_id or not ref.step or ref.attempt < 1:
        raise wire.InvalidField(f"{field}: run_id, step and a positive attempt are required")
    return AttemptKey(ref.run_id, ref.step, ref.attempt)


def _duration(value: timedelta) -> Duration:
    out = Duration()
    out.FromTimedelta(value)
    return out


# up -------------------------------------------------------------------------------------------


def registration(reg: Registration) -> node_pb2.RegisterRequest:
    return node_pb2.RegisterRequest(
        name=reg.name,
        node_id=reg.node_id,
        labels=reg.labels,
        capacity=types_pb2.Resources(
            cpu_millis=reg.capacity.cpu_millis, memory_bytes=reg.capacity.memory_bytes, slots=reg.capacity.slots
        ),
        isolation=wire.to_pb(reg.isolation, types_pb2.Isolation),
        version=reg.version,
        sandbox_layers=[wire.to_pb(layer, types_pb2.SandboxLayer) for layer in sorted(reg.sandbox_layers)],
        join_token=reg.join_token,
    )


def result_to_pb(result: StepResult) -> types_pb2.StepResult:
    return types_pb2.StepResult(
        run_id=result.key.run_id,
        step=result.key.step,
        attempt=result.key.attempt,
        outcome=wire.to_pb(result.outcome, types_pb2.StepOutcome),
        failure_kind=(
            types_pb2.FAILURE_KIND_UNSPECIFIED
            if result.failure_kind is None
            else wire.to_pb(result.failure_kind, types_pb2.FailureKind)
        ),
        output_json=result.output_json,
        error=result.error,
        exit_code=result.exit_code,
        stderr=result.stderr,
        duration=_duration(result.duration),
        denied_host_calls=result.denied_host_calls,
        llm=types_pb2.LLMUsage(
            calls=result.llm.calls,
            input_tokens=result.llm.input_tokens,
            output_tokens=result.llm.output_tokens,
            cost_usd=result.llm.cost_usd,
            cache_hits=result.llm.cache_hits,
            replays=result.llm.replays,
            upstream_calls=result.llm.upstream_calls,
        ),
        usage=usage_to_pb(result.usage),
    )


def result_from_pb(message: types_pb2.StepResult) -> StepResult:
    outcome = wire.from_pb(StepOutcome, types_pb2.StepOutcome, message.outcome, field="result.outcome")
    kind = None
    if outcome is StepOutcome.FAILED:
        kind = wire.from_pb(FailureKind, types_pb2.FailureKind, message.failure_kind, field="result.failure_kind")
    return StepResult(
        key=AttemptKey(message.run_id, message.step, message.attempt),
        outcome=outcome,
        failure_kind=kind,
        output_json=message.output_json,
        error=message.error,
        exit_code=message.exit_code,
        stderr=message.stderr,
        duration=wire.duration(message.duration, field="result.duration"),
        denied_host_calls=message.denied_host_calls,
        llm=LLMUsage(
            calls=message.llm.calls,
            input_tokens=message.llm.input_tokens,
            output_tokens=message.llm.output_tokens,
            cost_usd=message.llm.cost_usd,
            cache_hits=message.llm.cache_hits,
            replays=message.llm.replays,
            upstream_calls=message.llm.upstream_calls,
        ),
        usage=usage_from_pb(message.usage, field="result.usage"),
    )


def to_pb(message: ToControlPlane) -> node_pb2.NodeMessage:
    match message:
        case Hello():
            return node_pb2.NodeMessage(
                hello=node_pb2.Hello(
                    in_flight=[attempt_ref(k) for k in message.in_flight],
                    unacked=[attempt_ref(k) for k in message.unacked],
                )
            )
        case Heartbeat():
            now = Timestamp()
            now.GetCurrentTime()
            return node_pb2.NodeMessage(
                heartbeat=node_pb2.Heartbeat(time=now, running=message.running, idle_workers=message.idle_workers)
            )
        case Started():
            return node_pb2.NodeMessage(started=node_pb2.StepStarted(attempt=attempt_ref(message.key)))
        case StepResult():
            return node_pb2.NodeMessage(result=result_to_pb(message))
        case DrainRequest():
            request = node_pb2.DrainRequest(draining=message.draining)
            if message.deadline is not None:
                request.deadline.FromTimedelta(message.deadline)
            return node_pb2.NodeMessage(drain=request)
        case Goodbye():
            return node_pb2.NodeMessage(goodbye=node_pb2.Goodbye())
        case Journal():
            return node_pb2.NodeMessage(journal=node_pb2.Journal(entries=[journal_to_pb(e) for e in message.entries]))
    raise TypeError(f"not a message for the control plane: {message!r}")


def journal_to_pb(entry: JournalEntry) -> types_pb2.JournalEntry:
    key = entry.key
    return types_pb2.JournalEntry(
        run_id=key.run_id, step=key.step, attempt=key.attempt, call_index=entry.call_index, entry_json=entry.entry_json
    )


def journal_from_pb(entry: types_pb2.JournalEntry, *, field: str) -> JournalEntry:
    key = attempt_key(node_pb2.AttemptRef(run_id=entry.run_id, step=entry.step, attempt=entry.attempt), field=field)
    if entry.call_index < 0:
        raise wire.InvalidField(f"{field}: call_index must not be negative")
    return JournalEntry(key=key, call_index=entry.call_index, entry_json=entry.entry_json)


# down -----------------------------------------------------------------------------------------


def registered(response: node_pb2.RegisterResponse) -> Registered:
    interval = wire.optional_duration(response, "heartbeat_interval", field="heartbeat_interval")
    return Registered(node_id=response.node_id, heartbeat_interval=interval or None)


def _grant(grant: types_pb2.LLMGrant) -> Grant:
    usd = grant.usd if grant.HasField("usd") else None
    tokens = grant.tokens if grant.HasField("tokens") else None
    if (usd is not None and not usd >= 0) or (tokens is not None and tokens < 0):
        raise wire.InvalidField("assign.grant: must not be negative")
    return Grant(usd=usd, tokens=tokens)


def _llm(settings: types_pb2.LLMSettings) -> LLMConfig:
    return LLMConfig(
        model=settings.model,
        provider=settings.provider or None,
        temperature=settings.temperature if settings.HasField("temperature") else None,
        max_tokens=settings.max_tokens if settings.HasField("max_tokens") else None,
    )


def _after(a: types_pb2.Assignment) -> AttemptKey | None:
    if not a.after_step:
        return None
    ref = node_pb2.AttemptRef(run_id=a.run_id, step=a.after_step, attempt=a.after_attempt)
    return attempt_key(ref, field="assign.after")


def from_pb(message: node_pb2.ControlMessage) -> FromControlPlane | None:
    """The domain message, or None for a kind this node does not know (a newer control plane)."""
    match message.WhichOneof("kind"):
        case "assign":
            a = message.assign
            return Assignment(
                key=attempt_key(node_pb2.AttemptRef(run_id=a.run_id, step=a.step, attempt=a.attempt), field="assign"),
                workflow=a.workflow_name,
                module_digest=a.module_digest,
                stdin_json=a.stdin_json,
                cpu_millis=a.resources.cpu_millis,
                memory_bytes=a.resources.memory_bytes,
                timeout=wire.duration(a.timeout, field="assign.timeout"),
                capabilities=Capabilities(
                    llm=a.capabilities.llm,
                    llm_models=tuple(a.capabilities.llm_models),
                    http_allowed_hosts=tuple(a.capabilities.http_allowed_hosts),
                    allowed_paths=tuple(a.capabilities.allowed_paths),
                    writable_paths=tuple(a.capabilities.writable_paths),
                ),
                llm=_llm(a.llm) if a.HasField("llm") else None,
                journal=tuple(journal_from_pb(e, field="assign.journal") for e in a.journal),
                grant=_grant(a.grant) if a.HasField("grant") else None,
                traceparent=a.traceparent,
                after=_after(a),
            )
        case "cancel":
            return Cancel(key=attempt_key(message.cancel, field="cancel"))
        case "ack":
            return Ack(key=attempt_key(message.ack.attempt, field="ack.attempt"), stale=message.ack.stale)
        case "journal_ack":
            entries = message.journal_ack.entries
            return JournalAck(entries=tuple(journal_from_pb(e, field="journal_ack") for e in entries))
        case "drain":
            drain = message.drain
            deadline = wire.timestamp(drain.deadline, field="drain.deadline") if drain.HasField("deadline") else None
            return DrainNotice(draining=drain.draining, deadline=deadline)
    return None
