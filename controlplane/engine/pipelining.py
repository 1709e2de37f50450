"""Pipelined chains: a dependent armed on the node that runs the one dependency it waits for.

When a step's attempt is placed on a node, each dependent that waits for that step alone (its
other dependencies have succeeded) is placed on the same node too, armed behind the attempt:
the node starts it the moment the attempt succeeds there, with its output added to the
dependent's input, without a round trip to the control plane (owner-based scheduling as in
Ray; Dask fuses such chains into one task). Whenever an attempt succeeds, what now waits for
one placed attempt alone is armed behind it: the next link of a chain, the join of a diamond
behind its last branch.

Nothing else changes: an armed attempt is an ordinary placement (the step `assigned` with its
new attempt number, an `attempts` row, its resources held on the node), so results are
committed in order and fenced, and a node loss, a drain or a cancel treats it as one running.
When the attempt it waits for ends any other way, `disarm` takes it back: its attempt is
cancelled and the step waits again (`pending`) to be skipped, or placed once a later attempt
of its dependency succeeds. The node drops it by itself in that case.

Only what the node can do alone is armed: a first attempt of a step with no `input` mapping
(its input is the run's and its dependencies' outputs), no LLM calls (their grant is reserved
at placement), whose node selector the node matches, with room on the node.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from agentflow.vocabulary import AttemptStatus, StepStatus
from controlplane.domain import Resources
from controlplane.engine import assignments
from controlplane.engine.messages import AssignStep, AttemptKey, CancelAttempt
from controlplane.store import NodeRecord, StepRecord, Tx

LOOKAHEAD = 2
"""How many links of a chain are armed ahead of the one running: with two, the next link's
successor is already on the node when the next link starts, so the node never waits for the
control plane to commit a result before it can go on."""


def arm(tx: Tx, key: AttemptKey, *, node: NodeRecord, now: datetime, depth: int = LOOKAHEAD) -> list[AssignStep]:
    """Place on `node`, armed behind attempt `key`, the dependents of `key.step` that wait for
    it alone, and so on `depth` links deep; answer their assignments (to send once the
    transaction commits)."""
    run = tx.run(key.run_id)
    if run is None or run.status.terminal or depth < 1:
        return []
    spec = tx.spec(run.workflow_id)
    free: Resources | None = None  # what the node has left, read once a step may be placed on it
    armed: list[AssignStep] = []
    for name in spec.dependents(key.step):
        agent = spec.agent(name)
        if agent.input is not None or agent.capabilities.llm:
            continue
        step = tx.step(run.id, name)
        if step is None:
            continue
        if step.status.on_node and step.node_id == node.id:  # armed behind `key` already
            behind = AttemptKey(run_id=run.id, step=name, attempt=step.attempt)
            armed += arm(tx, behind, node=node, now=now, depth=depth - 1)
            continue
        if step.status is not StepStatus.PENDING or step.attempt:
            continue
        if free is None:
            free = node.capacity - tx.node_allocation(node.id)
        if not step.request.fits_in(free) or any(node.labels.get(k) != v for k, v in step.node_selector.items()):
            continue
        if not all(_succeeded(tx, run.id, dep) for dep in step.depends_on if dep != key.step):
            continue
        message = assignments.build(tx, run, step, attempt=1, grant=None, after=key)
        if isinstance(message, str):
            continue  # placed the ordinary way once its dependency is done (and failed there if it must)
        assignments.commit_placement(tx, step, attempt=1, node_id=node.id, node_name=node.name, now=now)
        free = free - step.request
        armed.append(message)
        armed += arm(tx, message.key, node=node, now=now, depth=depth - 1)
    return armed


def live(
    tx: Tx, key: AttemptKey, *, takes_work: Callable[[str], NodeRecord | None], now: datetime
) -> list[tuple[str, AssignStep]]:
    """Attempt `key` succeeded: arm what now waits for one attempt alone. That is the
    dependents of the steps armed behind `key` (they run now), and each pending dependent of
    `key.step` whose one unfinished dependency is placed on a node. `takes_work` answers a
    node's record if more may be placed on it. Answers (node id, assignment) to send."""
    run = tx.run(key.run_id)
    if run is None:
        return []
    spec = tx.spec(run.workflow_id)
    behind: dict[str, StepRecord] = {}  # the steps to arm dependents behind, by name
    for name in spec.dependents(key.step):
        step = tx.step(run.id, name)
        if step is None:
            continue
        if step.status.on_node:
            behind[name] = step  # armed behind `key`: running now
        elif step.status is StepStatus.PENDING:
            unfinished = [s for dep in dict.fromkeys(step.depends_on) if (s := tx.step(run.id, dep)) is not None
                          and s.status is not StepStatus.SUCCEEDED]  # fmt: skip
            if len(unfinished) == 1 and unfinished[0].status.on_node:
                behind[unfinished[0].name] = unfinished[0]
    out: list[tuple[str, AssignStep]] = []
    for step in behind.values():
        node = takes_work(step.node_id) if step.node_id else None
        if node is not None:
            attempt = AttemptKey(run_id=run.id, step=step.name, attempt=step.attempt)
            out += [(node.id, a) for a in arm(tx, attempt, node=node, now=now)]
    return out


def disarm(tx: Tx, run_id: str, name: str, *, reason: str, now: datetime) -> list[tuple[str, CancelAttempt]]:
    """The attempt of step `name` ended without success: take back the dependents armed behind
    it (they wait again); answer the cancels to send (node id, message)."""
    run = tx.run(run_id)
    if run is None:
        return []
    cancels: list[tuple[str, CancelAttempt]] = []
    for dependent in tx.spec(run.workflow_id).dependents(name):
        step = tx.step(run_id, dependent)
        if step is None or not step.status.on_node or step.node_id is None:
            continue  # an on-node dependent of an unfinished step can only be an armed one
        tx.finish_attempt(run_id, dependent, step.attempt, status=AttemptStatus.CANCELLED, error=reason, now=now)
        tx.update_step(run_id, dependent, status=StepStatus.PENDING, node_id=None)
        cancels.append(
            (step.node_id, CancelAttempt(key=AttemptKey(run_id=run_id, step=dependent, attempt=step.attempt)))
        )
        cancels += disarm(tx, run_id, dependent, reason=reason, now=now)  # and what was armed behind it
    return cancels


def _succeeded(tx: Tx, run_id: str, name: str) -> bool:
    step = tx.step(run_id, name)
    return step is not None and step.status is StepStatus.SUCCEEDED
