"""Honest scores: a design that becomes the best is also evaluated on the held-out split.

The archive's fitness is measured on the search split, whose tasks steer the search, so
it flatters the designs it selects. Each new best is therefore evaluated once more, on
the domain's ``test`` split with the same protocol sizes, its calls charged to the run
and the design; the result is the design's ``test_score`` (an ``Evaluation`` row of kind
``test``). A failed held-out evaluation leaves the search alone: it is an event, not a
rejection.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from alma_tui.engine.context import RunContext
from alma_tui.engine.evaluator import EvaluationCancelled, EvaluationFailed
from alma_tui.engine.executor import Evaluates
from alma_tui.store.models import Evaluation

__all__ = ["HELDOUT_SPLIT", "evaluate_new_best"]

HELDOUT_SPLIT = "test"


def evaluate_new_best(ctx: RunContext, evaluator: Evaluates, calls: Any, design_id: str) -> float | None:
    """Evaluate ``design_id`` on the held-out split unless it has a test score; returns it."""
    d = ctx.store.get_design(design_id)
    cfg = ctx.config
    if d is None or d.test_score is not None or cfg.eval.split == HELDOUT_SPLIT:
        return None if d is None else d.test_score
    settings = replace(cfg.eval, split=HELDOUT_SPLIT, seed=cfg.seed)
    ev = Evaluation(
        design_id=d.id,
        kind="test",
        domain=cfg.domain,
        agent_model=cfg.agent_model,
        split=HELDOUT_SPLIT,
        seed=cfg.seed,
        runs=settings.runs,
    )
    ctx.store.add(ev)
    ctx.emit("heldout.evaluating", f"{d.id}: new best, evaluating on the held-out {HELDOUT_SPLIT} split", d.id)
    try:
        result = evaluator.evaluate(d.code, settings, calls.hooks(d.id), ctx.cancel)
        calls.stopped()
    except EvaluationCancelled:
        ctx.store.fail_evaluation(ev.id, "interrupted by the user")
        raise
    except EvaluationFailed as exc:
        calls.stopped()
        ctx.store.fail_evaluation(ev.id, exc.reason)
        ctx.emit("error", f"{d.id}: held-out evaluation failed: {exc.reason}", d.id, flush=True)
        return None
    ctx.store.finish_evaluation(ev.id, result.score, result.score_se, result.run_scores, result.wall_s)
    ctx.store.update_design(d.id, test_score=result.score, test_score_se=result.score_se)
    ctx.emit(
        "heldout.done",
        f"{d.id}: held-out {HELDOUT_SPLIT} score {result.score:.3f} ± {result.score_se:.3f} "
        f"(search split {d.score or 0:.3f})",
        d.id,
        flush=True,
        test_score=result.score,
        test_score_se=result.score_se,
    )
    return result.score
