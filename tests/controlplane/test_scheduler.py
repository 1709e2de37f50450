"""Table tests for `controlplane.scheduler.plan`, built from small node and step factories."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from agentflow.vocabulary import NodeStatus
from controlplane.domain import Resources
from controlplane.scheduler import Blocked, ClusterSnapshot, NodeView, Placement, Plan, ReadyStep, plan

pytestmark = pytest.mark.unit

NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
Mi = 1 << 20
Gi = 1 << 30


# -- harness -------------------------------------------------------------------------------


def node(
    name: str,
    *,
    cpu: int = 4000,
    mem: int = 8 * Gi,
    slots: int = 10,
    used_cpu: int = 0,
    used_mem: int = 0,
    used_slots: int = 0,
    status: NodeStatus = NodeStatus.READY,
    labels: Mapping[str, str] | None = None,
    runs: Mapping[str, int] | None = None,
) -> NodeView:
    """A node whose id is its name with an "id-" prefix, ready and empty by default."""
    return NodeView(
        node_id=f"id-{name}",
        name=name,
        status=status,
        labels=dict(labels or {}),
        capacity=Resources(cpu_millis=cpu, memory_bytes=mem, slots=slots),
        allocated=Resources(cpu_millis=used_cpu, memory_bytes=used_mem, slots=used_slots),
        run_counts=dict(runs or {}),
    )


def step(
    name: str,
    *,
    run: str = "r1",
    seq: int = 1,
    index: int = 0,
    attempt: int = 1,
    cpu: int = 100,
    mem: int = 64 * Mi,
    selector: Mapping[str, str] | None = None,
    not_before: datetime | None = None,
    avoid: Sequence[str] = (),
) -> ReadyStep:
    """A ready step requesting 100m cpu, 64Mi and one slot by default; `avoid` takes node names."""
    return ReadyStep(
        run_id=run,
        step=name,
        attempt=attempt,
        request=Resources(cpu_millis=cpu, memory_bytes=mem, slots=1),
        node_selector=dict(selector or {}),
        not_before=not_before,
        order=(seq, index),
        avoid_nodes=frozenset(f"id-{n}" for n in avoid),
    )


def steps(count: int, *, run: str = "r1", seq: int = 1, cpu: int = 100, mem: int = 64 * Mi) -> list[ReadyStep]:
    """`count` steps s0, s1, ... of one run in declaration order."""
    return [step(f"s{i}", run=run, seq=seq, index=i, cpu=cpu, mem=mem) for i in range(count)]


def run_plan(nodes: Sequence[NodeView], ready: Sequence[ReadyStep], *, now: datetime = NOW) -> Plan:
    return plan(ClusterSnapshot(nodes=tuple(nodes)), ready, now=now)


def where(p: Plan) -> dict[str, str]:
    """step name -> node name (node ids are "id-<name>")."""
    return {pl.step: pl.node_id.removeprefix("id-") for pl in p.placements}


def reasons(p: Plan) -> dict[str, str]:
    return {b.step: b.reason for b in p.blocked}


@dataclass(frozen=True)
class Case:
    nodes: Sequence[NodeView]
    ready: Sequence[ReadyStep]
    placed: Mapping[str, str] = field(default_factory=dict)  # step -> node name
    blocked: Mapping[str, str] = field(default_factory=dict)  # step -> reason
    next_wakeup: datetime | None = None


def check(case: Case) -> None:
    p = run_plan(case.nodes, case.ready)
    assert where(p) == dict(case.placed)
    assert reasons(p) == dict(case.blocked)
    assert p.next_wakeup == case.next_wakeup


FULL = "waiting for capacity: all matching nodes are full"

# -- fit -----------------------------------------------------------------------------------

FIT_CASES = {
    "fits-exactly-on-every-dimension": Case(
        nodes=[node("a", cpu=1000, mem=1 * Gi, slots=1)],
        ready=[step("s", cpu=1000, mem=1 * Gi)],
        placed={"s": "a"},
    ),
    "cpu-full": Case(
        nodes=[node("a", cpu=1000, used_cpu=950)],
        ready=[step("s", cpu=100)],
        blocked={"s": FULL},
    ),
    "memory-full": Case(
        nodes=[node("a", mem=1 * Gi, used_mem=1 * Gi - 32 * Mi)],
        ready=[step("s", mem=64 * Mi)],
        blocked={"s": FULL},
    ),
    "slots-full": Case(
        nodes=[node("a", slots=2, used_slots=2)],
        ready=[step("s")],
        blocked={"s": FULL},
    ),
    "cpu-full-on-one-node-goes-to-other": Case(
        nodes=[node("a", cpu=1000, used_cpu=1000), node("b", cpu=1000, used_cpu=0)],
        ready=[step("s", cpu=500)],
        placed={"s": "b"},
    ),
    "memory-full-on-one-node-goes-to-other": Case(
        nodes=[node("a", mem=1 * Gi, used_mem=0), node("b", mem=1 * Gi, used_mem=1 * Gi)],
        ready=[step("s", mem=512 * Mi)],
        placed={"s": "a"},
    ),
    "slots-full-on-one-node-goes-to-other": Case(
        nodes=[node("a", slots=1, used_slots=1), node("b", slots=1)],
        ready=[step("s")],
        placed={"s": "b"},
    ),
    "plan-counts-its-own-cpu": Case(
        nodes=[node("a", cpu=1000)],
        ready=steps(3, cpu=400),
        placed={"s0": "a", "s1": "a"},
        blocked={"s2": FULL},
    ),
    "plan-counts-its-own-memory": Case(
        nodes=[node("a", mem=128 * Mi)],
        ready=steps(3, mem=64 * Mi),
        placed={"s0": "a", "s1": "a"},
        blocked={"s2": FULL},
    ),
    "plan-counts-its-own-slots": Case(
        nodes=[node("a", slots=3, used_slots=1)],
        ready=steps(3),
        placed={"s0": "a", "s1": "a"},
        blocked={"s2": FULL},
    ),
}


@pytest.mark.parametrize("case", FIT_CASES.values(), ids=FIT_CASES.keys())
def test_fit(case: Case) -> None:
    check(case)


# -- node status and selectors -------------------------------------------------------------

ELIGIBILITY_CASES = {
    "draining-excluded": Case(
        nodes=[node("a", status=NodeStatus.DRAINING), node("b")],
        ready=[step("s")],
        placed={"s": "b"},
    ),
    "down-excluded": Case(
        nodes=[node("a", status=NodeStatus.DOWN), node("b")],
        ready=[step("s")],
        placed={"s": "b"},
    ),
    "disconnected-excluded": Case(
        nodes=[node("a", status=NodeStatus.DISCONNECTED), node("b")],
        ready=[step("s")],
        placed={"s": "b"},
    ),
    "selector-matches-one-label": Case(
        nodes=[node("a"), node("b", labels={"gpu": "a100"})],
        ready=[step("s", selector={"gpu": "a100"})],
        placed={"s": "b"},
    ),
    "selector-needs-every-pair": Case(
        nodes=[
            node("a", labels={"gpu": "a100"}),
            node("b", labels={"gpu": "a100", "zone": "eu", "extra": "x"}),
        ],
        ready=[step("s", selector={"gpu": "a100", "zone": "eu"})],
        placed={"s": "b"},
    ),
    "selector-value-must-be-equal": Case(
        nodes=[node("a", labels={"gpu": "t4"}), node("b", labels={"gpu": "a100"})],
        ready=[step("s", selector={"gpu": "t4"})],
        placed={"s": "a"},
    ),
    "empty-selector-matches-any": Case(
        nodes=[node("a", labels={"gpu": "a100"})],
        ready=[step("s")],
        placed={"s": "a"},
    ),
    "selector-match-only-on-draining-node": Case(
        nodes=[node("a", labels={"gpu": "a100"}, status=NodeStatus.DRAINING), node("b")],
        ready=[step("s", selector={"gpu": "a100"})],
        blocked={"s": "no ready node matches nodeSelector gpu=a100"},
    ),
}


@pytest.mark.parametrize("case", ELIGIBILITY_CASES.values(), ids=ELIGIBILITY_CASES.keys())
def test_eligibility(case: Case) -> None:
    check(case)


# -- choosing among candidates -------------------------------------------------------------

CHOICE_CASES = {
    "spread-one-run-across-nodes": Case(
        nodes=[node("a"), node("b"), node("c")],
        ready=steps(3),
        placed={"s0": "a", "s1": "b", "s2": "c"},
    ),
    "spread-counts-existing-steps-of-the-run": Case(
        nodes=[node("a", runs={"r1": 1}, used_slots=1), node("b", runs={"r2": 3}, used_slots=3)],
        ready=[step("s", run="r1")],
        placed={"s": "b"},
    ),
    "spread-beats-utilisation": Case(
        nodes=[node("a", runs={"r1": 1}, used_slots=1), node("b", used_cpu=3000, used_slots=5)],
        ready=[step("s")],
        placed={"s": "b"},
    ),
    "spread-is-per-run": Case(
        # After x on b, b (2/40 slots) is still less utilised than a (1/10) for y of r2.
        nodes=[node("a"), node("b", slots=40)],
        ready=[step("x", run="r1", seq=1), step("y", run="r2", seq=2)],
        placed={"x": "b", "y": "b"},
    ),
    "least-utilised-by-cpu": Case(
        nodes=[node("a", used_cpu=2000), node("b", used_cpu=1000)],
        ready=[step("s")],
        placed={"s": "b"},
    ),
    "least-utilised-by-memory": Case(
        nodes=[node("a", used_mem=1 * Gi), node("b", used_mem=4 * Gi)],
        ready=[step("s")],
        placed={"s": "a"},
    ),
    "least-utilised-by-slots": Case(
        nodes=[node("a", used_slots=5), node("b", used_slots=2)],
        ready=[step("s")],
        placed={"s": "b"},
    ),
    "utilisation-is-the-fullest-dimension": Case(
        # a: cpu 10%, memory 75%; b: cpu 50%, memory 1% -> b is less utilised.
        nodes=[node("a", used_cpu=300, used_mem=6 * Gi), node("b", used_cpu=1900)],
        ready=[step("s")],
        placed={"s": "b"},
    ),
    "utilisation-is-relative-to-capacity": Case(
        # After placement: a 1100/2000 = 55%, b 1100/4000 = 27.5%.
        nodes=[node("a", cpu=2000, used_cpu=1000), node("b", cpu=4000, used_cpu=1000)],
        ready=[step("s")],
        placed={"s": "b"},
    ),
    "utilisation-counts-the-request": Case(
        # Before: a 40%, b 30%; after a 1000m step: a 65%, b 80%.
        nodes=[node("a", cpu=4000, used_cpu=1600), node("b", cpu=2000, used_cpu=600)],
        ready=[step("s", cpu=1000)],
        placed={"s": "a"},
    ),
    "equal-utilisation-falls-back-to-name": Case(
        nodes=[node("b"), node("a"), node("c")],
        ready=[step("s")],
        placed={"s": "a"},
    ),
    "avoided-node-not-used-when-another-fits": Case(
        nodes=[node("a"), node("b", used_cpu=3000, used_slots=8, runs={"r1": 5})],
        ready=[step("s", avoid=["a"])],
        placed={"s": "b"},
    ),
    "avoided-node-used-rather-than-not-placing": Case(
        nodes=[node("a"), node("b", status=NodeStatus.DOWN)],
        ready=[step("s", avoid=["a"])],
        placed={"s": "a"},
    ),
    "avoided-node-used-when-others-are-full": Case(
        nodes=[node("a"), node("b", slots=1, used_slots=1)],
        ready=[step("s", avoid=["a"])],
        placed={"s": "a"},
    ),
    "all-avoided-then-usual-preference": Case(
        nodes=[node("a", used_cpu=2000), node("b")],
        ready=[step("s", avoid=["a", "b"])],
        placed={"s": "b"},
    ),
}


@pytest.mark.parametrize("case", CHOICE_CASES.values(), ids=CHOICE_CASES.keys())
def test_choice(case: Case) -> None:
    check(case)


# -- queue order, backoff and head-of-line -------------------------------------------------

QUEUE_CASES = {
    "fifo-across-runs": Case(
        nodes=[node("a", slots=1)],
        ready=[step("late", run="r2", seq=2), step("early", run="r1", seq=1)],
        placed={"early": "a"},
        blocked={"late": FULL},
    ),
    "declaration-order-within-a-run": Case(
        nodes=[node("a", slots=1)],
        ready=[step("second", index=1), step("first", index=0)],
        placed={"first": "a"},
        blocked={"second": FULL},
    ),
    "no-head-of-line-blocking": Case(
        nodes=[node("a", cpu=2000, used_cpu=1000)],
        ready=[step("big", index=0, cpu=1500), step("small", index=1, cpu=500)],
        placed={"small": "a"},
        blocked={"big": FULL},
    ),
    "never-fitting-step-does-not-block-later-ones": Case(
        nodes=[node("a", cpu=2000)],
        ready=[step("huge", index=0, cpu=4000), step("small", index=1)],
        placed={"small": "a"},
        blocked={"huge": "requests 4 cpu, 64Mi but the largest matching node has 2 cpu, 8Gi"},
    ),
    "backoff-in-future-not-placed": Case(
        nodes=[node("a")],
        ready=[step("s", not_before=NOW + timedelta(seconds=5))],
        next_wakeup=NOW + timedelta(seconds=5),
    ),
    "backoff-expired-is-placed": Case(
        nodes=[node("a")],
        ready=[step("s", not_before=NOW - timedelta(seconds=5))],
        placed={"s": "a"},
    ),
    "backoff-ending-now-is-placed": Case(
        nodes=[node("a")],
        ready=[step("s", not_before=NOW)],
        placed={"s": "a"},
    ),
    "next-wakeup-is-earliest-future": Case(
        nodes=[node("a")],
        ready=[
            step("s0", index=0, not_before=NOW + timedelta(seconds=30)),
            step("s1", index=1, not_before=NOW + timedelta(seconds=2)),
            step("s2", index=2, not_before=NOW - timedelta(seconds=60)),
            step("s3", index=3),
        ],
        placed={"s2": "a", "s3": "a"},
        next_wakeup=NOW + timedelta(seconds=2),
    ),
    "backing-off-step-is-not-blocked-even-without-nodes": Case(
        nodes=[],
        ready=[step("s", not_before=NOW + timedelta(minutes=1))],
        next_wakeup=NOW + timedelta(minutes=1),
    ),
    "backing-off-step-holds-no-capacity": Case(
        nodes=[node("a", slots=1)],
        ready=[step("first", index=0, not_before=NOW + timedelta(seconds=1)), step("second", index=1)],
        placed={"second": "a"},
        next_wakeup=NOW + timedelta(seconds=1),
    ),
    "nothing-ready": Case(nodes=[node("a")], ready=[]),
}


@pytest.mark.parametrize("case", QUEUE_CASES.values(), ids=QUEUE_CASES.keys())
def test_queue(case: Case) -> None:
    check(case)


# -- blocked reasons -----------------------------------------------------------------------

BLOCKED_CASES = {
    "no-nodes": Case(nodes=[], ready=[step("s")], blocked={"s": "no nodes are registered"}),
    "no-ready-nodes": Case(
        nodes=[
            node("a", status=NodeStatus.DOWN),
            node("b", status=NodeStatus.DRAINING),
            node("c", status=NodeStatus.DOWN),
        ],
        ready=[step("s")],
        blocked={"s": "no ready nodes (2 down, 1 draining)"},
    ),
    "no-ready-nodes-all-kinds": Case(
        nodes=[
            node("a", status=NodeStatus.DISCONNECTED),
            node("b", status=NodeStatus.DRAINING),
            node("c", status=NodeStatus.DOWN),
        ],
        ready=[step("s")],
        blocked={"s": "no ready nodes (1 disconnected, 1 down, 1 draining)"},
    ),
    "no-node-matches-selector": Case(
        nodes=[node("a", labels={"gpu": "t4"}), node("b")],
        ready=[step("s", selector={"gpu": "a100"})],
        blocked={"s": "no ready node matches nodeSelector gpu=a100"},
    ),
    "no-node-matches-multi-key-selector": Case(
        nodes=[node("a", labels={"gpu": "a100"})],
        ready=[step("s", selector={"zone": "eu", "gpu": "a100"})],
        blocked={"s": "no ready node matches nodeSelector gpu=a100,zone=eu"},
    ),
    "request-exceeds-largest-node-cpu": Case(
        nodes=[node("a", cpu=2000, mem=8 * Gi), node("b", cpu=1000, mem=4 * Gi)],
        ready=[step("s", cpu=4000, mem=64 * Mi)],
        blocked={"s": "requests 4 cpu, 64Mi but the largest matching node has 2 cpu, 8Gi"},
    ),
    "request-exceeds-largest-node-memory": Case(
        nodes=[node("a", cpu=2000, mem=2 * Gi)],
        ready=[step("s", cpu=500, mem=3 * Gi)],
        blocked={"s": "requests 500m cpu, 3Gi but the largest matching node has 2 cpu, 2Gi"},
    ),
    "request-exceeds-largest-matching-node-only": Case(
        nodes=[
            node("big", cpu=16000, mem=64 * Gi),
            node("gpu", cpu=2000, mem=8 * Gi, labels={"gpu": "a100"}),
        ],
        ready=[step("s", cpu=4000, selector={"gpu": "a100"})],
        blocked={"s": "requests 4 cpu, 64Mi but the largest matching node has 2 cpu, 8Gi"},
    ),
    "request-exceeds-node-with-no-slots": Case(
        nodes=[node("a", slots=0)],
        ready=[step("s")],
        blocked={"s": "requests 100m cpu, 64Mi, 1 slot but the largest matching node has 4 cpu, 8Gi, 0 slots"},
    ),
    "largest-node-is-the-closest-fit": Case(
        # Neither fits; b at least fits on memory, so it is named although a has more cpu.
        nodes=[node("a", cpu=2000, mem=1 * Gi), node("b", cpu=1000, mem=32 * Gi)],
        ready=[step("s", cpu=4000, mem=16 * Gi)],
        blocked={"s": "requests 4 cpu, 16Gi but the largest matching node has 1 cpu, 32Gi"},
    ),
    "odd-quantities": Case(
        nodes=[node("a", cpu=1500, mem=1536 * Mi)],
        ready=[step("s", cpu=1501, mem=1000)],
        blocked={"s": "requests 1501m cpu, 1k but the largest matching node has 1500m cpu, 1536Mi"},
    ),
    "node-without-cpu": Case(
        nodes=[node("a", cpu=0)],
        ready=[step("s")],
        blocked={"s": "requests 100m cpu, 64Mi but the largest matching node has 0 cpu, 8Gi"},
    ),
    "full-right-now": Case(
        nodes=[node("a", slots=1, used_slots=1), node("b", cpu=1000, used_cpu=1000)],
        ready=[step("s")],
        blocked={"s": FULL},
    ),
    "full-ignores-down-nodes-with-room": Case(
        nodes=[node("a", slots=1, used_slots=1), node("b", status=NodeStatus.DOWN)],
        ready=[step("s")],
        blocked={"s": FULL},
    ),
}


@pytest.mark.parametrize("case", BLOCKED_CASES.values(), ids=BLOCKED_CASES.keys())
def test_blocked_reason(case: Case) -> None:
    check(case)


def test_blocked_carries_run_and_step() -> None:
    p = run_plan([], [step("s", run="r9")])
    assert p.blocked == (Blocked(run_id="r9", step="s", reason="no nodes are registered"),)
    assert p.placements == ()


# -- whole plans ---------------------------------------------------------------------------


def test_placement_carries_attempt() -> None:
    p = run_plan([node("a")], [step("s", run="r7", attempt=3)])
    assert p.placements == (Placement(run_id="r7", step="s", attempt=3, node_id="id-a"),)


def test_twenty_steps_on_two_nodes_spread_ten_ten() -> None:
    p = run_plan([node("a", slots=10), node("b", slots=10)], steps(20, cpu=100, mem=64 * Mi))
    assert len(p.placements) == 20
    assert p.blocked == ()
    assert Counter(where(p).values()) == {"a": 10, "b": 10}
    # Alternating placement is what spread gives for equal nodes.
    assert [pl.node_id for pl in p.placements[:4]] == ["id-a", "id-b", "id-a", "id-b"]


def test_twenty_first_step_blocked_when_twenty_slots_used() -> None:
    p = run_plan([node("a", slots=10), node("b", slots=10)], steps(21))
    assert len(p.placements) == 20
    assert reasons(p) == {"s20": FULL}


def _mixed_cluster() -> tuple[list[NodeView], list[ReadyStep]]:
    nodes = [
        node("a", cpu=2000, slots=4, labels={"zone": "eu"}),
        node("b", cpu=4000, slots=6, used_cpu=500, used_slots=1, runs={"r2": 1}),
        node("c", cpu=8000, slots=8, labels={"gpu": "a100"}),
        node("d", status=NodeStatus.DRAINING),
        node("e", cpu=1000, mem=2 * Gi, slots=2),
    ]
    ready = [
        *steps(6, run="r1", seq=1, cpu=300),
        *steps(5, run="r2", seq=2, cpu=700),
        step("g", run="r3", seq=3, selector={"gpu": "a100"}, cpu=2000),
        step("z", run="r3", seq=3, index=1, selector={"zone": "us"}),
        step("w", run="r3", seq=3, index=2, not_before=NOW + timedelta(seconds=9)),
        step("x", run="r4", seq=4, cpu=3000, avoid=["c"]),
        step("huge", run="r4", seq=4, index=1, cpu=64000),
    ]
    return nodes, ready


@pytest.mark.parametrize("seed", range(10), ids=lambda s: f"seed-{s}")
def test_same_plan_for_shuffled_inputs(seed: int) -> None:
    nodes, ready = _mixed_cluster()
    expected = run_plan(nodes, ready)
    rng = random.Random(seed)
    rng.shuffle(nodes)
    rng.shuffle(ready)
    assert run_plan(nodes, ready) == expected


def test_mixed_cluster_plan() -> None:
    nodes, ready = _mixed_cluster()
    p = run_plan(nodes, ready)
    placed = where(p)
    assert "d" not in placed.values()
    assert placed["g"] == "c"
    assert "w" not in placed and p.next_wakeup == NOW + timedelta(seconds=9)
    assert reasons(p) == {
        "z": "no ready node matches nodeSelector zone=us",
        "huge": "requests 64 cpu, 64Mi but the largest matching node has 8 cpu, 8Gi",
    }
    # r1 and r2 share step names s0..s4, so look at placements by run: 6 steps of r1 on 4
    # ready nodes spread to at most 2 per node.
    per_run = Counter((pl.run_id, pl.node_id) for pl in p.placements)
    assert max(n for (run, _), n in per_run.items() if run == "r1") == 2
    # No node is given more than it has left.
    requests = {(s.run_id, s.step): s.request for s in ready}
    for n in nodes:
        total = n.allocated
        for pl in p.placements:
            if pl.node_id == n.node_id:
                total = total + requests[(pl.run_id, pl.step)]
        assert total.fits_in(n.capacity), n.name


def test_plan_does_not_mutate_inputs() -> None:
    nodes, ready = _mixed_cluster()
    before = (list(nodes), list(ready), [dict(n.run_counts) for n in nodes])
    run_plan(nodes, ready)
    assert (nodes, ready, [dict(n.run_counts) for n in nodes]) == before


# -- large clusters: a bounded number of nodes scored per step -------------------------------


def test_past_the_score_limit_steps_still_spread_and_never_overfill() -> None:
    from controlplane.scheduler import SCORE_LIMIT

    cluster = [node(f"n{i:03d}", slots=2) for i in range(10 * SCORE_LIMIT)]
    p = run_plan(cluster, steps(len(cluster) * 2 + 5))
    per_node: dict[str, int] = {}
    for name in where(p).values():
        per_node[name] = per_node.get(name, 0) + 1
    assert len(p.placements) == len(cluster) * 2  # every slot filled, none twice
    assert set(per_node.values()) == {2}
    assert [b.reason for b in p.blocked] == ["waiting for capacity: all matching nodes are full"] * 5


def test_past_the_score_limit_a_full_node_is_not_scanned_and_selectors_still_hold() -> None:
    from controlplane.scheduler import SCORE_LIMIT

    cluster = [node(f"n{i:03d}", slots=1, labels={"gpu": "a100" if i % 3 == 0 else "none"})
               for i in range(6 * SCORE_LIMIT)]  # fmt: skip
    gpu = [step(f"g{i}", index=i, selector={"gpu": "a100"}) for i in range(2 * SCORE_LIMIT + 1)]
    p = run_plan(cluster, gpu)
    assert all(int(n.removeprefix("n")) % 3 == 0 for n in where(p).values())
    assert len(p.placements) == 2 * SCORE_LIMIT and len(set(where(p).values())) == 2 * SCORE_LIMIT
    assert [b.step for b in p.blocked] == [f"g{2 * SCORE_LIMIT}"]
