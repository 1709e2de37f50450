"""Table tests for the DAG engine: `advance`, `topological_order` and `retry_reset`."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from agentflow.vocabulary import RunStatus, StepStatus
from controlplane.dag import Advance, StepState, advance, retry_reset, topological_order

pytestmark = pytest.mark.unit

P = StepStatus.PENDING
R = StepStatus.READY
A = StepStatus.ASSIGNED
RUN = StepStatus.RUNNING
OK = StepStatus.SUCCEEDED
FAIL = StepStatus.FAILED
CANC = StepStatus.CANCELLED
SKIP = StepStatus.SKIPPED


def st(name: str, status: StepStatus = P, *deps: str) -> StepState:
    return StepState(name=name, status=status, depends_on=deps)


def diamond(a: StepStatus, b: StepStatus, c: StepStatus, d: StepStatus) -> list[StepState]:
    """a -> (b, c) -> d"""
    return [st("a", a), st("b", b, "a"), st("c", c, "a"), st("d", d, "b", "c")]


def fan(src: StepStatus, *mids: StepStatus, sink: StepStatus = P) -> list[StepState]:
    """src -> m0..mN -> sink"""
    names = [f"m{i}" for i in range(len(mids))]
    return [
        st("src", src),
        *(st(n, s, "src") for n, s in zip(names, mids, strict=True)),
        st("sink", sink, *names),
    ]


@dataclass(frozen=True)
class Case:
    steps: list[StepState]
    ready: tuple[str, ...] = ()
    skipped: tuple[tuple[str, str], ...] = ()
    outcome: RunStatus | None = None
    expect: Advance = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "expect", Advance(ready=self.ready, skipped=self.skipped, outcome=self.outcome))


ADVANCE_CASES = {
    # diamond progression
    "diamond-start": Case(diamond(P, P, P, P), ready=("a",)),
    "diamond-a-running": Case(diamond(RUN, P, P, P)),
    "diamond-a-done": Case(diamond(OK, P, P, P), ready=("b", "c")),
    "diamond-b-done-c-running": Case(diamond(OK, OK, RUN, P)),
    "diamond-both-done": Case(diamond(OK, OK, OK, P), ready=("d",)),
    "diamond-d-ready-is-not-repeated": Case(diamond(OK, OK, OK, R)),
    "diamond-d-assigned": Case(diamond(OK, OK, OK, A)),
    "diamond-all-done": Case(diamond(OK, OK, OK, OK), outcome=RunStatus.SUCCEEDED),
    "diamond-b-failed-c-running": Case(diamond(OK, FAIL, RUN, P), skipped=(("d", 'dependency "b" failed'),)),
    "diamond-b-failed-c-done": Case(
        diamond(OK, FAIL, OK, P), skipped=(("d", 'dependency "b" failed'),), outcome=RunStatus.FAILED
    ),
    "diamond-root-failed": Case(
        diamond(FAIL, P, P, P),
        skipped=(
            ("b", 'dependency "a" failed'),
            ("c", 'dependency "a" failed'),
            ("d", 'dependency "b" skipped'),
        ),
        outcome=RunStatus.FAILED,
    ),
    # fan-out / fan-in
    "fan-out": Case(fan(OK, P, P, P), ready=("m0", "m1", "m2")),
    "fan-in-waits-for-all": Case(fan(OK, OK, OK, RUN)),
    "fan-in-waits-for-ready-sibling": Case(fan(OK, OK, R, OK)),
    "fan-in-after-all": Case(fan(OK, OK, OK, OK), ready=("sink",)),
    "fan-in-one-failed-skips-at-once": Case(fan(OK, RUN, FAIL, RUN), skipped=(("sink", 'dependency "m1" failed'),)),
    "fan-in-names-first-bad-dependency": Case(
        fan(OK, OK, CANC, FAIL), skipped=(("sink", 'dependency "m1" cancelled'),), outcome=RunStatus.FAILED
    ),
    # failure propagation
    "chain-skips-transitively": Case(
        [st("a", FAIL), st("b", P, "a"), st("c", P, "b")],
        skipped=(("b", 'dependency "a" failed'), ("c", 'dependency "b" skipped')),
        outcome=RunStatus.FAILED,
    ),
    "propagation-against-declaration-order": Case(
        [st("c", P, "b"), st("b", P, "a"), st("a", FAIL)],
        skipped=(("c", 'dependency "b" skipped'), ("b", 'dependency "a" failed')),
        outcome=RunStatus.FAILED,
    ),
    "cancelled-dependency-skips": Case(
        [st("a", CANC), st("b", P, "a")],
        skipped=(("b", 'dependency "a" cancelled'),),
        outcome=RunStatus.FAILED,
    ),
    "skipped-dependency-skips": Case(
        [st("a", SKIP), st("b", P, "a")],
        skipped=(("b", 'dependency "a" skipped'),),
        outcome=RunStatus.FAILED,
    ),
    "independent-branch-carries-on": Case(
        [st("a", FAIL), st("b", P, "a"), st("x", OK), st("y", P, "x")],
        ready=("y",),
        skipped=(("b", 'dependency "a" failed'),),
    ),
    "already-skipped-not-repeated": Case(
        [st("a", FAIL), st("b", SKIP, "a")],
        outcome=RunStatus.FAILED,
    ),
    # outcome rules
    "empty-run-succeeded": Case([], outcome=RunStatus.SUCCEEDED),
    "all-succeeded": Case([st("a", OK), st("b", OK, "a")], outcome=RunStatus.SUCCEEDED),
    "failed-while-other-running": Case([st("a", FAIL), st("b", RUN)]),
    "failed-and-succeeded": Case([st("a", FAIL), st("b", OK)], outcome=RunStatus.FAILED),
    "cancelled-step-fails-run": Case([st("a", CANC), st("b", OK)], outcome=RunStatus.FAILED),
    "skipped-step-fails-run": Case([st("a", SKIP), st("b", OK)], outcome=RunStatus.FAILED),
    "ready-step-is-not-terminal": Case([st("a", OK), st("b", R)]),
    "pending-made-ready-is-not-terminal": Case([st("a", OK), st("b", P, "a")], ready=("b",)),
    "roots-ready-in-declaration-order": Case([st("z"), st("a"), st("m", P, "a")], ready=("z", "a")),
}


@pytest.mark.parametrize("case", ADVANCE_CASES.values(), ids=ADVANCE_CASES.keys())
def test_advance(case: Case) -> None:
    assert advance(case.steps) == case.expect


TOPO_CASES = {
    "empty": ([], ()),
    "independent-keep-declaration-order": ([st("c"), st("a"), st("b")], ("c", "a", "b")),
    "dependency-first": ([st("b", P, "a"), st("a")], ("a", "b")),
    "diamond": (diamond(P, P, P, P), ("a", "b", "c", "d")),
    "diamond-declared-backwards": (
        [st("d", P, "b", "c"), st("c", P, "a"), st("b", P, "a"), st("a")],
        ("a", "c", "b", "d"),
    ),
    "peers-by-declaration-once-free": (
        # x is declared first but only becomes free after a; then x precedes b.
        [st("x", P, "a"), st("a"), st("b")],
        ("a", "x", "b"),
    ),
    "duplicate-dependency-listed-twice": ([st("a"), st("b", P, "a", "a")], ("a", "b")),
}


@pytest.mark.parametrize(("steps", "order"), TOPO_CASES.values(), ids=TOPO_CASES.keys())
def test_topological_order(steps: list[StepState], order: tuple[str, ...]) -> None:
    assert topological_order(steps) == order


INVALID_CASES = {
    "cycle": ([st("a", P, "b"), st("b", P, "a"), st("c")], 'dependency cycle among steps "a", "b"'),
    "self-loop": ([st("a", P, "a")], 'dependency cycle among steps "a"'),
    "unknown-dependency": ([st("a", P, "nope")], 'step "a" depends on unknown step "nope"'),
    "duplicate-name": ([st("a"), st("a")], 'duplicate step "a"'),
}


@pytest.mark.parametrize(("steps", "message"), INVALID_CASES.values(), ids=INVALID_CASES.keys())
def test_invalid_graphs_raise(steps: list[StepState], message: str) -> None:
    with pytest.raises(ValueError) as topo:
        topological_order(steps)
    assert str(topo.value) == message
    with pytest.raises(ValueError):
        advance(steps)


RETRY_CASES = {
    "nothing-to-reset": ([st("a", OK), st("b", OK, "a")], ()),
    "failed-and-its-skipped-dependents": (
        [st("a", OK), st("b", FAIL, "a"), st("c", SKIP, "b"), st("d", OK, "a")],
        ("b", "c"),
    ),
    "cancelled-steps": ([st("a", OK), st("b", CANC, "a"), st("c", CANC, "b")], ("b", "c")),
    "declaration-order": ([st("z", SKIP, "y"), st("y", FAIL)], ("z", "y")),
    "non-terminal-kept": ([st("a", RUN), st("b", R), st("c", P, "a"), st("d", FAIL)], ("d",)),
}


@pytest.mark.parametrize(("steps", "reset"), RETRY_CASES.values(), ids=RETRY_CASES.keys())
def test_retry_reset(steps: list[StepState], reset: tuple[str, ...]) -> None:
    assert retry_reset(steps) == reset


def test_retry_then_advance_readies_failed_step() -> None:
    steps = [st("a", OK), st("b", FAIL, "a"), st("c", SKIP, "b"), st("d", OK, "a")]
    reset = set(retry_reset(steps))
    after = [st(s.name, P if s.name in reset else s.status, *s.depends_on) for s in steps]
    assert advance(after) == Advance(ready=("b",), skipped=(), outcome=None)
