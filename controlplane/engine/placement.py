"""One scheduling pass: snapshot → pure `plan()` → commit placements → hand out assignments.

Placements are committed (step ASSIGNED with its new attempt number, an `attempts` row) in the
same transaction that read the snapshot; only after the commit are assignments sent, so a
node can never run an attempt the database does not know.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agentflow.llm import Grant
from agentflow.spec import ReferenceMissing, evaluate
from agentflow.vocabulary import EventType, NodeStatus, StepStatus
from controlplane.domain import Resources, node_status
from controlplane.engine import budgets
from controlplane.engine.messages import AssignStep, AttemptKey
from controlplane.engine.transitions import fail_step
from controlplane.scheduler import ClusterSnapshot, NodeView, ReadyStep, plan
from controlplane.store import NodeRecord, RunRecord, StepRecord, Tx


@dataclass(frozen=True, slots=True, kw_only=True)
class PassResult:
    assignments: list[tuple[str, AssignStep]]  # (node id, message)
    next_wakeup: datetime | None


READY_MARGIN = 32
"""Ready steps read beyond the free slots, for those that fit no node (their reason is shown)."""
MAX_STEP_INPUT_BYTES = 8 * 1024 * 1024
"""Largest stdin document a step is sent: the run input (1 MiB at most) and its dependencies'
outputs (1 MiB each at most) together. A fan-in over it fails instead of being placed."""


def schedule_pass(
    tx: Tx, *, nodes: list[NodeRecord], live_status: Mapping[str, NodeStatus], now: datetime
) -> PassResult:
    allocations = tx.allocations()
    snapshot = ClusterSnapshot(
        nodes=tuple(
            NodeView(
                node_id=n.id,
                name=n.name,
                status=node_status(live_status.get(n.id, NodeStatus.DOWN), draining=n.draining),
                labels=n.labels,
                capacity=n.capacity,
                allocated=allocations.get(n.id, (Resources(), {}))[0],
                run_counts=allocations.get(n.id, (Resources(), {}))[1],
            )
            for n in nodes
        )
    )
    # Read no more ready steps than could be placed (and a margin for ones no node fits), so that
    # a pass costs what it can do, not the length of the queue.
    free = sum(max(v.capacity.slots - v.allocated.slots, 0) for v in snapshot.nodes if v.status is NodeStatus.READY)
    ready_rows, backoff_until = tx.ready_steps(now=now, limit=free + READY_MARGIN)
    ready = [
        ReadyStep(
            run_id=s.run_id,
            step=s.name,
            attempt=s.attempt + 1,
            request=s.request,
            node_selector=s.node_selector,
            not_before=s.not_before,
            order=(s.run_seq, s.idx),
            avoid_nodes=tx.failed_nodes(s.run_id, s.name) if s.attempt else frozenset(),
        )
        for s in ready_rows
    ]
    if not ready:
        return PassResult(assignments=[], next_wakeup=backoff_until)
    result = plan(snapshot, ready, now=now)

    by_key = {(s.run_id, s.name): s for s in ready_rows}
    names = {n.id: n.name for n in nodes}
    assignments: list[tuple[str, AssignStep]] = []
    for p in result.placements:
        step = tx.step(p.run_id, p.step)  # read whole only once placed
        run = tx.run(p.run_id)  # read again: earlier placements of this pass may have reserved budget
        if run is None or step is None:
            continue
        spec = tx.spec(run.workflow_id)
        decision = budgets.decide(spec.agent(step.name), spec, run, step)
        if decision.fail:
            fail_step(tx, run, step, error=decision.fail, now=now)
            continue
        if decision.wait:
            if step.blocked != decision.wait:
                tx.update_step(run.id, step.name, blocked=decision.wait)
            continue
        message = _assignment(tx, run, step, attempt=p.attempt, now=now, grant=decision.grant)
        if message is None:
            continue
        budgets.reserve(tx, step, decision.grant)
        tx.update_step(
            run.id,
            step.name,
            status=StepStatus.ASSIGNED,
            attempt=p.attempt,
            node_id=p.node_id,
            blocked="",
            error="",
            not_before=None,
        )
        tx.insert_attempt(run_id=run.id, step=step.name, attempt=p.attempt, node_id=p.node_id, now=now)
        tx.add_event(
            EventType.AGENT_SCHEDULED,
            now=now,
            run_id=run.id,
            step=step.name,
            attempt=p.attempt,
            node=names.get(p.node_id, p.node_id),
        )
        assignments.append((p.node_id, message))
    for b in result.blocked:
        if by_key[(b.run_id, b.step)].blocked != b.reason:
            tx.update_step(b.run_id, b.step, blocked=b.reason)
    return PassResult(assignments=assignments, next_wakeup=_earliest(result.next_wakeup, backoff_until))


def _earliest(*times: datetime | None) -> datetime | None:
    present = [t for t in times if t is not None]
    return min(present) if present else None


def _assignment(
    tx: Tx, run: RunRecord, step: StepRecord, *, attempt: int, now: datetime, grant: Grant | None
) -> AssignStep | None:
    """Build the ABI v1 stdin document; a broken input mapping fails the step instead."""
    spec = tx.spec(run.workflow_id)
    agent = spec.agent(step.name)
    run_input = json.loads(run.input_json)
    upstream: dict[str, Any] = {}
    for dep in step.depends_on:
        dep_step = tx.step(run.id, dep)
        upstream[dep] = json.loads(dep_step.output_json) if dep_step and dep_step.output_json else None
    try:
        step_input = run_input if agent.input is None else evaluate(agent.input, run_input=run_input, upstream=upstream)
    except ReferenceMissing as exc:
        fail_step(tx, run, step, error=f"input mapping: {exc}", now=now)
        return None
    document = {
        "input": step_input,
        "upstream": upstream,
        "step": {"run": run.id, "name": step.name, "attempt": attempt, "workflow": run.workflow_name},
    }
    if agent.module.digest is None:  # resolved at submission; a stored spec always has digests
        fail_step(tx, run, step, error="module has no digest", now=now)
        return None
    stdin_json = json.dumps(document, separators=(",", ":"))
    if (size := len(stdin_json.encode())) > MAX_STEP_INPUT_BYTES:
        error = (
            f"input limit of {MAX_STEP_INPUT_BYTES} bytes reached: the step's input document (its input and "
            f"the outputs of its {len(step.depends_on)} dependencies) is {size} bytes"
        )
        fail_step(tx, run, step, error=error, now=now)
        return None
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
    )
