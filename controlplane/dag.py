"""Progression of a run's step DAG: pure functions over step states, no I/O.

The caller loads the steps of one run, asks `advance` what changes, stores the changes and
emits the events; nothing here knows about storage, nodes or time.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass

from agentflow.vocabulary import RunStatus, StepStatus

_NOT_SUCCEEDED = frozenset({StepStatus.FAILED, StepStatus.SKIPPED, StepStatus.CANCELLED})


@dataclass(frozen=True, slots=True, kw_only=True)
class StepState:
    name: str
    status: StepStatus
    depends_on: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Advance:
    """What changes in a run; every tuple keeps declaration order."""

    ready: tuple[str, ...]  # PENDING -> READY: every dependency SUCCEEDED
    skipped: tuple[tuple[str, str], ...]  # PENDING -> SKIPPED, with the reason
    outcome: RunStatus | None  # SUCCEEDED/FAILED once every step is terminal, else None


def advance(steps: Sequence[StepState]) -> Advance:
    """Move PENDING steps on from the statuses of their dependencies.

    A PENDING step becomes READY when every dependency SUCCEEDED, and SKIPPED as soon as one
    dependency is FAILED, SKIPPED or CANCELLED, since it can then never run. Skipping
    propagates through the whole DAG in one call; the reason names the first such dependency
    in `depends_on` order, e.g. 'dependency "fetch" failed' or 'dependency "parse" skipped'.

    `outcome` is decided after these changes: SUCCEEDED when every step succeeded, FAILED when
    every step is terminal and any did not succeed, None while any step is not terminal. A
    cancelled run is decided by the caller, never here. A run without steps has succeeded.

    Raises ValueError for duplicate step names, unknown dependencies and cycles.
    """
    index = _index(steps)
    status = {s.name: s.status for s in steps}
    ready: set[str] = set()
    skipped: dict[str, str] = {}

    for name in topological_order(steps):
        s = steps[index[name]]
        if s.status is not StepStatus.PENDING:
            continue
        failed_dep = next((d for d in s.depends_on if status[d] in _NOT_SUCCEEDED), None)
        if failed_dep is not None:
            skipped[name] = f'dependency "{failed_dep}" {status[failed_dep].value}'
            status[name] = StepStatus.SKIPPED
        elif all(status[d] is StepStatus.SUCCEEDED for d in s.depends_on):
            ready.add(name)
            status[name] = StepStatus.READY

    outcome: RunStatus | None = None
    if all(st.terminal for st in status.values()):
        succeeded = all(st is StepStatus.SUCCEEDED for st in status.values())
        outcome = RunStatus.SUCCEEDED if succeeded else RunStatus.FAILED

    return Advance(
        ready=tuple(s.name for s in steps if s.name in ready),
        skipped=tuple((s.name, skipped[s.name]) for s in steps if s.name in skipped),
        outcome=outcome,
    )


def topological_order(steps: Sequence[StepState]) -> tuple[str, ...]:
    """Every step after its dependencies; among steps free at the same time, declaration order.

    Raises ValueError for duplicate step names, unknown dependencies and cycles.
    """
    index = _index(steps)
    waiting_on = [len(set(s.depends_on)) for s in steps]
    dependents: list[list[int]] = [[] for _ in steps]
    for i, s in enumerate(steps):
        for d in set(s.depends_on):
            dependents[index[d]].append(i)

    free = [i for i, n in enumerate(waiting_on) if n == 0]
    heapq.heapify(free)
    order: list[str] = []
    while free:
        i = heapq.heappop(free)
        order.append(steps[i].name)
        for j in dependents[i]:
            waiting_on[j] -= 1
            if waiting_on[j] == 0:
                heapq.heappush(free, j)

    if len(order) < len(steps):
        done = set(order)
        stuck = ", ".join(f'"{s.name}"' for s in steps if s.name not in done)
        raise ValueError(f"dependency cycle among steps {stuck}")
    return tuple(order)


def retry_reset(steps: Sequence[StepState]) -> tuple[str, ...]:
    """Steps a "retry run" resets to PENDING: every FAILED, SKIPPED or CANCELLED one.

    Succeeded steps keep their outputs; the caller then runs `advance` to make the reset
    steps whose dependencies all succeeded READY again.
    """
    return tuple(s.name for s in steps if s.status in _NOT_SUCCEEDED)


def _index(steps: Sequence[StepState]) -> dict[str, int]:
    index: dict[str, int] = {}
    for i, s in enumerate(steps):
        if s.name in index:
            raise ValueError(f'duplicate step "{s.name}"')
        index[s.name] = i
    for s in steps:
        for d in s.depends_on:
            if d not in index:
                raise ValueError(f'step "{s.name}" depends on unknown step "{d}"')
    return index
