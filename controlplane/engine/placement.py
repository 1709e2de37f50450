"""One scheduling pass: snapshot → pure `plan()` → commit placements → hand out assignments.

Placements are committed (step ASSIGNED with its new attempt number, an `attempts` row) in the
same transaction that read the snapshot; only after the commit are assignments sent, so a
node can never run an attempt the database does not know.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from agentflow.vocabulary import NodeStatus
from controlplane.domain import Resources, node_status
from controlplane.engine import assignments, budgets, pipelining
from controlplane.engine.messages import AssignStep
from controlplane.engine.transitions import fail_step
from controlplane.scheduler import ClusterSnapshot, NodeView, ReadyStep, plan
from controlplane.store import NodeRecord, ReadyRow, Tx


@dataclass(frozen=True, slots=True, kw_only=True)
class PassResult:
    assignments: list[tuple[str, AssignStep]]  # (node id, message)
    next_wakeup: datetime | None


READY_MARGIN = 32
"""Ready steps read beyond the free slots, for those that fit no node (their reason is shown)."""
FIRST_MARGIN = 2
"""What a pass reads beyond the free slots first. Only when slots are left free after placing
those (some fit no node) does it read again, with `READY_MARGIN`. Most passes place the one or
two steps a result made ready on the slot it freed; decoding 32 more rows every time was a
tenth of the control plane's work."""

_NOTHING: tuple[Resources, dict[str, int]] = (Resources(), {})


class PlacementNodes:
    """The nodes a pass places on, decoded again only when one of them changed (the store's
    `nodes_token`), not on every pass: decoding 1,000 node rows cost a pass 26 ms. The records'
    `last_heartbeat` is that of the last change; placement does not read it.

    A node with nothing placed on it keeps its view from one pass to the next while its status
    stays the same, so an idle fleet costs a pass a dictionary lookup per node."""

    def __init__(self) -> None:
        self._token: str | None = None
        self._records: list[NodeRecord] = []
        self._by_id: dict[str, NodeRecord] = {}
        self._idle: dict[str, NodeView] = {}

    def records(self, tx: Tx) -> list[NodeRecord]:
        token = tx.nodes_token()
        if token != self._token:
            self._records, self._idle, self._token = tx.nodes(), {}, token
            self._by_id = {n.id: n for n in self._records}
        return self._records

    def by_id(self, tx: Tx) -> Mapping[str, NodeRecord]:
        self.records(tx)
        return self._by_id

    def snapshot(self, tx: Tx, live_status: Mapping[str, NodeStatus]) -> ClusterSnapshot:
        allocations = tx.allocations()
        views = []
        for n in self.records(tx):
            status = node_status(live_status.get(n.id, NodeStatus.DOWN), draining=n.draining)
            allocated, run_counts = allocations.get(n.id, _NOTHING)
            if not run_counts and (idle := self._idle.get(n.id)) is not None and idle.status is status:
                views.append(idle)
                continue
            view = NodeView(node_id=n.id, name=n.name, status=status, labels=n.labels, capacity=n.capacity,
                            allocated=allocated, run_counts=run_counts)  # fmt: skip
            if not run_counts:
                self._idle[n.id] = view
            views.append(view)
        return ClusterSnapshot(nodes=tuple(views))


def schedule_pass(tx: Tx, *, nodes: PlacementNodes, live_status: Mapping[str, NodeStatus], now: datetime) -> PassResult:
    snapshot = nodes.snapshot(tx, live_status)
    # Read no more ready steps than could be placed (and a margin for ones no node fits), so that
    # a pass costs what it can do, not the length of the queue.
    free = sum(max(v.capacity.slots - v.allocated.slots, 0) for v in snapshot.nodes if v.status is NodeStatus.READY)
    first = free + (FIRST_MARGIN if free else READY_MARGIN)  # nothing free: just the reasons
    ready_rows, ready, backoff_until = _read_ready(tx, now=now, limit=first)
    if not ready:
        return PassResult(assignments=[], next_wakeup=backoff_until)
    result = plan(snapshot, ready, now=now)
    if len(ready_rows) == first < free + READY_MARGIN and len(result.placements) < free:  # room left
        ready_rows, ready, backoff_until = _read_ready(tx, now=now, limit=free + READY_MARGIN)
        result = plan(snapshot, ready, now=now)

    by_key = {(s.run_id, s.name): s for s in ready_rows}
    by_id = nodes.by_id(tx)
    placed: list[tuple[str, AssignStep]] = []
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
        message = assignments.build(tx, run, step, attempt=p.attempt, grant=decision.grant)
        if isinstance(message, str):  # it can never be placed: fail it
            fail_step(tx, run, step, error=message, now=now)
            continue
        budgets.reserve(tx, step, decision.grant)
        assignments.commit_placement(
            tx,
            step,
            attempt=p.attempt,
            node_id=p.node_id,
            node_name=by_id[p.node_id].name if p.node_id in by_id else "",
            now=now,
        )
        placed.append((p.node_id, message))
    # Then, with every placement of the pass counted on its node, arm the steps that wait for
    # the ones just placed alone on the same nodes (see `pipelining`).
    for node_id, message in list(placed):
        node = by_id[node_id]
        if live_status.get(node_id) is NodeStatus.READY and not node.draining:
            placed += [(node_id, a) for a in pipelining.arm(tx, message.key, node=node, now=now)]
    for b in result.blocked:
        if by_key[(b.run_id, b.step)].blocked != b.reason:
            tx.update_step(b.run_id, b.step, blocked=b.reason)
    return PassResult(assignments=placed, next_wakeup=_earliest(result.next_wakeup, backoff_until))


def _read_ready(tx: Tx, *, now: datetime, limit: int) -> tuple[list[ReadyRow], list[ReadyStep], datetime | None]:
    """Up to `limit` ready steps in queue order, as rows and as what `plan()` takes, and the
    earliest time one backing off may be placed."""
    rows, backoff_until = tx.ready_steps(now=now, limit=limit)
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
        for s in rows
    ]
    return rows, ready, backoff_until


def _earliest(*times: datetime | None) -> datetime | None:
    present = [t for t in times if t is not None]
    return min(present) if present else None
