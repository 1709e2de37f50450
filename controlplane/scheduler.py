"""Placement of ready steps onto nodes: a pure function from a snapshot to a plan.

`plan` reads an immutable `ClusterSnapshot` and the ready queue and returns a `Plan`; it does
no I/O, reads no clock (the caller passes `now`) and uses no randomness, so the same inputs
always give the same plan. A single applier commits plans and re-plans when a plan no longer
matches the stored state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction

from agentflow.spec.quantity import format_cpu, format_memory
from agentflow.vocabulary import NodeStatus
from controlplane.domain import Resources


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeView:
    """What the scheduler knows about one node."""

    node_id: str
    name: str
    status: NodeStatus  # only READY nodes take new work
    labels: Mapping[str, str]
    capacity: Resources  # slots = max concurrent steps
    allocated: Resources  # requests of the steps already on the node; slots = their count
    run_counts: Mapping[str, int]  # run_id -> steps of that run already on the node


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadyStep:
    """A step whose dependencies succeeded, waiting to be placed."""

    run_id: str
    step: str
    attempt: int  # the attempt number this placement will carry
    request: Resources  # slots=1
    node_selector: Mapping[str, str]
    not_before: datetime | None  # backoff: not placeable before this instant
    order: tuple[int, int]  # (run sequence, declaration index): lower goes first
    avoid_nodes: frozenset[str]  # nodes where earlier attempts failed or were lost


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterSnapshot:
    nodes: tuple[NodeView, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Placement:
    run_id: str
    step: str
    attempt: int
    node_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Blocked:
    """A step that is ready now but could not be placed; `reason` is shown to users."""

    run_id: str
    step: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    placements: tuple[Placement, ...]
    blocked: tuple[Blocked, ...]  # ready now but not placeable, with the reason
    next_wakeup: datetime | None  # earliest future not_before among the steps skipped for backoff


def plan(snapshot: ClusterSnapshot, ready: Sequence[ReadyStep], *, now: datetime) -> Plan:
    """Place as many ready steps as fit, in `order` (FIFO across runs, then declaration order).

    A step whose `not_before` is after `now` is left out and only feeds `next_wakeup`.

    A node is a candidate when it is READY, its labels contain every `node_selector` pair and
    the request fits what is left of its capacity (capacity - allocated - what this plan
    already put there) on cpu, memory and slots. Among candidates the step goes to, in order
    of preference: a node not in `avoid_nodes` (an avoided node is still used rather than
    leaving the step unplaced), the node with the fewest steps of the same run (spread,
    counting this plan's placements), the lowest utilisation after placement (the largest of
    the cpu, memory and slot fractions), then the node name and id.

    No head-of-line blocking: a step that does not fit is reported in `blocked` and does not
    reserve anything, so a smaller step behind it may still be placed. Capacity is only freed
    by later events (a step finishing, a node joining), so holding the queue would idle the
    cluster until then. The price is that a large step can wait while a stream of small ones
    keeps taking freed capacity; its `Blocked` reason makes that visible.
    """
    nodes = sorted(snapshot.nodes, key=lambda n: (n.name, n.node_id))
    ready_nodes = [n for n in nodes if n.status is NodeStatus.READY]
    used = {n.node_id: n.allocated for n in ready_nodes}
    planned_runs: dict[tuple[str, str], int] = {}

    placements: list[Placement] = []
    blocked: list[Blocked] = []
    next_wakeup: datetime | None = None

    for s in sorted(ready, key=lambda s: (s.order, s.run_id, s.step, s.attempt)):
        if s.not_before is not None and s.not_before > now:
            if next_wakeup is None or s.not_before < next_wakeup:
                next_wakeup = s.not_before
            continue

        matching = [n for n in ready_nodes if _matches(n.labels, s.node_selector)]
        candidates = [n for n in matching if s.request.fits_in(n.capacity - used[n.node_id])]
        if not candidates:
            blocked.append(Blocked(run_id=s.run_id, step=s.step, reason=_blocked_reason(nodes, matching, s)))
            continue

        def preference(n: NodeView, s: ReadyStep = s) -> tuple[bool, int, Fraction, str, str]:
            same_run = n.run_counts.get(s.run_id, 0) + planned_runs.get((n.node_id, s.run_id), 0)
            after = used[n.node_id] + s.request
            return (n.node_id in s.avoid_nodes, same_run, _utilisation(after, n.capacity), n.name, n.node_id)

        chosen = min(candidates, key=preference)
        used[chosen.node_id] = used[chosen.node_id] + s.request
        key = (chosen.node_id, s.run_id)
        planned_runs[key] = planned_runs.get(key, 0) + 1
        placements.append(Placement(run_id=s.run_id, step=s.step, attempt=s.attempt, node_id=chosen.node_id))

    return Plan(placements=tuple(placements), blocked=tuple(blocked), next_wakeup=next_wakeup)


def _matches(labels: Mapping[str, str], selector: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def _utilisation(used: Resources, capacity: Resources) -> Fraction:
    """The fullest dimension of a node as a fraction of its capacity (exact, for stable ties)."""
    return max(
        _fraction(used.cpu_millis, capacity.cpu_millis),
        _fraction(used.memory_bytes, capacity.memory_bytes),
        _fraction(used.slots, capacity.slots),
    )


def _fraction(used: int, capacity: int) -> Fraction:
    if capacity <= 0:
        return Fraction(0) if used <= 0 else Fraction(1)
    return Fraction(used, capacity)


def _blocked_reason(nodes: Sequence[NodeView], matching: Sequence[NodeView], s: ReadyStep) -> str:
    """Why `s` has no candidate, from the most to the least fundamental cause."""
    if not nodes:
        return "no nodes are registered"
    if not any(n.status is NodeStatus.READY for n in nodes):
        counts = [
            f"{sum(n.status is status for n in nodes)} {status.value}"
            for status in NodeStatus
            if status is not NodeStatus.READY and any(n.status is status for n in nodes)
        ]
        return f"no ready nodes ({', '.join(counts)})"
    if not matching:
        selector = ",".join(f"{k}={v}" for k, v in sorted(s.node_selector.items()))
        return f"no ready node matches nodeSelector {selector}"
    if not any(s.request.fits_in(n.capacity) for n in matching):
        largest = min(matching, key=lambda n: _size_key(s.request, n))
        with_slots = s.request.slots > largest.capacity.slots
        return (
            f"requests {_format_resources(s.request, with_slots=with_slots)} but the largest "
            f"matching node has {_format_resources(largest.capacity, with_slots=with_slots)}"
        )
    return "waiting for capacity: all matching nodes are full"


def _size_key(request: Resources, n: NodeView) -> tuple[int, int, int, int, str, str]:
    """Rank nodes that can never fit `request`, for `min`: most dimensions that fit, then biggest."""
    c = n.capacity
    fitting = (
        (request.cpu_millis <= c.cpu_millis) + (request.memory_bytes <= c.memory_bytes) + (request.slots <= c.slots)
    )
    return (-fitting, -c.cpu_millis, -c.memory_bytes, -c.slots, n.name, n.node_id)


def _format_resources(r: Resources, *, with_slots: bool) -> str:
    cpu = format_cpu(r.cpu_millis) if r.cpu_millis > 0 else "0"
    memory = format_memory(r.memory_bytes) if r.memory_bytes > 0 else "0"
    parts = [f"{cpu} cpu", memory]
    if with_slots:
        parts.append(f"{r.slots} slot" if r.slots == 1 else f"{r.slots} slots")
    return ", ".join(parts)
