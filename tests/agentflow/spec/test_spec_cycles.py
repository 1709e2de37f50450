import pytest

from agentflow.spec import InvalidWorkflow, Problem, parse_workflow_dict
from agentflow.spec.graph import find_cycles, strongly_connected

pytestmark = pytest.mark.unit


def workflow(deps: dict[str, list[str]]) -> dict[str, object]:
    return {
        "apiVersion": "agentflow/v1",
        "kind": "Workflow",
        "name": "cycles",
        "version": "1",
        "agents": [{"name": n, "module": f"{n}.wasm", "dependsOn": d} for n, d in deps.items()],
    }


def cycle_reasons(deps: dict[str, list[str]]) -> list[str]:
    with pytest.raises(InvalidWorkflow) as info:
        parse_workflow_dict(workflow(deps), source="wf.yaml")
    assert all(p.path == "agents" for p in info.value.problems), info.value.problems
    return [p.reason for p in info.value.problems]


@pytest.mark.parametrize(
    ("deps", "reasons"),
    [
        pytest.param({"a": ["b"], "b": ["a"]}, ["dependency cycle: a -> b -> a"], id="two"),
        pytest.param({"a": ["b"], "b": ["c"], "c": ["a"]}, ["dependency cycle: a -> b -> c -> a"], id="three"),
        pytest.param(
            {"c": ["a"], "b": ["c"], "a": ["b"]},
            ["dependency cycle: c -> a -> b -> c"],
            id="starts-at-first-declared",
        ),
        pytest.param(
            {"root": [], "a": ["root", "b"], "b": ["a"], "x": ["y"], "y": ["z"], "z": ["x"], "leaf": ["a", "x"]},
            ["dependency cycle: a -> b -> a", "dependency cycle: x -> y -> z -> x"],
            id="two-components",
        ),
        pytest.param(
            {"a": ["b", "c"], "b": ["c", "d"], "c": ["d"], "d": ["a"]},
            ["dependency cycle: a -> b -> d -> a"],
            id="one-problem-per-component-shortest-cycle",
        ),
    ],
)
def test_cycles(deps: dict[str, list[str]], reasons: list[str]) -> None:
    assert cycle_reasons(deps) == reasons


def test_cycle_is_reported_with_other_problems() -> None:
    data = workflow({"a": ["b"], "b": ["a", "ghost"]})
    with pytest.raises(InvalidWorkflow) as info:
        parse_workflow_dict(data, source="wf.yaml")
    assert info.value.problems == (
        Problem("agents[1].dependsOn[1]", 'unknown agent "ghost"'),
        Problem("agents", "dependency cycle: a -> b -> a"),
    )


def test_self_dependency_is_not_also_a_cycle() -> None:
    with pytest.raises(InvalidWorkflow) as info:
        parse_workflow_dict(workflow({"a": ["a"]}), source="wf.yaml")
    assert [p.path for p in info.value.problems] == ["agents[0].dependsOn[0]"]


def test_long_chain_cycle_has_no_recursion_limit() -> None:
    names = [f"s{i:04d}" for i in range(1000)]
    deps = {name: [names[(i + 1) % len(names)]] for i, name in enumerate(names)}
    (reason,) = cycle_reasons(deps)
    assert reason.startswith("dependency cycle: s0000 -> s0001 -> s0002")
    assert reason.endswith("s0998 -> s0999 -> s0000")


def test_long_acyclic_chain_is_fine() -> None:
    names = [f"s{i:04d}" for i in range(1000)]
    deps = {name: [names[i - 1]] if i else [] for i, name in enumerate(names)}
    spec = parse_workflow_dict(workflow(deps), source="wf.yaml")
    assert spec.agents[-1].depends_on == ("s0998",)


def test_strongly_connected_components() -> None:
    edges = {0: [1], 1: [2], 2: [0, 3], 3: [4], 4: [3], 5: []}
    assert strongly_connected(edges) == [[0, 1, 2], [3, 4], [5]]


def test_find_cycles_includes_self_loops() -> None:
    assert find_cycles({0: [0], 1: [2], 2: [1], 3: []}) == [[0, 0], [1, 2, 1]]
