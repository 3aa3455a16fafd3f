"""Honest scores: a design that becomes the best is also evaluated on the held-out split.

The archive's fitness is measured on the search split, whose tasks steer the search, so
it flatters the designs it selects. Each new best is therefore evaluated once more, on
the domain's ``test`` split with the same protocol sizes, its calls charged to the run
and the design; the result is the design's ``test_score`` (an ``Evaluation`` row of kind
``test``). A failed held-out evaluation leaves the search alone: it is an event, not a
rejection.

It runs in the background of the run (:class:`HeldOutWorker`, one worker thread beside the
children), so the search does not wait for a score that steers nothing; the run's end waits
for it. Nothing is lost when the run stops: a cancelled evaluation is marked interrupted, a
killed one leaves the best without a ``test_score``, and a resumed run evaluates the best
that lacks one.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from alma_tui.engine.context import RunContext
from alma_tui.engine.evaluator import EvaluationCancelled, EvaluationFailed
from alma_tui.engine.executor import Evaluates
from alma_tui.sanitize import one_line
from alma_tui.store.models import Evaluation

__all__ = ["HELDOUT_SPLIT", "HeldOutWorker", "evaluate_new_best"]

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
    # Its episodes are not the progress of the child in the foreground, nor its step stream.
    hooks = replace(calls.hooks(d.id), on_step=None, on_episode=None)
    try:
        result = evaluator.evaluate(d.code, settings, hooks, ctx.cancel)
        calls.stopped()
    except EvaluationCancelled:
        ctx.store.fail_evaluation(ev.id, "interrupted by the user; redone on resume")
        raise
    except EvaluationFailed as exc:
        calls.stopped()
        ctx.store.fail_evaluation(ev.id, exc.reason)
        ctx.emit("error", f"{d.id}: held-out evaluation failed: {exc.reason}", d.id, flush=True)
        return None
    except Exception as exc:  # the budget, an outage: the run stops on its own; redone on resume
        ctx.store.fail_evaluation(ev.id, one_line(exc, 300))
        raise
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


class HeldOutWorker:
    """New bests' held-out evaluations, one at a time on a worker thread beside the search.

    :meth:`submit` returns at once; :meth:`wait` blocks until every submitted evaluation has
    ended (the run calls it before its final status, so the summary shows the score). An
    evaluation that stops (the user, the budget, an outage) is reported and left for a
    resume, which submits the best again."""

    def __init__(self, ctx: RunContext, evaluator: Evaluates, calls: Any) -> None:
        self.ctx = ctx
        self.evaluator = evaluator
        self.calls = calls
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="alma-heldout")
        self._futures: dict[str, Future[float | None]] = {}
        self._lock = threading.Lock()

    def submit(self, design_id: str) -> None:
        """Evaluate ``design_id`` on the held-out split in the background (once per run)."""
        with self._lock:
            if design_id not in self._futures:
                self._futures[design_id] = self._pool.submit(self._run, design_id)

    def _run(self, design_id: str) -> float | None:
        try:
            return evaluate_new_best(self.ctx, self.evaluator, self.calls, design_id)
        except EvaluationCancelled:
            return None
        except Exception as exc:  # never lost: the design keeps no test_score and a resume redoes it
            self.ctx.emit(
                "error",
                f"{design_id}: held-out evaluation stopped ({one_line(exc, 200)}); redone when the run resumes",
                design_id,
                flush=True,
            )
            return None

    def wait(self) -> None:
        """Block until every held-out evaluation submitted so far has ended."""
        with self._lock:
            futures = list(self._futures.values())
        for f in futures:
            f.result()

    def close(self) -> None:
        self.wait()
        self._pool.shutdown(wait=True)
