"""The ALMA search loop: select parents, analyze, write, validate/repair, evaluate, commit.

Every state change is written to the store before the next step starts, so a search
killed at any point (Ctrl-C, kill -9, a crash) resumes where it stopped without
redoing finished work: children of an iteration are created (with the parents'
visit counts) in one transaction at selection time, and a child resumes from the
first of analysis / code / validation / evaluation it lacks (``pipeline``); accepted
designs missing their commit are committed on resume (``recovery``).
"""

from __future__ import annotations

import contextlib
import traceback

from alma_tui.designs import BUILTIN, builtin_source
from alma_tui.engine.archive import Candidate, iteration_rng, probabilities, select_parents
from alma_tui.engine.context import RunContext
from alma_tui.engine.control import stop_cause
from alma_tui.engine.errors import SearchError
from alma_tui.engine.evaluator import EvaluationCancelled, Evaluator
from alma_tui.engine.heartbeat import Heartbeat
from alma_tui.engine.heldout import evaluate_new_best
from alma_tui.engine.meta_agent import MetaAgentError
from alma_tui.engine.outage import OutagePolicy
from alma_tui.engine.pipeline import FINAL_STATUSES, DesignPipeline
from alma_tui.engine.recovery import Committer, recover
from alma_tui.engine.runlock import RunLock
from alma_tui.engine.steering import Steering
from alma_tui.engine.wiring import ModelCalls
from alma_tui.failures import disk_full_message, disk_full_target
from alma_tui.lineage import LineageError
from alma_tui.llm.client import BudgetExceeded, LLMClient, ModelError, ProviderUnavailable
from alma_tui.sandbox import SandboxLimits
from alma_tui.store.models import Design, utcnow

SEED_DESIGNS = ("no_memory", "trajectory_retrieval")
NO_MEMORY_ID = "d001"


class Engine:
    """An open search: its lock is held, its run row written; :meth:`run` runs it."""

    def __init__(self, ctx: RunContext, lock: RunLock, llm: LLMClient, limits: SandboxLimits) -> None:
        self.ctx = ctx
        self.lock = lock
        self.llm = llm
        self.calls = ModelCalls(ctx, llm)
        self.steering = Steering(ctx)
        self.outage = OutagePolicy(ctx, llm)
        self.committer = Committer(ctx)
        self.evaluator = Evaluator(ctx.domain, self.calls.agent_complete, limits=limits)
        self.pipeline = DesignPipeline(ctx, self.calls, self.steering, self.committer, self.evaluator, limits)
        self.heartbeat = Heartbeat(ctx)

    def close(self) -> None:
        self.heartbeat.stop()
        self.ctx.store.flush_events()
        self.ctx.store.close()
        self.lock.release()

    # -- the run --------------------------------------------------------------------------------
    def run(self) -> str:
        """Run until the iteration target, a stop, the budget or an error. Returns the final status."""
        ctx = self.ctx
        self.heartbeat.start()
        ctx.emit(
            "run.status",
            f"search on {ctx.config.domain} with {ctx.config.meta_model} / {ctx.config.agent_model}",
            flush=True,
            status="running",
        )
        try:
            while True:
                try:
                    return self._search_loop()
                except Exception as exc:
                    status = self._after(exc)
                if status is not None:
                    return status
        finally:
            self.heartbeat.stop()

    def _after(self, exc: Exception) -> str | None:
        """The final status after what stopped the loop; None to go on (an outage waited out).

        The stop errors are found even when another error wraps them, so the budget, an
        outage or a Ctrl-C is never reported as a crash."""
        cause = stop_cause(exc) or exc
        if isinstance(cause, ProviderUnavailable):  # paused, not failed: designs resume where they were
            try:
                resumed = self.outage.wait_out(str(cause))
            except Exception as err:
                return self._unexpected(err)
            return None if resumed else self._finish("stopped", "stopped while the model provider was unavailable")
        if isinstance(cause, BudgetExceeded):
            return self._finish("budget", str(cause))
        if isinstance(cause, (MetaAgentError, ModelError, LineageError)):
            return self._finish("error", str(cause))
        if isinstance(cause, EvaluationCancelled):
            return self._finish("stopped", "interrupted; run again to resume")
        return self._unexpected(exc)

    def _unexpected(self, exc: Exception) -> str:
        """Anything else: keep the traceback, tell the user one line."""
        repo = self.ctx.config.repo
        full = disk_full_target(exc, repo)
        if full is not None:  # nothing was half-written (SQLite rolled back): a resume goes on
            message = disk_full_message(full)
            with contextlib.suppress(Exception):  # the status itself may not fit on the disk any more
                self._finish("error", message)
            raise SearchError(message) from exc
        log = self.ctx.error_log
        try:
            with open(log, "a") as fh:
                fh.write(f"--- {utcnow().isoformat()}\n{''.join(traceback.format_exception(exc))}\n")
        except OSError:
            pass
        first = str(exc).splitlines()[0] if str(exc) else ""
        return self._finish("error", f"{type(exc).__name__}: {first} (traceback in {log})")

    def _finish(self, status: str, detail: str) -> str:
        self.committer.update_best()
        self.ctx.set_status(status, detail)
        return status

    def _search_loop(self) -> str:
        ctx = self.ctx
        recover(ctx, self.committer, self.pipeline.reject)
        self._seed_archive()
        best = self.committer.update_best()
        if best is not None:  # a held-out evaluation a kill interrupted is redone on resume
            evaluate_new_best(ctx, self.evaluator, self.calls, best)
        while not ctx.cancel.is_set():
            run = ctx.store.require_run()
            if run.iterations_done >= ctx.config.iterations:
                break
            if not self.steering.apply():
                return self._finish("stopped", "stopped by the user")
            if ctx.cancel.is_set():
                break
            iteration = run.iterations_done + 1
            ctx.progress.iteration = iteration
            children = self._children_of(iteration) or self._select(iteration)
            for child in children:
                if child.status in FINAL_STATUSES:
                    continue
                if not self.steering.apply():  # "stop after the current evaluation"
                    return self._finish("stopped", "stopped by the user")
                if ctx.cancel.is_set():
                    break
                self.pipeline.process(child)
            if ctx.cancel.is_set():
                break
            ctx.store.update_run(ctx.run_id, iterations_done=iteration)
            ctx.emit("iteration.done", f"iteration {iteration} done", flush=True, iteration=iteration)
        if ctx.cancel.is_set():
            return self._finish("stopped", "interrupted; run again to resume")
        return self._finish("done", f"{ctx.config.iterations} iterations")

    # -- the archive ----------------------------------------------------------------------------
    def _seed_archive(self) -> None:
        """The no-memory normaliser and trajectory retrieval, evaluated before any search."""
        ctx = self.ctx
        if not ctx.store.designs():
            for name in SEED_DESIGNS:
                seq = ctx.store.next_design_seq()
                ctx.store.add(
                    Design(
                        id=f"d{seq:03d}",
                        run_id=ctx.run_id,
                        seq=seq,
                        iteration=0,
                        origin="builtin",
                        title=BUILTIN[name][0],
                        code=builtin_source(name),
                    )
                )
        for d in ctx.store.designs():
            if d.iteration == 0 and d.status not in FINAL_STATUSES and not ctx.cancel.is_set():
                self.pipeline.process(d)
        nm = ctx.store.get_design(NO_MEMORY_ID)
        if nm is not None and nm.status == "accepted":
            ctx.update_run(no_memory_score=nm.score)
        elif nm is not None and nm.status == "rejected":
            raise SearchError(f"the no-memory design failed to evaluate: {nm.error}")

    def _children_of(self, iteration: int) -> list[Design]:
        return [d for d in self.ctx.store.designs() if d.iteration == iteration]

    def _candidates(self) -> list[Candidate]:
        return [
            Candidate(d.id, d.score or 0.0, d.visits, d.pinned, d.vetoed)
            for d in self.ctx.store.designs()
            if d.status == "accepted" and d.score is not None
        ]

    def _select(self, iteration: int) -> list[Design]:
        """Choose parents and persist their children (and visit counts) in one transaction."""
        ctx, cfg = self.ctx, self.ctx.config
        cands = self._candidates()
        if not cands:
            raise SearchError("no accepted design to select a parent from")
        s0 = ctx.run_row.no_memory_score or 0.0
        params = cfg.params
        parents = select_parents(cands, s0, iteration_rng(cfg.seed, iteration), params, cfg.selection)
        if not parents:
            raise SearchError("every design is vetoed; unveto one to continue")
        probs = probabilities([c for c in cands if not c.pinned], s0, params)
        children = ctx.store.add_children(ctx.run_id, iteration, parents)
        pinned = [c.id for c in cands if c.pinned]
        ctx.emit(
            "selection",
            f"iteration {iteration}: parents {', '.join(parents)}"
            + (f" (pinned: {', '.join(pinned)})" if pinned else ""),
            flush=True,
            iteration=iteration,
            parents=parents,
            probabilities=probs,
            mode=cfg.selection,
            formula=params.describe(),
        )
        return children
