"""Dependency cycles of a workflow's agents.

Agents are numbered by declaration; `edges[a]` lists the agents `a` depends on, in dependsOn
order. Everything here is deterministic for a given declaration order.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence


def find_cycles(edges: Mapping[int, Sequence[int]]) -> list[list[int]]:
    """One cycle per strongly connected component that has one, as [a, b, ..., a].

    Each is the shortest cycle through the component's first declared agent; the list is ordered
    by that agent. A self-loop counts as a cycle of its own.
    """
    cycles = []
    for component in strongly_connected(edges):
        start = component[0]
        if len(component) > 1 or start in edges.get(start, ()):
            cycles.append(_shortest_cycle(start, set(component), edges))
    return cycles


def strongly_connected(edges: Mapping[int, Sequence[int]]) -> list[list[int]]:
    """Tarjan's algorithm without recursion; each component sorted, components by first member."""
    index: dict[int, int] = {}
    low: dict[int, int] = {}
    on_stack: set[int] = set()
    stack: list[int] = []
    components: list[list[int]] = []
    nodes = sorted({*edges, *(w for targets in edges.values() for w in targets)})
    for root in nodes:
        if root in index:
            continue
        work: list[tuple[int, int]] = [(root, 0)]
        while work:
            v, i = work.pop()
            if i == 0:
                index[v] = low[v] = len(index)
                stack.append(v)
                on_stack.add(v)
            targets = edges.get(v, ())
            descended = False
            while i < len(targets):
                w = targets[i]
                i += 1
                if w not in index:
                    work.append((v, i))
                    work.append((w, 0))
                    descended = True
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            if descended:
                continue
            if low[v] == index[v]:
                component: list[int] = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    component.append(w)
                    if w == v:
                        break
                components.append(sorted(component))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[v])
    return sorted(components, key=lambda c: c[0])


def _shortest_cycle(start: int, members: set[int], edges: Mapping[int, Sequence[int]]) -> list[int]:
    """start -> ... -> start by breadth-first search inside one component."""
    parent: dict[int, int] = {}
    queue = deque([start])
    while queue:
        v = queue.popleft()
        for w in edges.get(v, ()):
            if w == start:
                path = [v]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                return [*reversed(path), start]
            if w in members and w not in parent:
                parent[w] = v
                queue.append(w)
    raise AssertionError("a strongly connected component always has a cycle")  # pragma: no cover
