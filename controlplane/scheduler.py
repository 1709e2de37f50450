"""Placement of ready steps onto nodes: a pure function from a snapshot to a plan.

`plan` reads an immutable `ClusterSnapshot` and the ready queue and returns a `Plan`; it does
no I/O, reads no clock (the caller passes `now`) and uses no randomness, so the same inputs
always give the same plan. A single applier commits plans and re-plans when a plan no longer
matches the stored state.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

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


SCORE_LIMIT = 16
"""Feasible nodes scored per step. With more matching nodes than this, a step is scored against
the first `SCORE_LIMIT` that fit, from a start that moves on with every step, so a pass costs
O(steps x SCORE_LIMIT) rather than O(steps x nodes) (Nomad's limit iterator, Kubernetes'
percentageOfNodesToScore). Smaller clusters are scored whole."""
ROTATION_STRIDE = 7919  # a prime: successive steps start far apart, and every start comes round


def plan(snapshot: ClusterSnapshot, ready: Sequence[ReadyStep], *, now: datetime) -> Plan:
    """Place as many ready steps as fit, in `order` (FIFO across runs, then declaration order).

    A step whose `not_before` is after `now` is left out and only feeds `next_wakeup`.

    A node is a candidate when it is READY, its labels contain every `node_selector` pair and
    the request fits what is left of its capacity (capacity - allocated - what this plan
    already put there) on cpu, memory and slots. Among candidates the step goes to, in order
    of preference: a node not in `avoid_nodes` (an avoided node is still used rather than
    leaving the step unplaced), the node with the fewest steps of the same run (spread,
    counting this plan's placements), the lowest utilisation after placement (the largest of
    the cpu, memory and slot fractions), then the node name and id. Beyond `SCORE_LIMIT`
    matching nodes, this choice is made among `SCORE_LIMIT` of those that fit (see there).

    No head-of-line blocking: a step that does not fit is reported in `blocked` and does not
    reserve anything, so a smaller step behind it may still be placed. Capacity is only freed
    by later events (a step finishing, a node joining), so holding the queue would idle the
    cluster until then. The price is that a large step can wait while a stream of small ones
    keeps taking freed capacity; its `Blocked` reason makes that visible.
    """
    nodes = sorted(snapshot.nodes, key=lambda n: (n.name, n.node_id))
    ready_nodes = [n for n in nodes if n.status is NodeStatus.READY]
    # The hot loop runs on node indices and plain lists: a node's index in `ready_nodes` is also
    # its (name, id) rank, the last tie-break. Per node what is free, as [cpu, memory, slots],
    # and its capacity as the divisor of the score. Least utilised after placement is scored as
    # most headroom after placement (the smallest free fraction), the same order.
    free = [
        [n.capacity.cpu_millis - n.allocated.cpu_millis, n.capacity.memory_bytes - n.allocated.memory_bytes,
         n.capacity.slots - n.allocated.slots]
        for n in ready_nodes
    ]  # fmt: skip
    divisor = [
        (_divisor(n.capacity.cpu_millis), _divisor(n.capacity.memory_bytes), _divisor(n.capacity.slots))
        for n in ready_nodes
    ]
    node_ids = [n.node_id for n in ready_nodes]
    # Per run: its steps per node index, those already there and those this plan puts there.
    on_node: dict[str, dict[int, int]] = {}
    for i, n in enumerate(ready_nodes):
        for run_id, count in n.run_counts.items():
            on_node.setdefault(run_id, {})[i] = count
    # Per node selector: the matching nodes, and those of them with a slot left. A node that
    # fills stays in the open lists; a list is compacted once a step's scan passes more than
    # `SCORE_LIMIT` full nodes in it, so scans stay short and a compaction is rare.
    matching_of: dict[tuple[tuple[str, str], ...], list[int]] = {}
    open_of: dict[tuple[tuple[str, str], ...], list[int]] = {}
    reasons: dict[tuple[tuple[tuple[str, str], ...], Resources], str] = {}  # for steps that fit nowhere
    rotation = itertools.count(0, ROTATION_STRIDE)
    limit = SCORE_LIMIT

    placements: list[Placement] = []
    blocked: list[Blocked] = []
    next_wakeup: datetime | None = None

    for s in sorted(ready, key=lambda s: (s.order, s.run_id, s.step, s.attempt)):
        if s.not_before is not None and s.not_before > now:
            if next_wakeup is None or s.not_before < next_wakeup:
                next_wakeup = s.not_before
            continue

        selector = tuple(sorted(s.node_selector.items())) if s.node_selector else ()
        matching = open_of.get(selector)
        if matching is None:
            matching_of[selector] = [i for i, n in enumerate(ready_nodes) if _matches(n.labels, s.node_selector)]
            matching = open_of[selector] = [i for i in matching_of[selector] if free[i][2] > 0]
        cpu, memory, slots = s.request.cpu_millis, s.request.memory_bytes, s.request.slots
        run_id, avoid = s.run_id, s.avoid_nodes
        counts = on_node.setdefault(run_id, {})
        # The best candidate so far, compared by hand in the order of the docstring (a tuple
        # per candidate costs a third of the pass): not avoided, fewest of the run, least
        # utilised, lowest (name, id) rank.
        chosen, chosen_avoided, chosen_count, chosen_room = -1, False, 0, 0.0
        scored = full = 0
        start = next(rotation) % len(matching) if len(matching) > limit else 0
        for i in itertools.chain(itertools.islice(matching, start, None), itertools.islice(matching, start)):
            f = free[i]
            if f[0] < cpu or f[1] < memory or f[2] < slots:
                full += f[2] <= 0
                continue
            if scored == limit:
                break
            scored += 1
            avoided = node_ids[i] in avoid if avoid else False
            count = counts.get(i, 0)
            if chosen >= 0:
                if avoided is not chosen_avoided:
                    if avoided:
                        continue
                elif count > chosen_count:
                    continue
                elif count == chosen_count:
                    d = divisor[i]
                    room = min((f[0] - cpu) / d[0], (f[1] - memory) / d[1], (f[2] - slots) / d[2])
                    if room > chosen_room or (room == chosen_room and i < chosen):
                        chosen, chosen_room = i, room
                    continue
            d = divisor[i]
            room = min((f[0] - cpu) / d[0], (f[1] - memory) / d[1], (f[2] - slots) / d[2])
            chosen, chosen_avoided, chosen_count, chosen_room = i, avoided, count, room
        if full > limit:
            matching[:] = [i for i in matching if free[i][2] > 0]
        if chosen < 0:
            reason = reasons.get((selector, s.request))
            if reason is None:
                members = [ready_nodes[i] for i in matching_of[selector]]
                reason = reasons[selector, s.request] = _blocked_reason(nodes, members, s)
            blocked.append(Blocked(run_id=s.run_id, step=s.step, reason=reason))
            continue
        f = free[chosen]
        f[0], f[1], f[2] = f[0] - cpu, f[1] - memory, f[2] - slots
        counts[chosen] = counts.get(chosen, 0) + 1
        placements.append(Placement(run_id=run_id, step=s.step, attempt=s.attempt, node_id=node_ids[chosen]))

    return Plan(placements=tuple(placements), blocked=tuple(blocked), next_wakeup=next_wakeup)


def _matches(labels: Mapping[str, str], selector: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def _divisor(capacity: int) -> int:
    """What a use of `capacity` is divided by for its fraction of it, as a float: equal fractions
    are equal floats (division rounds correctly), so ties still fall to the node name. A node with
    no capacity of a kind only fits a request of none of it, which counts as 0."""
    return capacity if capacity > 0 else 1


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
