"""State transitions of runs and steps, each applied inside one transaction.

Every function here takes an open `Tx` and the current time; none sends anything. Messages for
nodes are returned to the caller, which sends them after the transaction commits.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from agentflow.backoff import JITTER_MAX, JITTER_MIN, retry_delay
from agentflow.jsonvalue import output_problem
from agentflow.llm import LLMUsage
from agentflow.spec import WorkflowSpec
from agentflow.vocabulary import AttemptStatus, EventType, FailureKind, RunStatus, StepOutcome, StepStatus
from controlplane.dag import StepState, advance
from controlplane.engine import budgets, pipelining
from controlplane.engine.messages import AttemptKey, CancelAttempt, StepResultReport, ToNode
from controlplane.store import NodeRecord, RunRecord, StepRecord, Tx

# A step whose attempts keep getting lost with their node fails after this many losses, so a
# module that takes down whole nodes cannot circle the cluster forever.
MAX_LOST_ATTEMPTS = 5


def settle_run(tx: Tx, run: RunRecord, *, now: datetime) -> None:
    """Move pending steps to ready/skipped and finish the run once every step is terminal."""
    if run.status.terminal:
        return
    steps = tx.steps(run.id)
    result = advance([StepState(name=s.name, status=s.status, depends_on=s.depends_on) for s in steps])
    for name in result.ready:
        tx.update_step(run.id, name, status=StepStatus.READY)
    for name, reason in result.skipped:
        tx.update_step(run.id, name, status=StepStatus.SKIPPED, error=reason, finished_at=now)
        tx.add_event(EventType.AGENT_SKIPPED, now=now, run_id=run.id, step=name, data={"reason": reason})
    if result.outcome is not None:
        _finish_run(tx, run, result.outcome, now=now)


def settle_step(tx: Tx, run: RunRecord, name: str, *, now: datetime) -> None:
    """Step `name` just became terminal: move on its dependents (ready when all their
    dependencies succeeded, skipped, transitively, when it did not), and finish the run once it
    has no open step. Reads only the steps this touches and the run's counters, so its cost does
    not grow with the size of the run (`settle_run` is the whole-run form, for submit and retry)."""
    if run.status.terminal:
        return
    spec = tx.spec(run.workflow_id)
    step = tx.step(run.id, name)
    if step is None or not step.status.terminal:
        return
    if step.status is StepStatus.SUCCEEDED:
        for dependent in spec.dependents(name):
            d = tx.step(run.id, dependent)
            if d is None or d.status is not StepStatus.PENDING:
                continue
            deps = [tx.step(run.id, dep) for dep in dict.fromkeys(d.depends_on)]
            if all(x is not None and x.status is StepStatus.SUCCEEDED for x in deps):
                tx.update_step(run.id, dependent, status=StepStatus.READY)
    else:
        _skip_dependents(tx, run, spec, name, step.status, now=now)
    counts = tx.run(run.id)
    if counts is not None and counts.open_steps == 0:
        _finish_run(tx, run, RunStatus.SUCCEEDED if counts.unsucceeded_steps == 0 else RunStatus.FAILED, now=now)


def _skip_dependents(
    tx: Tx, run: RunRecord, spec: WorkflowSpec, name: str, status: StepStatus, *, now: datetime
) -> None:
    """Skip every pending step downstream of `name`, which did not succeed."""
    frontier = [(name, status)]
    while frontier:
        cause, cause_status = frontier.pop()
        for dependent in spec.dependents(cause):
            d = tx.step(run.id, dependent)
            if d is None or d.status is not StepStatus.PENDING:
                continue
            reason = f'dependency "{cause}" {cause_status.value}'
            tx.update_step(run.id, dependent, status=StepStatus.SKIPPED, error=reason, finished_at=now)
            tx.add_event(EventType.AGENT_SKIPPED, now=now, run_id=run.id, step=dependent, data={"reason": reason})
            frontier.append((dependent, StepStatus.SKIPPED))


def _finish_run(tx: Tx, run: RunRecord, outcome: RunStatus, *, now: datetime) -> None:
    data: dict[str, object] = {
        "workflow": run.workflow_name,
        "duration_s": max(0.0, (now - run.created_at).total_seconds()),
    }
    if outcome is RunStatus.SUCCEEDED:
        tx.set_run_status(run.id, RunStatus.SUCCEEDED, now=now)
        tx.add_event(EventType.WORKFLOW_COMPLETED, now=now, run_id=run.id, data=data)
    else:
        failed = tx.step_names_with_status(run.id, StepStatus.FAILED)
        error = f"step {', '.join(failed)} failed" if failed else "a step did not succeed"
        tx.set_run_status(run.id, RunStatus.FAILED, error=error, now=now)
        tx.add_event(EventType.WORKFLOW_FAILED, now=now, run_id=run.id, data={**data, "error": error})


def start_step(tx: Tx, step: StepRecord, *, node_name: str, now: datetime) -> None:
    """The step's attempt (assigned) runs on its node since `now`: `running`, `agent.started`."""
    tx.start_attempt(step.run_id, step.name, step.attempt, now=now)
    tx.update_step(step.run_id, step.name, status=StepStatus.RUNNING, started_at=step.started_at or now)
    tx.add_event(
        EventType.AGENT_STARTED, now=now, run_id=step.run_id, step=step.name, attempt=step.attempt, node=node_name
    )


def fail_step(tx: Tx, run: RunRecord, step: StepRecord, *, error: str, now: datetime) -> None:
    """Fail a step for good (no retry) and settle its run."""
    pipelining.disarm(tx, run.id, step.name, reason=f'dependency "{step.name}" failed', now=now)
    tx.update_step(
        run.id, step.name, status=StepStatus.FAILED, error=error, finished_at=now, blocked="", not_before=None
    )
    tx.add_event(
        EventType.AGENT_FAILED,
        now=now,
        run_id=run.id,
        step=step.name,
        attempt=step.attempt,
        data={"workflow": run.workflow_name, "error": error, "retrying": False},
    )
    settle_step(tx, run, step.name, now=now)


def requeue_lost(
    tx: Tx, step: StepRecord, *, reason: str, node_name: str, now: datetime, llm: LLMUsage | None = None
) -> None:
    """The attempt on a node is gone (node down, restarted or never got it): place it again.

    `llm` is what the attempt spent if its node said so; otherwise its journal tells."""
    run = tx.run(step.run_id)
    if run is None or not _still_on_node(tx, step):
        return
    tx.finish_attempt(step.run_id, step.name, step.attempt, status=AttemptStatus.LOST, error=reason, now=now)
    pipelining.disarm(tx, run.id, step.name, reason=f"{step.name}: {reason}", now=now)
    _settle(tx, run, step, llm, now=now)
    losses = step.losses + 1
    if losses >= MAX_LOST_ATTEMPTS:
        tx.update_step(run.id, step.name, losses=losses)
        fail_step(tx, run, step, error=f"lost {losses} times, last: {reason}", now=now)
        return
    _place_again(tx, step, reason=reason, node_name=node_name, now=now, losses=losses)


def move_off_node(tx: Tx, step: StepRecord, *, reason: str, node_name: str, now: datetime) -> CancelAttempt | None:
    """Take an attempt off its node (a drain deadline passed) to place it elsewhere.

    Neither a failure nor a loss: the step's retry and loss budgets stay as they were. Returns
    the cancel to send to the node once the transaction commits.
    """
    run = tx.run(step.run_id)
    if run is None or not _still_on_node(tx, step):
        return None
    tx.finish_attempt(step.run_id, step.name, step.attempt, status=AttemptStatus.CANCELLED, error=reason, now=now)
    pipelining.disarm(tx, run.id, step.name, reason=f"{step.name}: {reason}", now=now)
    _settle(tx, run, step, None, now=now)
    _place_again(tx, step, reason=reason, node_name=node_name, now=now)
    return CancelAttempt(key=AttemptKey(run_id=step.run_id, step=step.name, attempt=step.attempt))


def _settle(tx: Tx, run: RunRecord, step: StepRecord, llm: LLMUsage | None, *, now: datetime) -> None:
    """Release the attempt's LLM grant and count what it spent (by its journal, when unknown)."""
    if llm is None:
        if step.grant is None and not (tx.spec(run.workflow_id)).agent(step.name).capabilities.llm:
            return
        llm = budgets.journaled_usage(tx, step)
    budgets.settle(tx, run, step, llm, spec=tx.spec(run.workflow_id), now=now)


def _still_on_node(tx: Tx, step: StepRecord) -> bool:
    """Whether `step` (read earlier in the transaction) still holds the same attempt on a node."""
    current = tx.step(step.run_id, step.name)
    return current is not None and current.status.on_node and current.attempt == step.attempt


def _place_again(tx: Tx, step: StepRecord, *, reason: str, node_name: str, now: datetime, **fields: object) -> None:
    """Ready to be placed again, or pending while a dependency has not succeeded (an armed
    attempt lost with the one it waited for)."""
    deps = [tx.step(step.run_id, dep) for dep in dict.fromkeys(step.depends_on)]
    ready = all(d is not None and d.status is StepStatus.SUCCEEDED for d in deps)
    status = StepStatus.READY if ready else StepStatus.PENDING
    tx.update_step(step.run_id, step.name, status=status, error=reason, **fields)
    tx.add_event(
        EventType.AGENT_REQUEUED,
        now=now,
        run_id=step.run_id,
        step=step.name,
        attempt=step.attempt,
        node=node_name,
        data={"reason": reason},
    )


@dataclass(frozen=True, slots=True)
class Applied:
    """What became of a node's result: `applied` is False when it was stale (fenced off) and
    dropped; `messages` go to nodes once the transaction commits (armed dependents, cancels)."""

    applied: bool
    messages: tuple[tuple[str, ToNode], ...] = ()


STALE = Applied(False)


def apply_result(
    tx: Tx,
    report: StepResultReport,
    *,
    node_id: str,
    node_name: str,
    now: datetime,
    rng: random.Random,
    takes_work: Callable[[str], NodeRecord | None] = lambda node_id: None,
) -> Applied:
    """Record a node's result.

    A result is applied only while its attempt is the step's open attempt and comes from the
    node it was placed on; a repeat of an applied result is acknowledged without change, and
    anything else is stale. A success arms what then waits for one placed attempt alone, on
    nodes `takes_work` answers a record for (see `pipelining`).
    """
    key = report.key
    attempt = tx.attempt(key.run_id, key.step, key.attempt)
    if attempt is None or attempt.node_id != node_id:
        return STALE
    if not attempt.open:
        return Applied(attempt.status in (AttemptStatus.SUCCEEDED, AttemptStatus.FAILED))
    step = tx.step(key.run_id, key.step)
    run = tx.run(key.run_id)
    if step is None or run is None or step.attempt != key.attempt or not step.status.on_node:
        return STALE
    if step.status is StepStatus.ASSIGNED and report.outcome is not StepOutcome.CANCELLED:
        # A quick step's node sends no started notice: its result says when it began.
        start_step(tx, step, node_name=node_name, now=now - report.duration)
    if report.outcome is StepOutcome.SUCCEEDED and (problem := output_problem(report.output_json)):
        # Dependents get this output as JSON on stdin: an invalid one fails the attempt here.
        report = dataclasses.replace(
            report,
            outcome=StepOutcome.FAILED,
            output_json="",
            error=problem,
            failure_kind=FailureKind.INVALID_OUTPUT,
        )

    base = {
        "workflow": run.workflow_name,
        "duration_s": report.duration.total_seconds(),
        "usage": report.usage.to_dict(),
    }
    if report.outcome is not StepOutcome.CANCELLED:  # a cancel goes through requeue_lost, which settles
        _settle(tx, run, step, report.llm, now=now)
    if report.outcome is StepOutcome.SUCCEEDED:
        tx.finish_attempt(run.id, step.name, key.attempt, status=AttemptStatus.SUCCEEDED, now=now)
        tx.update_step(
            run.id,
            step.name,
            status=StepStatus.SUCCEEDED,
            output_json=report.output_json,
            error="",
            exit_code=report.exit_code,
            stderr=report.stderr,
            usage=report.usage.to_json(),
            finished_at=now,
        )
        _limits_hit(tx, run, report, node_name=node_name, now=now)
        tx.add_event(
            EventType.AGENT_COMPLETED,
            now=now,
            run_id=run.id,
            step=step.name,
            attempt=key.attempt,
            node=node_name,
            data=base,
        )
        settle_step(tx, run, step.name, now=now)
        return Applied(True, tuple(pipelining.live(tx, key, takes_work=takes_work, now=now)))

    if report.outcome is StepOutcome.CANCELLED:
        # Only a cancel that the engine did not order reaches this point (e.g. the node shut down).
        reason = report.error or "cancelled on the node"
        requeue_lost(tx, step, reason=reason, node_name=node_name, now=now, llm=report.llm)
        return Applied(True)

    tx.finish_attempt(run.id, step.name, key.attempt, status=AttemptStatus.FAILED, error=report.error, now=now)
    cancels = pipelining.disarm(tx, run.id, step.name, reason=f'dependency "{step.name}" failed', now=now)
    _limits_hit(tx, run, report, node_name=node_name, now=now)
    failures = step.failures + 1
    common = {
        "exit_code": report.exit_code,
        "stderr": report.stderr,
        "error": report.error,
        "failures": failures,
        "usage": report.usage.to_json(),
    }
    data = {
        **base,
        "error": report.error,
        "kind": report.failure_kind,
        "denied_host_calls": report.denied_host_calls,
    }
    if failures < step.max_attempts:
        spec = tx.spec(run.workflow_id)
        policy = spec.agent(step.name).retry
        delay = retry_delay(
            failures=failures, base=policy.backoff, cap=policy.max_backoff, jitter=rng.uniform(JITTER_MIN, JITTER_MAX)
        )
        tx.update_step(run.id, step.name, status=StepStatus.READY, not_before=now + delay, **common)
        tx.add_event(
            EventType.AGENT_FAILED,
            now=now,
            run_id=run.id,
            step=step.name,
            attempt=key.attempt,
            node=node_name,
            data={**data, "retrying": True, "retry_in_s": round(delay.total_seconds(), 3)},
        )
        return Applied(True, tuple(cancels))
    tx.update_step(run.id, step.name, status=StepStatus.FAILED, finished_at=now, **common)
    tx.add_event(
        EventType.AGENT_FAILED,
        now=now,
        run_id=run.id,
        step=step.name,
        attempt=key.attempt,
        node=node_name,
        data={**data, "retrying": False},
    )
    settle_step(tx, run, step.name, now=now)
    return Applied(True, tuple(cancels))


def _limits_hit(tx: Tx, run: RunRecord, report: StepResultReport, *, node_name: str, now: datetime) -> None:
    """One `resource.limit_hit` event per limit the attempt ran into; `fatal` for the one that
    stopped it (its error names the limit too)."""
    fatal = report.failure_kind.limit if report.failure_kind is not None else None
    limits = list(dict.fromkeys(report.usage.limits_hit))
    if fatal is not None and fatal not in limits:
        limits.append(fatal)  # a node that does not list its limits yet
    for limit in limits:
        tx.add_event(
            EventType.RESOURCE_LIMIT_HIT,
            now=now,
            run_id=run.id,
            step=report.key.step,
            attempt=report.key.attempt,
            node=node_name,
            data={
                "workflow": run.workflow_name,
                "limit": limit.value,
                "fatal": limit is fatal,
                "error": report.error if limit is fatal else "",
            },
        )


def cancel_run(tx: Tx, run: RunRecord, *, now: datetime) -> list[tuple[str, CancelAttempt]]:
    """Cancel every unfinished step; return the cancels to send to nodes (node id, message)."""
    cancels: list[tuple[str, CancelAttempt]] = []
    for step in tx.steps(run.id):
        if step.status.terminal:
            continue
        if step.status.on_node and step.node_id:
            tx.finish_attempt(run.id, step.name, step.attempt, status=AttemptStatus.CANCELLED, now=now)
            _settle(tx, run, step, None, now=now)
            key = AttemptKey(run_id=run.id, step=step.name, attempt=step.attempt)
            cancels.append((step.node_id, CancelAttempt(key=key)))
        tx.update_step(run.id, step.name, status=StepStatus.CANCELLED, finished_at=now, blocked="", not_before=None)
    tx.set_run_status(run.id, RunStatus.CANCELLED, error="cancelled by request", now=now)
    tx.add_event(EventType.WORKFLOW_CANCELLED, now=now, run_id=run.id, data={"workflow": run.workflow_name})
    return cancels
