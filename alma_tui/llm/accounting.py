"""Queries over the recorded model calls: totals per design, per role, per run, and spend vs budget.

Read by the search (to estimate whether the next design fits the budget), the
TUI and the headless summary. Everything comes from ``LLMCall`` rows, so a watcher
in another process sees the same numbers as the engine.
"""

from __future__ import annotations

import json
import statistics
from typing import Any

from sqlalchemy import func, select
from sqlmodel import col

from alma_tui.store.models import Design, LLMCall

_FIELDS = (
    "calls",
    "prompt_tokens",
    "completion_tokens",
    "reasoning_tokens",
    "cached_tokens",
    "tokens",
    "cost_usd",
    "unknown_cost_calls",
    "retries",
    "errors",
)


def _agg(group_by: Any) -> Any:
    return select(
        group_by,
        func.count(),
        func.sum(LLMCall.prompt_tokens),
        func.sum(LLMCall.completion_tokens),
        func.sum(LLMCall.reasoning_tokens),
        func.sum(LLMCall.cached_tokens),
        func.sum(LLMCall.cost_usd),
        func.sum(func.iif(LLMCall.cost_known, 0, 1)),
        func.sum(LLMCall.retries),
        func.sum(func.iif(LLMCall.ok, 0, 1)),
    ).group_by(group_by)


def _row(
    n: Any, pt: Any, ct: Any, rt: Any, cached: Any, cost: Any, unknown: Any, retries: Any, errors: Any
) -> dict[str, Any]:
    pt, ct = int(pt or 0), int(ct or 0)
    return {
        "calls": int(n or 0),
        "prompt_tokens": pt,
        "completion_tokens": ct,
        "reasoning_tokens": int(rt or 0),
        "cached_tokens": int(cached or 0),
        "cache_hit_rate": hit_rate(int(cached or 0), pt),
        "tokens": pt + ct,
        "cost_usd": float(cost or 0.0),
        "unknown_cost_calls": int(unknown or 0),
        "retries": int(retries or 0),
        "errors": int(errors or 0),
    }


def hit_rate(cached: int, prompt: int) -> float:
    """Share of prompt tokens read from the provider's prompt cache."""
    return cached / prompt if prompt else 0.0


def _empty() -> dict[str, Any]:
    return {k: (0.0 if k == "cost_usd" else 0) for k in _FIELDS}


def role_totals(store: Any) -> dict[str, dict[str, Any]]:
    """Per role (meta, agent, design, embed): calls, tokens (prompt/completion/reasoning/cached),
    cache hit rate, cost, retries."""
    store.flush_events()
    with store.session() as s:
        rows = s.exec(_agg(LLMCall.role)).all()
    return {r[0]: _row(*r[1:]) for r in rows}


def design_totals(store: Any) -> dict[str, dict[str, Any]]:
    """Per design id (calls made while proposing, validating or evaluating it), with a per-role split."""
    store.flush_events()
    with store.session() as s:
        rows = s.exec(_agg(LLMCall.design_id)).all()
        by_role = s.exec(
            select(
                col(LLMCall.design_id),
                col(LLMCall.role),
                func.count(),
                func.sum(LLMCall.prompt_tokens + LLMCall.completion_tokens),
                func.sum(LLMCall.cost_usd),
            ).group_by(LLMCall.design_id, LLMCall.role)
        ).all()
    out = {r[0]: {**_row(*r[1:]), "by_role": {}} for r in rows if r[0] is not None}
    for did, role, n, tokens, cost in by_role:
        if did in out:
            out[did]["by_role"][role] = {"calls": int(n), "tokens": int(tokens or 0), "cost_usd": float(cost or 0.0)}
    return out


def run_totals(store: Any) -> dict[str, Any]:
    total = _empty()
    for row in role_totals(store).values():
        for k in _FIELDS:
            total[k] += row[k]
    total["cache_hit_rate"] = hit_rate(total["cached_tokens"], total["prompt_tokens"])
    return total


def spend_vs_budget(store: Any, budget_usd: float | None = None, budget_tokens: int | None = None) -> dict[str, Any]:
    """What the run spent, its budget, and what is left (``None`` where there is no budget)."""
    if budget_usd is None and budget_tokens is None:
        run = store.get_run()
        if run is not None:
            # The run's stored settings (the engine's config as JSON), read as plain JSON:
            # the model layer sits below the engine and must not import its config class.
            settings = json.loads(run.settings_json or "{}")
            budget_usd, budget_tokens = settings.get("budget_usd"), settings.get("budget_tokens")
    t = run_totals(store)
    return {
        **t,
        "budget_usd": budget_usd,
        "budget_tokens": budget_tokens,
        "left_usd": None if budget_usd is None else budget_usd - t["cost_usd"],
        "left_tokens": None if budget_tokens is None else budget_tokens - t["tokens"],
        "cost_partial": t["unknown_cost_calls"] > 0,
    }


def estimate_next_design(store: Any) -> tuple[float, int]:
    """(USD, tokens) a new child design is expected to cost: the median over finished
    children of the meta agent, else over finished seed designs (a lower bound: no meta
    calls), else (0, 0)."""
    per = design_totals(store)
    finished = [d for d in store.designs() if d.status in ("accepted", "rejected") and d.id in per]
    for origin in ("meta", "builtin"):
        rows = [per[d.id] for d in finished if d.origin == origin]
        if rows:
            return (statistics.median(r["cost_usd"] for r in rows), int(statistics.median(r["tokens"] for r in rows)))
    return 0.0, 0


__all__ = ["Design", "design_totals", "estimate_next_design", "role_totals", "run_totals", "spend_vs_budget"]
