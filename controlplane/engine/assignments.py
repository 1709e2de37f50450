"""What a placed step is sent: the ABI v1 stdin document and the rest of its assignment, and
the commit of a placement. Shared by the scheduler's pass and pipelining; pure over a `Tx`."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from agentflow.llm import Grant
from agentflow.spec import ReferenceMissing, evaluate
from agentflow.vocabulary import EventType, StepStatus
from controlplane.engine.messages import AssignStep, AttemptKey
from controlplane.store import RunRecord, StepRecord, Tx

MAX_STEP_INPUT_BYTES = 8 * 1024 * 1024
"""Largest stdin document a step is sent: the run input (1 MiB at most) and its dependencies'
outputs (1 MiB each at most) together. A fan-in over it fails instead of being placed."""
MAX_OUTPUT_BYTES = 1024 * 1024
"""The largest output a step hands its dependents (the node's cap on a step's stdout)."""


def build(
    tx: Tx, run: RunRecord, step: StepRecord, *, attempt: int, grant: Grant | None, after: AttemptKey | None = None
) -> AssignStep | str:
    """The assignment of the step's `attempt`, or why it can never be placed (a broken input
    mapping, an input over the limit). Armed `after` an attempt of one of its dependencies, the
    document lacks that dependency's output (the node adds it); one that might not fit once it
    is in answers why, and is placed the ordinary way instead."""
    spec = tx.spec(run.workflow_id)
    agent = spec.agent(step.name)
    run_input = json.loads(run.input_json)
    upstream: dict[str, Any] = {}
    for dep in step.depends_on:
        if after is not None and dep == after.step:
            continue
        dep_step = tx.step(run.id, dep)
        upstream[dep] = json.loads(dep_step.output_json) if dep_step and dep_step.output_json else None
    try:
        step_input = run_input if agent.input is None else evaluate(agent.input, run_input=run_input, upstream=upstream)
    except ReferenceMissing as exc:
        return f"input mapping: {exc}"
    if agent.module.digest is None:  # resolved at submission; a stored spec always has digests
        return "module has no digest"
    document = {
        "input": step_input,
        "upstream": upstream,
        "step": {"run": run.id, "name": step.name, "attempt": attempt, "workflow": run.workflow_name},
    }
    stdin_json = json.dumps(document, separators=(",", ":"))
    size = len(stdin_json.encode())
    if after is not None and size + MAX_OUTPUT_BYTES > MAX_STEP_INPUT_BYTES:
        return f"input of {size} bytes leaves no room for the output of {after.step}"
    if size > MAX_STEP_INPUT_BYTES:
        return (
            f"input limit of {MAX_STEP_INPUT_BYTES} bytes reached: the step's input document (its input and "
            f"the outputs of its {len(step.depends_on)} dependencies) is {size} bytes"
        )
    return AssignStep(
        key=AttemptKey(run_id=run.id, step=step.name, attempt=attempt),
        workflow_name=run.workflow_name,
        module_digest=agent.module.digest,
        stdin_json=stdin_json,
        resources=step.request,
        timeout=agent.timeout,
        capabilities=agent.capabilities,
        llm=agent.llm,
        journal=tuple(tx.journal(run.id, step.name, before_attempt=attempt)) if agent.capabilities.llm else (),
        grant=grant,
        traceparent=run.trace.span.traceparent if run.trace is not None else "",
        after=after,
    )


def commit_placement(tx: Tx, step: StepRecord, *, attempt: int, node_id: str, node_name: str, now: datetime) -> None:
    """The step is placed: `assigned` with its new attempt number on the node, an attempts row
    (the fencing token), `agent.scheduled`. Sent only after the commit."""
    tx.update_step(
        step.run_id,
        step.name,
        status=StepStatus.ASSIGNED,
        attempt=attempt,
        node_id=node_id,
        blocked="",
        error="",
        not_before=None,
    )
    tx.insert_attempt(run_id=step.run_id, step=step.name, attempt=attempt, node_id=node_id, now=now)
    tx.add_event(
        EventType.AGENT_SCHEDULED,
        now=now,
        run_id=step.run_id,
        step=step.name,
        attempt=attempt,
        node=node_name or node_id,
    )
