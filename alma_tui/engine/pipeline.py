"""One design through the pipeline: analyze the parent, write the code, validate (and
repair) in the sandbox, evaluate, accept and commit, or reject with the reason.

Each step is stored as it completes, so a design resumes from the first step it lacks.
"""

from __future__ import annotations

import json
import os
import signal
from dataclasses import replace
from typing import Any

from alma_tui.engine.context import RunContext
from alma_tui.engine.dedup import find_duplicate
from alma_tui.engine.evaluator import EpisodeRecord, EvalResult, EvaluationCancelled, EvaluationFailed
from alma_tui.engine.evidence import Evidence
from alma_tui.engine.executor import Evaluates
from alma_tui.engine.heldout import HeldOutWorker
from alma_tui.engine.meta_agent import Analysis, AnalysisUnparsed, MetaAgent, MetaAgentError
from alma_tui.engine.recovery import Committer
from alma_tui.engine.steering import Steering
from alma_tui.engine.wiring import ModelCalls
from alma_tui.llm.accounting import design_totals, estimate_next_design
from alma_tui.sandbox import DesignFailure, SandboxLimits, validate_design
from alma_tui.sanitize import one_line, sanitize
from alma_tui.store.models import Design, Evaluation, utcnow
from alma_tui.store.models import Episode as EpisodeRow

FINAL_STATUSES = ("accepted", "rejected")
MAX_DUPLICATE_ASKS = 2  # a child that duplicates an archived design: ask the meta agent again, this often
# Test hook: the engine SIGKILLs itself once an evaluation of this design id has started.
_TEST_DIE_ON = "ALMA_TUI_TEST_DIE_EVALUATING"
MEMORY_JSON_MAX = 200_000


class DesignPipeline:
    def __init__(
        self,
        ctx: RunContext,
        calls: ModelCalls,
        steering: Steering,
        committer: Committer,
        evaluator: Evaluates,
        limits: SandboxLimits,
        heldout: HeldOutWorker | None = None,
    ) -> None:
        self.ctx = ctx
        self.heldout = heldout or HeldOutWorker(ctx, evaluator, calls)
        self.calls = calls
        self.steering = steering
        self.committer = committer
        self.evaluator = evaluator
        self.limits = limits
        self.evidence = Evidence(ctx, calls, steering)

    def process(self, d: Design, *, commit: bool = True, in_flight: int = 0) -> None:
        """Take ``d`` as far as it goes. ``commit=False`` leaves an accepted design for the caller to
        commit (concurrent children are committed in their order); ``in_flight`` designs running
        beside this one count against the budget check (each is expected to cost the median)."""
        ctx, cfg = self.ctx, self.ctx.config
        ctx.progress.design_id = d.id
        if d.origin == "meta" and not d.analysis_json and (cfg.budget_usd is not None or cfg.budget_tokens is not None):
            usd, tokens = estimate_next_design(ctx.store)  # stop before a design that would not fit
            n = in_flight + 1
            what = f"{d.id} (median cost of a finished design" + (f", x{n} with those running)" if n > 1 else ")")
            self.calls.llm.ensure_room(usd * n, tokens * n, what=what)
        if d.origin == "meta":
            d = self.propose(d)
            if d.status == "rejected":
                return
        if d.status in ("proposed", "validating"):
            d = self.validate(d)
            if d.status == "rejected" or ctx.cancel.is_set():
                return
        self.evaluate(d, commit=commit)

    # -- proposal -------------------------------------------------------------------------------
    def propose(self, d: Design) -> Design:
        """Analysis of the parent, then the child's code (each step stored as it completes)."""
        ctx = self.ctx
        parent = ctx.store.get_design(d.parent_id or "")
        if parent is None:
            return self.reject(d, f"parent {d.parent_id} is missing from the archive")
        meta = MetaAgent(self.calls.meta_complete(d.id), seed=ctx.config.seed + d.seq)
        second = ctx.store.get_design(d.second_parent_id) if d.second_parent_id else None
        if d.second_parent_id and second is None:
            return self.reject(d, f"second parent {d.second_parent_id} is missing from the archive")
        if second is not None:
            info = self.evidence.merge_info(parent, second, d.iteration)
        else:
            info = self.evidence.parent_info(parent, d.iteration)
        if not d.analysis_json:
            ctx.emit("design.analyzing", f"{d.id}: analyzing parent {parent.id}", d.id, parent=parent.id)
            try:
                analysis, raw = meta.analyze(info)
            except AnalysisUnparsed as exc:
                if not exc.raw.strip():
                    return self.reject(d, f"meta agent failed: {exc}")
                # a prose analysis is still worth a child: write it from the text, stored as is and marked
                analysis, raw = Analysis.from_text(exc.raw), exc.raw
                ctx.emit(
                    "design.analysis_unstructured",
                    f"{d.id}: analysis kept as text ({one_line(exc, 240)}); writing the child from it",
                    d.id,
                    error=one_line(exc, 1000),
                )
            except MetaAgentError as exc:
                return self.reject(d, f"meta agent failed: {exc}")
            d = ctx.store.update_design(d.id, analysis_json=analysis.model_dump_json(), analysis_raw=raw)
            self.steering.hints_used(d.id)
        if not d.code:
            analysis = Analysis.model_validate_json(d.analysis_json or "{}")
            what = f"merging {parent.id} and {second.id}" if second else "writing code"
            ctx.emit("design.writing", f"{d.id}: {what}", d.id)
            asked = info
            for attempt in range(MAX_DUPLICATE_ASKS + 1):
                try:
                    if second is not None:
                        title, code, _raw = meta.merge(asked, analysis)
                    else:
                        title, code, _raw = meta.write(asked, analysis)
                except MetaAgentError as exc:
                    return self.reject(d, f"meta agent failed: {exc}")
                twin = find_duplicate(ctx.store, d.id, code)
                if twin is None:
                    break
                ctx.emit(
                    "design.duplicate",
                    f"{d.id}: the code written is a duplicate of {twin}; not evaluated"
                    + ("; asking the meta agent again" if attempt < MAX_DUPLICATE_ASKS else ""),
                    d.id,
                    flush=True,
                    duplicate_of=twin,
                    attempt=attempt + 1,
                )
                asked = replace(
                    asked,
                    hints=[
                        *asked.hints,
                        f"Your code duplicated archived design {twin} (attempt {attempt + 1}): "
                        "implement a different suggested change.",
                    ],
                )
            else:
                ctx.store.update_design(d.id, title=sanitize(title, newlines=False)[:120], code=code)
                d = ctx.store.update_design(d.id, duplicate_of=twin)
                return self.reject(d, f"duplicate of {twin} (the same normalised code, {MAX_DUPLICATE_ASKS + 1} times)")
            d = ctx.store.update_design(d.id, title=sanitize(title, newlines=False)[:120], code=code, status="proposed")
            ctx.emit(
                "design.proposed",
                f"{d.id}: {d.title}" + (f" (merge of {parent.id} and {second.id})" if second else ""),
                d.id,
                parent=parent.id,
                parents=[parent.id, second.id] if second else [parent.id],
                flush=True,
            )
        return d

    # -- validation and repair ------------------------------------------------------------------
    def check(self, code: str) -> str | None:
        """Why ``code`` fails validation in the sandbox (one line), or None when it passes: a
        user's seed design is checked before it joins the archive."""
        episodes, queries = self.evidence.validation_data()
        hooks = self.calls.hooks("seed")
        try:
            validate_design(
                code,
                episodes=episodes,
                queries=queries,
                llm=hooks.design_llm,
                embed=hooks.design_embed,
                log=hooks.design_log,
                limits=replace(self.limits, call_timeout_s=10.0),
            )
        except DesignFailure as exc:
            self.calls.stopped()
            return one_line(exc.reason, 300)
        self.calls.stopped()
        return None

    def validate(self, d: Design) -> Design:
        """Run the design on a few real episodes in the sandbox; repair up to max_repairs times."""
        ctx, max_repairs = self.ctx, self.ctx.config.max_repairs
        d = ctx.store.update_design(d.id, status="validating")
        ctx.emit("design.validating", f"{d.id}: validating in the sandbox", d.id)
        episodes, queries = self.evidence.validation_data(d.id)
        hooks = self.calls.hooks(d.id)
        limits = replace(self.limits, call_timeout_s=10.0)
        code = d.code
        attempt = d.repairs
        while True:
            try:
                validate_design(
                    code,
                    episodes=episodes,
                    queries=queries,
                    llm=hooks.design_llm,
                    embed=hooks.design_embed,
                    log=hooks.design_log,
                    limits=limits,
                )
                self.calls.stopped()
                if code != d.code:
                    d = ctx.store.update_design(d.id, code=code)
                return ctx.store.update_design(d.id, status="evaluating")
            except DesignFailure as exc:
                self.calls.stopped()  # a failed model call is not the design's fault
                error = exc.reason
                detail = exc.detail
            if d.origin != "meta" or attempt >= max_repairs:
                return self.reject(d, f"failed validation: {error}", detail)
            attempt += 1
            ctx.emit(
                "design.repair",
                f"{d.id}: repair {attempt}/{max_repairs} after: {error}",
                d.id,
                attempt=attempt,
                error=error,
                detail=detail[:4000],
                failed_code=code[:40000],
                flush=True,
            )  # every attempt stays visible: the event keeps the code that failed
            parent = ctx.store.get_design(d.parent_id or "")
            if parent is None:
                return self.reject(d, f"parent {d.parent_id} is missing from the archive")
            repaired = self._repair(d, parent, code, attempt, f"{error}\n{detail}".strip()[:4000])
            if repaired is None:  # a repair with no usable code is a failed attempt
                d = ctx.store.update_design(d.id, repairs=attempt)
                continue
            title, code = repaired
            d = ctx.store.update_design(
                d.id, code=code, title=sanitize(title, newlines=False)[:120] or d.title, repairs=attempt
            )

    def _repair(self, d: Design, parent: Design, code: str, attempt: int, error: str) -> tuple[str, str] | None:
        """The meta agent's repair of failed code: (title, code), or None when it gave none."""
        ctx = self.ctx
        meta = MetaAgent(self.calls.meta_complete(d.id), seed=ctx.config.seed + d.seq + 1000 * attempt)
        try:
            title, new_code, _raw = meta.repair(self.evidence.parent_info(parent, d.iteration), code, error)
        except MetaAgentError as exc:
            ctx.emit(
                "design.repair",
                f"{d.id}: repair {attempt} gave no usable code: {one_line(exc, 300)}",
                d.id,
                attempt=attempt,
                error=one_line(exc, 1000),
            )
            return None
        return title, new_code

    # -- rejection ------------------------------------------------------------------------------
    def spend(self, design_id: str) -> dict[str, Any]:
        """Tokens and cost of every call made for a design (meta, agent, design-internal)."""
        t = design_totals(self.ctx.store).get(design_id) or {}
        return {"tokens": int(t.get("tokens", 0)), "cost_usd": float(t.get("cost_usd", 0.0))}

    def reject(self, d: Design, error: str, detail: str = "") -> Design:
        # the reason is one readable line (events, headless output, the archive), shortened at a
        # word boundary if it must be; the whole text stays in error_detail
        full = sanitize(error)
        error, detail = one_line(full, 1000), sanitize(detail)
        if error != " ".join(full.split()) and full not in detail:
            detail = f"{full}\n\n{detail}".strip()
        d = self.ctx.store.update_design(
            d.id,
            status="rejected",
            error=error,
            error_detail=detail[:20000],
            finished_at=utcnow(),
            **self.spend(d.id),
        )
        self.ctx.emit("design.rejected", f"{d.id} rejected: {error}", d.id, flush=True, error=error)
        return d

    # -- evaluation -----------------------------------------------------------------------------
    def evaluate(self, d: Design, commit: bool = True) -> None:
        ctx, cfg = self.ctx, self.ctx.config
        d = ctx.store.update_design(d.id, status="evaluating")
        ev = Evaluation(
            design_id=d.id,
            kind="search",
            domain=cfg.domain,
            agent_model=cfg.agent_model,
            split=cfg.eval.split,
            seed=cfg.seed,
            runs=cfg.eval.runs,
        )
        ctx.store.add(ev)
        n = cfg.eval.n_collection + cfg.eval.n_deployment * cfg.eval.runs
        ctx.progress.episodes_done, ctx.progress.episodes_total = 0, n
        ctx.emit("design.evaluating", f"{d.id}: evaluating ({n} episodes)", d.id, flush=True, total=n)
        settings = cfg.eval
        settings.seed = cfg.seed
        if os.environ.get(_TEST_DIE_ON) == d.id:  # test hook: a design that takes the engine down
            os.kill(os.getpid(), signal.SIGKILL)
        try:
            result = self.evaluator.evaluate(d.code, settings, self.calls.hooks(d.id), ctx.cancel)
            self.calls.stopped()
        except (EvaluationCancelled, KeyboardInterrupt):  # the user, not the design: no crash counted
            ctx.store.update_design(d.id, status="evaluating")
            ctx.store.fail_evaluation(ev.id, "interrupted by the user; redone on resume")
            raise
        except EvaluationFailed as exc:
            self.calls.stopped()
            ctx.store.fail_evaluation(ev.id, exc.reason)
            self.reject(d, f"failed evaluation: {exc.reason}", exc.detail)
            return
        self.accept(d, ev, result, commit=commit)

    def accept(self, d: Design, ev: Evaluation, result: EvalResult, commit: bool = True) -> None:
        ctx = self.ctx
        memory = json.dumps(result.memory, default=str)
        if len(memory) > MEMORY_JSON_MAX:
            memory = json.dumps({"truncated": True, "size_chars": len(memory), "head": memory[:20_000]})
        design = ctx.store.accept_design(
            d.id,
            ev.id,
            score=result.score,
            score_se=result.score_se,
            run_scores_json=json.dumps(result.run_scores),
            wall_s=result.wall_s,
            memory_json=memory,
            episodes=[_episode_row(ev, d.id, e) for e in result.episodes],
        )
        ctx.emit(
            "evaluation.done",
            f"{d.id}: score {result.score:.3f} ± {result.score_se:.3f} "
            f"(runs {', '.join(f'{x:.2f}' for x in result.run_scores)}) in {result.wall_s:.1f}s",
            d.id,
            flush=True,
            score=result.score,
            score_se=result.score_se,
            run_scores=result.run_scores,
        )
        design = ctx.store.update_design(d.id, **self.spend(d.id))
        if commit:
            self.commit(design)

    def commit(self, design: Design) -> None:
        """The accepted design's commit, its event, and the best branch after it."""
        sha = self.committer.commit(design)
        self.ctx.emit(
            "design.accepted",
            f"{design.id} accepted: {design.title} ({design.score or 0.0:.3f})",
            design.id,
            flush=True,
            score=design.score,
            commit=sha,
        )
        best = self.committer.update_best()
        if best == design.id:  # a new best: its held-out score too, in the background, charged to this run
            self.heldout.submit(design.id)


def _episode_row(ev: Evaluation, design_id: str, e: EpisodeRecord) -> EpisodeRow:
    if ev.id is None:
        raise EvaluationFailed("the evaluation row was not saved")
    return EpisodeRow(
        evaluation_id=ev.id,
        design_id=design_id,
        phase=e.phase,
        run=e.run,
        task_id=e.task_id,
        goal=e.goal,
        success=e.success,
        score=e.score,
        steps=e.steps,
        retrieved=e.retrieved[:8000],
        trajectory_json=json.dumps(e.trajectory),
        error=e.error,
        wall_s=e.wall_s,
    )
