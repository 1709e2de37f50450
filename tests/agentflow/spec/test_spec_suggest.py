import pytest

from agentflow.spec import closest
from agentflow.spec.suggest import did_you_mean

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("word", "candidates", "expected"),
    [
        pytest.param("dependson", ["name", "dependsOn", "input"], "dependsOn", id="case-only"),
        pytest.param("summarise", ["fetch", "summarize"], "summarize", id="spelling"),
        pytest.param("agent", ["apiVersion", "agents"], "agents", id="plural"),
        pytest.param("maxattempt", ["maxAttempts", "backoff", "maxBackoff"], "maxAttempts", id="camel"),
        pytest.param("hosts", ["allowedHosts"], "allowedHosts", id="part-of-name"),
        pytest.param("paths", ["allowedHosts", "allowedPaths"], "allowedPaths", id="part-of-name-best"),
        pytest.param("agentname", ["name", "module"], "name", id="name-inside-word"),
        pytest.param("on", ["dependsOn"], None, id="short-part-ignored"),
        pytest.param("zzz", ["fetch", "summarize"], None, id="nothing-close"),
        pytest.param("fetch", [], None, id="no-candidates"),
        pytest.param("", ["fetch"], None, id="empty-word"),
    ],
)
def test_closest(word: str, candidates: list[str], expected: str | None) -> None:
    assert closest(word, candidates) == expected


def test_closest_accepts_any_iterable_and_keeps_original_spelling() -> None:
    assert closest("MEMORY", iter(("cpu", "memory"))) == "memory"
    assert closest("Memory", {"memory": 1}) == "memory"


def test_did_you_mean_phrase() -> None:
    assert did_you_mean("fecth", ["fetch"]) == ' (did you mean "fetch"?)'
    assert did_you_mean("zzz", ["fetch"]) == ""
