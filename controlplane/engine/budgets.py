"""LLM budgets as a resource: a step that may call an LLM is placed with a grant reserved from its
own budget and its run's, and the grant is settled when the attempt ends.

A step's grant is what its own budget has left, capped by what its run's budget has neither spent
nor granted to other running steps. The host's router enforces the grant on each call (reserving
an estimate before the call goes upstream), so concurrent steps on any nodes never spend past
the run's budget. When the attempt ends, the grant is released and what the attempt spent (as
the router counted it) is added to the step and the run; crossing a fraction of the run's budget
raises `cost.threshold_met`. Every function costs the same however many steps the run has.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from agentflow.llm import NO_LLM_USAGE, Grant, LLMUsage
from agentflow.spec import AgentSpec, Budget, WorkflowSpec
from agentflow.vocabulary import EventType
from controlplane.store import RunRecord, StepRecord, Tx

THRESHOLDS = (0.5, 0.8, 1.0)
"""Fractions of a run's budget whose crossing raises `cost.threshold_met`, once each."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GrantDecision:
    """Place the step with `grant` (None: its calls are not limited), or wait, or fail it."""

    grant: Grant | None = None
    wait: str = ""  # why it cannot be placed yet (other steps hold the run's budget)
    fail: str = ""  # why it never can (its own or its run's budget is spent)


def decide(agent: AgentSpec, spec: WorkflowSpec, run: RunRecord, step: StepRecord) -> GrantDecision:
    """The grant for the step's next attempt (pure: no I/O)."""
    if not agent.capabilities.llm or (agent.budget is None and spec.budget is None):
        return GrantDecision()
    own, whole = agent.budget or Budget(), spec.budget or Budget()
    usd = _least(_left(own.usd, step.llm.cost_usd), _left(whole.usd, run.llm.cost_usd + (run.reserved.usd or 0.0)))
    tokens = _least(
        _left(own.tokens, step.llm.tokens), _left(whole.tokens, run.llm.tokens + (run.reserved.tokens or 0))
    )
    if (own.usd is not None and step.llm.cost_usd >= own.usd) or (
        own.tokens is not None and step.llm.tokens >= own.tokens
    ):
        return GrantDecision(fail=f"the step's LLM budget is spent ({_spent(step.llm, own)})")
    if (usd is not None and usd <= 0) or (tokens is not None and tokens <= 0):
        if (run.reserved.usd or 0) > 0 or (run.reserved.tokens or 0) > 0:
            return GrantDecision(wait=f"waiting for LLM budget: running steps hold {_held(run)} of the run's")
        return GrantDecision(fail=f"the run's LLM budget is spent ({_spent(run.llm, whole)})")
    return GrantDecision(grant=Grant(usd=usd, tokens=None if tokens is None else int(tokens)))


def reserve(tx: Tx, step: StepRecord, grant: Grant | None) -> None:
    if grant is not None or step.grant is not None:
        tx.set_grant(step.run_id, step.name, grant, previous=step.grant)


def settle(tx: Tx, run: RunRecord, step: StepRecord, usage: LLMUsage, *, spec: WorkflowSpec, now: datetime) -> None:
    """The attempt ended: release its grant, count what it spent, raise crossed thresholds."""
    if step.grant is not None:
        tx.set_grant(step.run_id, step.name, None, previous=step.grant)
    if usage == NO_LLM_USAGE:
        return
    tx.add_llm_usage(step.run_id, step.name, usage)
    if spec.budget is None:
        return
    spent = run.llm + usage
    fraction = max(_fraction(spent.cost_usd, spec.budget.usd), _fraction(spent.tokens, spec.budget.tokens))
    crossed = sum(1 for t in THRESHOLDS if fraction >= t)
    for threshold in THRESHOLDS[run.thresholds_met : crossed]:
        tx.add_event(
            EventType.COST_THRESHOLD_MET,
            now=now,
            run_id=run.id,
            step=step.name,
            attempt=step.attempt,
            data={
                "workflow": run.workflow_name,
                "fraction": threshold,
                "spent_usd": round(spent.cost_usd, 10),
                "spent_tokens": spent.tokens,
                "budget_usd": spec.budget.usd,
                "budget_tokens": spec.budget.tokens,
            },
        )
    if crossed > run.thresholds_met:
        tx.set_thresholds_met(run.id, crossed)


def journaled_usage(tx: Tx, step: StepRecord) -> LLMUsage:
    """What the current attempt spent by its journal: for an attempt whose node was lost, whose
    result (with the router's count) never came."""
    usage = NO_LLM_USAGE
    for entry in tx.journal(step.run_id, step.name, before_attempt=step.attempt + 1):
        if entry.attempt != step.attempt:
            continue
        try:
            data = json.loads(entry.entry_json)
            tokens = (data.get("response") or {}).get("usage") or [0, 0, 0]  # [input, cached input, output]
            usage = usage + LLMUsage(
                calls=1,
                input_tokens=int(tokens[0]),
                output_tokens=int(tokens[2]),
                cost_usd=float(data.get("cost_usd", 0.0)),
                upstream_calls=1 if data.get("cache") == "miss" else 0,
            )
        except (ValueError, TypeError, AttributeError, IndexError, KeyError):
            continue
    return usage


def _left(limit: float | None, used: float) -> float | None:
    return None if limit is None else limit - used


def _least(*values: float | None) -> float | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def _fraction(spent: float, limit: float | None) -> float:
    if limit is None:
        return 0.0
    return float("inf") if limit == 0 else spent / limit


def _spent(usage: LLMUsage, budget: Budget) -> str:
    parts = []
    if budget.usd is not None:
        parts.append(f"${usage.cost_usd:.4f} of ${budget.usd:.4f}")
    if budget.tokens is not None:
        parts.append(f"{usage.tokens} of {budget.tokens} tokens")
    return ", ".join(parts)


def _held(run: RunRecord) -> str:
    parts = []
    if run.reserved.usd:
        parts.append(f"${run.reserved.usd:.4f}")
    if run.reserved.tokens:
        parts.append(f"{run.reserved.tokens} tokens")
    return " and ".join(parts) or "all"


__all__ = ["THRESHOLDS", "GrantDecision", "decide", "journaled_usage", "reserve", "settle"]
