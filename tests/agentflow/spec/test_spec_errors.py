import pickle

import pytest

from agentflow.spec import InvalidWorkflow, Problem, SpecError
from agentflow.spec.errors import kind_of

pytestmark = pytest.mark.unit


def test_invalid_workflow_lists_every_problem_on_its_own_line() -> None:
    err = InvalidWorkflow(
        "wf.yaml",
        [Problem("agents[2].dependsOn[0]", 'unknown agent "x"'), Problem("(root)", "the document is empty")],
    )
    assert str(err) == 'wf.yaml: agents[2].dependsOn[0]: unknown agent "x"\nwf.yaml: (root): the document is empty'
    assert err.lines() == [
        'wf.yaml: agents[2].dependsOn[0]: unknown agent "x"',
        "wf.yaml: (root): the document is empty",
    ]
    assert err.source == "wf.yaml"
    assert err.problems == (
        Problem("agents[2].dependsOn[0]", 'unknown agent "x"'),
        Problem("(root)", "the document is empty"),
    )
    assert isinstance(err, SpecError)


def test_invalid_workflow_survives_pickling() -> None:
    err = InvalidWorkflow("wf.yaml", [Problem("name", "bad")])
    copy = pickle.loads(pickle.dumps(err))
    assert isinstance(copy, InvalidWorkflow)
    assert copy.problems == err.problems
    assert str(copy) == str(err)


def test_problem_is_frozen_and_comparable() -> None:
    problem = Problem("name", "bad")
    assert problem == Problem("name", "bad")
    assert str(problem) == "name: bad"
    with pytest.raises(AttributeError):
        problem.path = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(None, "null", id="null"),
        pytest.param(True, "a boolean", id="bool"),
        pytest.param(1, "an integer", id="int"),
        pytest.param(1.5, "a number", id="float"),
        pytest.param("x", "a string", id="str"),
        pytest.param({}, "a mapping", id="dict"),
        pytest.param([], "a list", id="list"),
        pytest.param(b"x", "binary data", id="bytes"),
        pytest.param({1}, "a set", id="set"),
    ],
)
def test_kind_of_names_yaml_types(value: object, expected: str) -> None:
    assert kind_of(value) == expected
