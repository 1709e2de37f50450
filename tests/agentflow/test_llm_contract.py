"""The router's HTTP contract in `agentflow.llm`: header names, attribution, grants, error codes."""

from __future__ import annotations

import pytest

from agentflow.llm import ERROR_STATUS, ERROR_TYPE, Attribution, ErrorCode, Grant, request_headers

pytestmark = pytest.mark.unit


def test_request_headers_carry_attribution_grant_and_options() -> None:
    who = Attribution(run="r1", step="s", attempt=2, call=0, workflow="wf")
    headers = request_headers(who, Grant(usd=0.25, tokens=1000), timeout_s=30, no_store=True)
    assert headers == {
        "x-agentflow-run": "r1", "x-agentflow-step": "s", "x-agentflow-attempt": "2", "x-agentflow-workflow": "wf",
        "x-agentflow-call": "0", "x-agentflow-budget-usd": "0.25", "x-agentflow-budget-tokens": "1000",
        "x-agentflow-timeout": "30.0", "Cache-Control": "no-store",
    }  # fmt: skip
    assert request_headers() == {}


@pytest.mark.parametrize(
    "kwargs",
    [{"run": "", "step": "s", "attempt": 1}, {"run": "r", "step": "s", "attempt": 0},
     {"run": "r", "step": "s", "attempt": 1, "call": -1}],
    ids=["empty-run", "attempt-zero", "negative-call"],
)  # fmt: skip
def test_attribution_refuses_nonsense(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Attribution(**kwargs)  # type: ignore[arg-type]


def test_every_error_code_has_a_status_and_a_type() -> None:
    assert set(ERROR_STATUS) == set(ErrorCode) == set(ERROR_TYPE)
    assert ERROR_STATUS[ErrorCode.BUDGET_EXCEEDED_USD] == ERROR_STATUS[ErrorCode.BUDGET_EXCEEDED_TOKENS] == 402
    with pytest.raises(ValueError):
        Grant(usd=-1)
    assert not Grant().limited and Grant(tokens=0).limited
