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
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path

from alma_tui.designs import BUILTIN, builtin_source
from alma_tui.engine.archive import (
    Candidate,
    choose_parents,
    describe_choice,
    distribution,
    iteration_rng,
    merge_partners,
    merge_rng,
)
from alma_tui.engine.context import RunContext
from alma_tui.engine.control import stop_cause
from alma_tui.engine.errors import SearchError
from alma_tui.engine.evaluator import EvaluationCancelled, Evaluator
from alma_tui.engine.executor import Executor, LocalExecutor
from alma_tui.engine.heartbeat import Heartbeat
from alma_tui.engine.heldout import HeldOutWorker
from alma_tui.engine.meta_agent import MetaAgentError, extract_title
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
from alma_tui.sanitize import sanitize
from alma_tui.store.models import Design, utcnow

SEED_DESIGNS = ("no_memory", "trajectory_retrieval")
NO_MEMORY_ID = "d001"


class Engine:
    """An open search: its lock is held, its run row written; :meth:`run` runs it."""

    def __init__(
        self, ctx: RunContext, lock: RunLock, llm: LLMClient, limits: SandboxLimits, executor: Executor | None = None
    ) -> None:
        self.ctx = ctx
        self.lock = lock
        self.llm = llm
        self.calls = ModelCalls(ctx, llm)
        self.steering = Steering(ctx)
        self.outage = OutagePolicy(ctx, llm)
        self.committer = Committer(ctx)
        # where evaluations run (--executor): this process, or Ray tasks (engine/executor.py)
        self.executor: Executor = executor or LocalExecutor()
        self.evaluator = self.executor.bind(Evaluator(ctx.domain, self.calls.agent_complete, limits=limits))
        self.heldout = HeldOutWorker(ctx, self.evaluator, self.calls)  # new bests' test split, beside the search
        self.pipeline = DesignPipeline(
            ctx, self.calls, self.steering, self.committer, self.evaluator, limits, self.heldout
        )
        self.heartbeat = Heartbeat(ctx)

    def close(self) -> None:
        self.heldout.close()
        self.heartbeat.stop()
        self.executor.close()
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
        if isinstance(cause, (MetaAgentError, ModelError, LineageError, SearchError)):  # one line each
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
        self.heldout.wait()  # the summary shows the held-out score of the best
        self.committer.update_best()
        self.ctx.set_status(status, detail)
        return status

    def _search_loop(self) -> str:
        ctx = self.ctx
        recover(ctx, self.committer, self.pipeline.reject)
        self._seed_archive()
        best = self.committer.update_best()
        if best is not None:  # a held-out evaluation a stop or a kill interrupted is redone on resume
            self.heldout.submit(best)
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
            if not self._process_children(children):
                return self._finish("stopped", "stopped by the user")
            if ctx.cancel.is_set():
                break
            ctx.store.update_run(ctx.run_id, iterations_done=iteration)
            ctx.emit("iteration.done", f"iteration {iteration} done", flush=True, iteration=iteration)
        if ctx.cancel.is_set():
            return self._finish("stopped", "interrupted; run again to resume")
        return self._finish("done", f"{ctx.config.iterations} iterations")

    def parallel_children(self, n_parents: int) -> int:
        """Children proposed and evaluated at once: --parallel-children, else the parents, capped
        by --max-concurrent-llm (each child keeps model calls in flight)."""
        cfg = self.ctx.config
        k = cfg.parallel_children or n_parents
        return max(1, min(k, cfg.max_concurrent_llm))

    def _process_children(self, children: list[Design]) -> bool:
        """Take an iteration's unfinished children through the pipeline, up to K at once; False
        when the user stopped the search. Whatever order they finish in, accepted children are
        committed in their order (d004 before d005), so the lineage does not depend on timing."""
        ctx = self.ctx
        todo = [c for c in children if c.status not in FINAL_STATUSES]
        k = self.parallel_children(len(children))
        if k <= 1 or len(todo) <= 1:
            for child in todo:
                if not self.steering.apply():  # stop: once the evaluations in progress finish
                    return False
                if ctx.cancel.is_set():
                    break
                self.pipeline.process(child)
            return True
        stopped = False
        errors: list[BaseException] = []
        running: dict[Future[None], Design] = {}
        with ThreadPoolExecutor(max_workers=k, thread_name_prefix="alma-child") as pool:
            queue = list(todo)
            while queue or running:
                while queue and len(running) < k and not (stopped or errors or ctx.cancel.is_set()):
                    if not self.steering.apply():  # stop: no new child starts, running ones finish
                        stopped = True
                        break
                    child = queue.pop(0)
                    fut = pool.submit(self.pipeline.process, child, commit=False, in_flight=len(running))
                    running[fut] = child
                if not running:
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in done:
                    running.pop(fut)
                    exc = fut.exception()
                    if exc is not None:
                        errors.append(exc)
        self._commit_in_order(children)
        if errors:  # the budget, an outage or a crash: reported once every child stopped
            raise errors[0]
        return not stopped

    def _commit_in_order(self, children: list[Design]) -> None:
        for c in children:
            d = self.ctx.store.get_design(c.id)
            if d is not None and d.status == "accepted" and not d.commit:
                self.pipeline.commit(d)

    # -- the archive ----------------------------------------------------------------------------
    def _seed_archive(self) -> None:
        """The no-memory normaliser and trajectory retrieval, evaluated before any search."""
        ctx = self.ctx
        existing = ctx.store.designs()
        users = self._user_seeds(existing)
        if not existing:
            seeds = [("builtin", BUILTIN[name][0], builtin_source(name)) for name in SEED_DESIGNS]
            for origin, title, code in seeds + users:
                seq = ctx.store.next_design_seq()
                ctx.store.add(
                    Design(
                        id=f"d{seq:03d}",
                        run_id=ctx.run_id,
                        seq=seq,
                        iteration=0,
                        origin=origin,
                        title=title,
                        code=code,
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

    def _user_seeds(self, existing: list[Design]) -> list[tuple[str, str, str]]:
        """The --seed-design files as (origin, title, code), each validated in the sandbox before
        anything is added; a resume passes them again, so one already in the archive is skipped."""
        out = []
        for path in self.ctx.config.seed_designs:
            try:
                code = Path(path).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise SearchError(
                    f"--seed-design {path}: cannot read it ({getattr(exc, 'strerror', None) or exc})"
                ) from exc
            if any(d.code == code for d in existing):
                continue
            if existing:
                raise SearchError(
                    f"--seed-design {path}: seed designs join a search when it starts, and this archive has "
                    f"{len(existing)} designs (start another --repo, or `alma-tui eval {path}`)"
                )
            self.ctx.emit("design.validating", f"seed design {path}: validating in the sandbox")
            reason = self.pipeline.check(code)
            if reason is not None:
                raise SearchError(f"--seed-design {path} failed validation in the sandbox: {reason}")
            title = extract_title("", code, fallback=Path(path).stem.replace("_", " "))
            out.append(("user", sanitize(title, newlines=False)[:120], code))
        return out

    def _children_of(self, iteration: int) -> list[Design]:
        return [d for d in self.ctx.store.designs() if d.iteration == iteration]

    def _candidates(self) -> list[Candidate]:
        return [
            Candidate(d.id, d.score or 0.0, d.visits, d.pinned, d.vetoed)
            for d in self.ctx.store.designs()
            if d.status == "accepted" and d.score is not None
        ]

    def _select(self, iteration: int) -> list[Design]:
        """Choose parents (and merge partners) and persist their children (and visit counts) in
        one transaction. Every draw comes from RNGs keyed by (seed, iteration) and reads only the
        store, so a search killed before this commit makes the same choices when resumed."""
        ctx, cfg = self.ctx, self.ctx.config
        cands = self._candidates()
        if not cands:
            raise SearchError("no accepted design to select a parent from")
        s0 = ctx.run_row.no_memory_score or 0.0
        params = cfg.params
        rate = cfg.effective_merge_rate
        table = ctx.store.task_table([c.id for c in cands]) if cfg.selection == "pareto" or rate > 0 else {}
        choices = choose_parents(cands, s0, iteration_rng(cfg.seed, iteration), params, cfg.selection, table)
        if not choices:
            raise SearchError("every design is vetoed; unveto one to continue")
        parents = [c.id for c in choices]
        seconds = merge_partners(parents, cands, merge_rng(cfg.seed, iteration), rate, table)
        children = ctx.store.add_children(ctx.run_id, iteration, parents, seconds)
        pinned = [c.id for c in cands if c.pinned]
        why = {c.id: c.explain() for c in choices}
        merges = {ch.id: [p, s] for ch, p, s in zip(children, parents, seconds, strict=True) if s}
        by_id = {c.id: c for c in cands}
        for first, second in merges.values():
            if second not in why:  # a partner that was not drawn itself: why it was taken
                c = by_id[second]
                why[second] = {"why": f"merge partner of {first}", "score": round(c.score, 4), "visits": c.visits}
        lines = [describe_choice(c) for c in choices]
        lines += [f"{cid}: merge of {a} and {b} (merge rate {rate:g})" for cid, (a, b) in merges.items()]
        ctx.emit(
            "selection",
            f"iteration {iteration}: parents {', '.join(parents)}"
            + (f" (pinned: {', '.join(pinned)})" if pinned else "")
            + "".join(f"\n  {line}" for line in lines),
            flush=True,
            iteration=iteration,
            parents=parents,
            probabilities=distribution(cands, s0, params, cfg.selection, table),
            why=why,
            merges=merges,
            merge_rate=rate,
            mode=cfg.selection,
            formula={
                "greedy": "the best designs by mean score",
                "pareto": params.describe_pareto(),
            }.get(cfg.selection, params.describe()),
        )
        return children
