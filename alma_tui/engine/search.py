"""The ALMA search loop: select parents, analyze, write, validate/repair, evaluate, commit.

Every state change is written to the store before the next step starts, so a search
killed at any point (Ctrl-C, kill -9, a crash) resumes where it stopped without
redoing finished work: children of an iteration are created (with the parents'
visit counts) in one transaction at selection time, and a child resumes from the
first of analysis / code / validation / evaluation it lacks. Accepted designs are
committed to git idempotently (tag per design), and a commit missed by a crash is
made on resume.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from alma_tui.design_api import Episode as ApiEpisode
from alma_tui.engine.archive import Candidate, iteration_rng, probabilities, select_parents
from alma_tui.engine.config import SearchConfig
from alma_tui.engine.evaluator import (
    EvalResult,
    EvaluationCancelled,
    EvaluationFailed,
    Evaluator,
    Hooks,
    synthetic_episodes,
)
from alma_tui.failures import disk_full_message, disk_full_target
from alma_tui.lineage import Lineage
from alma_tui.sanitize import sanitize
from alma_tui.store import Store
from alma_tui.store.models import Design, Evaluation, LLMCall, Run, utcnow
from alma_tui.store.models import Episode as EpisodeRow

SEED_DESIGNS = ("no_memory", "trajectory_retrieval")
FINAL_STATUSES = ("accepted", "rejected")


# An evaluation that was started this many times without finishing (the engine died each
# time: a crash, the OOM killer, a kill -9) is not started again: the design is rejected so
# the search goes on. ALMA_TUI_CRASH_LIMIT overrides it for operators (and the kill
# harness) that kill engines on purpose.
CRASH_LIMIT = 2
ENGINE_DIED = "interrupted (the engine stopped); redone on resume"
# Test hook: the engine SIGKILLs itself once an evaluation of this design id has started.
_TEST_DIE_ON = "ALMA_TUI_TEST_DIE_EVALUATING"


def crash_limit() -> int:
    try:
        return max(1, int(os.environ.get("ALMA_TUI_CRASH_LIMIT", CRASH_LIMIT)))
    except ValueError:
        return CRASH_LIMIT


def engine_running(repo: Path) -> bool:
    """True when an engine holds the repo's lock (a search is running there now)."""
    from alma_tui.runstate import engine_running as held

    return held(repo)


class SearchError(Exception):
    """A search cannot start or continue (one clear line for the user)."""


class Reporter(Protocol):
    def event(self, kind: str, message: str, design_id: str | None, data: dict[str, Any]) -> None: ...


@dataclass
class Progress:
    """What a progress display needs, kept current by the search."""

    iteration: int = 0
    iterations: int = 0
    design_id: str | None = None
    phase: str = ""
    episodes_done: int = 0
    episodes_total: int = 0
    best_id: str | None = None
    best_score: float | None = None


class Search:
    def __init__(self, config: SearchConfig, reporter: Reporter | None = None) -> None:
        self.config = config
        self.reporter = reporter
        self.cancel = threading.Event()
        self.progress = Progress()
        self.store: Store | None = None
        self.run_row: Run | None = None
        self._lock_fd: int | None = None
        self._hints: list[str] = []
        self._hint_cmd_ids: list[int] = []

    # -- life cycle ---------------------------------------------------------------------------
    def open(self) -> Run:
        """Open (or create) the repo, take the engine lock, create or resume the run."""
        cfg = self.config
        repo = Path(cfg.repo)
        from alma_tui.domains import DomainError, get_domain

        try:
            self.domain = get_domain(cfg.domain)
        except DomainError as exc:
            raise SearchError(str(exc)) from exc
        missing = self.domain.requirements() if hasattr(self.domain, "requirements") else None
        if missing:
            raise SearchError(f"domain {cfg.domain!r} is not usable here: {missing}")
        from alma_tui.sandbox import SandboxLimits, SandboxUnavailable, describe, require
        from alma_tui.sandbox.isolation import cleanup_stale_dirs

        try:
            iso = require(cfg.allow_weak_sandbox)
        except SandboxUnavailable as exc:
            raise SearchError(str(exc)) from exc
        self.sandbox_line = describe(iso)
        self.sandbox_limits = SandboxLimits(isolate=iso.strong)
        self.lineage = Lineage(repo)
        self.store = Store(repo)
        self._take_lock(repo)
        from alma_tui.engine.reconcile import ArchiveMismatch, reconcile

        try:  # the store and git must agree before anything is added to either
            repairs = reconcile(self.store, self.lineage, self.store.get_run())
        except ArchiveMismatch as exc:
            raise SearchError(str(exc)) from exc
        run = self.store.get_run()
        if run is None:
            run = Run(
                domain=cfg.domain,
                meta_model=cfg.meta_model,
                agent_model=cfg.agent_model,
                selection=cfg.selection,
                seed=cfg.seed,
                iterations_target=cfg.iterations,
                settings_json=cfg.to_json(),
            )
            self.store.add(run)
        else:
            if run.domain != cfg.domain:
                raise SearchError(
                    f"{repo} holds a search on domain {run.domain!r}, not {cfg.domain!r}; "
                    "use another --repo for a new search"
                )
            run = self.store.update_run(
                run.id,
                iterations_target=cfg.iterations,
                meta_model=cfg.meta_model,
                agent_model=cfg.agent_model,
                selection=cfg.selection,
                settings_json=cfg.to_json(),
            )
        self.run_row = self.store.update_run(
            run.id, status="running", status_detail="", pid=os.getpid(), heartbeat_at=utcnow()
        )
        stale = [c.id for c in self.store.pending_commands() if c.kind in ("pause", "resume", "stop")]
        self.store.mark_applied([c for c in stale if c is not None])  # issued while no engine ran
        for line in repairs:
            self.emit("lineage.repair", line, flush=True)
        self.progress.iterations = cfg.iterations
        self.progress.iteration = run.iterations_done
        from alma_tui.llm.accounting import run_totals
        from alma_tui.llm.client import Budget, LLMClient, RoleParams

        bases = {
            m: b
            for m, b in (
                (cfg.agent_model, cfg.agent_api_base),
                (cfg.design_model, cfg.agent_api_base),
                (cfg.embedding_model, cfg.agent_api_base),
                (cfg.meta_model, cfg.meta_api_base),
            )
            if m and b
        }
        agent_params = RoleParams(cfg.agent_temperature, cfg.agent_reasoning)
        self.llm = LLMClient(
            record=self._record_call,
            api_base=cfg.api_base,
            api_bases=bases,
            budget=Budget(cfg.budget_usd, cfg.budget_tokens),
            timeout_s=cfg.llm_timeout_s,
            num_retries=cfg.llm_retries,
            max_concurrent=cfg.max_concurrent_llm,
            cancel=self.cancel,
            role_params={
                "meta": RoleParams(cfg.meta_temperature, cfg.meta_reasoning),
                "agent": agent_params,
                "design": agent_params,
            },
        )
        spent = run_totals(self.store)  # a budget covers the whole run, earlier sessions included
        self.llm.restore(spent["prompt_tokens"], spent["completion_tokens"], spent["cost_usd"], spent["calls"])
        self._outages, self._last_outage = 0, 0.0
        self.evaluator = Evaluator(self.domain, self._agent_complete, limits=self.sandbox_limits)
        self.emit("run.sandbox", self.sandbox_line, flush=True, strong=iso.strong, report=iso.report)
        for path in cleanup_stale_dirs():
            self.emit("run.cleanup", f"removed a sandbox folder left by a killed engine: {path}")
        return self.run_row

    def _take_lock(self, repo: Path) -> None:
        path = repo / ".alma" / "engine.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        for attempt in range(5):  # a status probe (runstate.engine_running) holds it for an instant
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if attempt < 4:
                    time.sleep(0.02)
                    continue
                os.close(fd)
                raise SearchError(
                    f"a search is already running in {repo}; attach to it with `alma-tui watch --repo {repo}`"
                ) from exc
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock_fd = fd

    def close(self) -> None:
        if self.store is not None:
            self.store.flush_events()
            self.store.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # -- events ---------------------------------------------------------------------------------
    def emit(
        self, kind: str, message: str = "", design_id: str | None = None, flush: bool = False, **data: Any
    ) -> None:
        assert self.store is not None and self.run_row is not None
        message = sanitize(message)  # titles, errors and log lines come from models and designs
        self.store.emit(kind, message, run_id=self.run_row.id, design_id=design_id, data=data, flush=flush)
        if self.reporter is not None:
            self.reporter.event(kind, message, design_id, data)

    def _record_call(self, row: dict[str, Any]) -> None:
        assert self.store is not None and self.run_row is not None
        self.store.buffer(LLMCall(run_id=self.run_row.id, **row))

    def _set_status(self, status: str, detail: str = "") -> None:
        assert self.store is not None and self.run_row is not None
        self.run_row = self.store.update_run(
            self.run_row.id, status=status, status_detail=detail, heartbeat_at=utcnow()
        )
        self.emit("run.status", f"run {status}" + (f": {detail}" if detail else ""), flush=True, status=status)

    # -- model calls ----------------------------------------------------------------------------
    def _agent_complete(self, messages: list[dict], seed: int, design_id: str | None = None) -> str:
        # designs are processed one at a time, so the one in progress owns the agent's calls
        return self.llm.complete(
            messages,
            model=self.config.agent_model,
            role="agent",
            design_id=design_id or self.progress.design_id,
            seed=seed,
        )

    def _meta_complete(self, design_id: str) -> Callable[[list[dict]], str]:
        def complete(messages: list[dict]) -> str:
            buf: list[str] = []
            last = [time.monotonic()]

            def on_chunk(text: str) -> None:
                buf.append(text)
                if time.monotonic() - last[0] > 0.1 or len(buf) > 40:
                    self.emit("meta.chunk", "", design_id, text="".join(buf))
                    buf.clear()
                    last[0] = time.monotonic()

            answer = self.llm.complete(
                messages,
                model=self.config.meta_model,
                role="meta",
                design_id=design_id,
                seed=self.config.seed,
                on_chunk=on_chunk,
            )
            if buf:
                self.emit("meta.chunk", "", design_id, text="".join(buf))
            return answer

        return complete

    def _hooks(self, design_id: str) -> Hooks:
        cfg = self.config
        design_model = cfg.design_model or cfg.agent_model

        def step(phase: str, run: int, task_id: str, i: int, action: str, obs: str, reward: float) -> None:
            self.emit(
                "episode.step",
                f"[{phase} r{run} {task_id}] {i + 1}: {action} -> {obs[:160]}",
                design_id,
                phase=phase,
                run=run,
                task_id=task_id,
                step=i + 1,
                action=action,
                observation=obs[:500],
                reward=reward,
            )

        def episode(rec: Any) -> None:
            self.progress.episodes_done += 1
            mark = "success" if rec.success else ("error: " + rec.error if rec.error else "failed")
            self.emit(
                "episode.done",
                f"[{rec.phase} r{rec.run} {rec.task_id}] {mark} in {rec.steps} steps",
                design_id,
                phase=rec.phase,
                run=rec.run,
                task_id=rec.task_id,
                success=rec.success,
                steps=rec.steps,
                done=self.progress.episodes_done,
                total=self.progress.episodes_total,
            )

        def design_llm(prompt: str, system: str | None) -> str:
            msgs = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
            return self.llm.complete(msgs, model=design_model, role="design", design_id=design_id, seed=cfg.seed)

        def design_embed(texts: list[str]) -> list[list[float]]:
            return self.llm.embed(texts, model=cfg.embedding_model, design_id=design_id)

        def design_log(line: str) -> None:
            self.emit("design.log", sanitize(line)[:1000], design_id)

        return Hooks(
            on_step=step, on_episode=episode, design_log=design_log, design_llm=design_llm, design_embed=design_embed
        )

    # -- the loop -------------------------------------------------------------------------------
    def run(self) -> str:
        """Run until the iteration target, a stop, the budget or an error. Returns the final status."""
        from alma_tui.engine.meta_agent import MetaAgentError
        from alma_tui.lineage import LineageError
        from alma_tui.llm.client import BudgetExceeded, ModelError, ProviderUnavailable

        assert self.store is not None and self.run_row is not None
        self._beat_stop = threading.Event()
        beat = threading.Thread(target=self._heartbeat, name="alma-heartbeat", daemon=True)
        beat.start()
        self.emit(
            "run.status",
            f"search on {self.config.domain} with {self.config.meta_model} / {self.config.agent_model}",
            flush=True,
            status="running",
        )
        try:
            while True:
                try:
                    return self._search_loop()
                except ProviderUnavailable as exc:  # paused, not failed: designs resume where they were
                    if not self._wait_out_outage(str(exc)):
                        return self._finish("stopped", "stopped while the model provider was unavailable")
        except BudgetExceeded as exc:
            return self._finish("budget", str(exc))
        except (MetaAgentError, ModelError, LineageError) as exc:
            return self._finish("error", str(exc))
        except EvaluationCancelled:
            return self._finish("stopped", "interrupted; run again to resume")
        except Exception as exc:  # anything else: keep the traceback, tell the user one line
            import traceback

            full = disk_full_target(exc, self.config.repo)
            if full is not None:  # nothing was half-written (SQLite rolled back): a resume goes on
                message = disk_full_message(full)
                with contextlib.suppress(Exception):  # the status itself may not fit on the disk any more
                    self._finish("error", message)
                raise SearchError(message) from exc
            log = Path(self.config.repo) / ".alma" / "engine-error.log"
            try:
                with open(log, "a") as fh:
                    fh.write(f"--- {utcnow().isoformat()}\n{traceback.format_exc()}\n")
            except OSError:
                pass
            return self._finish(
                "error", f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} (traceback in {log})"
            )
        finally:
            self._beat_stop.set()

    def _search_loop(self) -> str:
        assert self.store is not None
        self._recover()
        self._seed_archive()
        while not self.cancel.is_set():
            run = self.store.get_run()
            assert run is not None
            if run.iterations_done >= self.config.iterations:
                break
            if not self._apply_commands():
                return self._finish("stopped", "stopped by the user")
            if self.cancel.is_set():
                break
            iteration = run.iterations_done + 1
            self.progress.iteration = iteration
            children = self._children_of(iteration) or self._select(iteration)
            for child in children:
                if child.status in FINAL_STATUSES:
                    continue
                if not self._apply_commands():  # "stop after the current evaluation"
                    return self._finish("stopped", "stopped by the user")
                if self.cancel.is_set():
                    break
                self._process(child)
            if self.cancel.is_set():
                break
            self.store.update_run(run.id, iterations_done=iteration)
            self.emit("iteration.done", f"iteration {iteration} done", flush=True, iteration=iteration)
        if self.cancel.is_set():
            return self._finish("stopped", "interrupted; run again to resume")
        return self._finish("done", f"{self.config.iterations} iterations")

    def _llm_stopped(self) -> None:
        """Raise why model calls cannot go on (budget, outage, rejected key) if a call hit it:
        episodes count a failed call as reward 0, so a step's result is only kept after this check."""
        reason = self.llm.stop_reason()
        if reason is not None:
            raise reason

    def _wait_out_outage(self, detail: str) -> bool:
        """Pause on a provider outage until a backoff passes or `alma-tui resume`; False on stop."""
        assert self.store is not None
        now = time.monotonic()
        self._outages = 1 if now - self._last_outage > 1800 else self._outages + 1
        self._last_outage = now
        wait = min(600.0, self.config.outage_wait_s * 2 ** (self._outages - 1))
        self._set_status(
            "paused", f"provider unavailable: {detail[:300]}; retrying in {wait:.0f}s (or on `alma-tui resume`)"
        )
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            for cmd in self.store.pending_commands():
                if cmd.kind in ("resume", "stop"):
                    self.store.mark_applied([cmd.id])
                    if cmd.kind == "stop":
                        return False
                    deadline = 0.0
            if self.cancel.wait(0.5):
                return False
        self.llm.clear_halt()
        self._set_status("running", "retrying after the provider outage")
        return True

    def _finish(self, status: str, detail: str) -> str:
        self._update_best()
        self._set_status(status, detail)
        return status

    def _heartbeat(self) -> None:
        """Every ~2 s: prove the engine alive and flush buffered events. A failed beat (the
        database locked past its timeout, a full disk for a moment) is logged and retried:
        a dead heartbeat would make a working engine look interrupted."""
        failures = 0
        while not self._beat_stop.is_set() and self.store is not None and self.run_row is not None:
            try:
                self.store.update_run(self.run_row.id, heartbeat_at=utcnow())
                self.store.flush_events()
                failures = 0
            except Exception as exc:
                if self._beat_stop.is_set():
                    return  # the store is closing
                failures += 1
                if failures == 1 or failures % 30 == 0:  # first of a streak, then once a minute
                    self._log_error(f"heartbeat failed ({failures}x, retrying): {type(exc).__name__}: {exc}")
            self._beat_stop.wait(2.0)

    def _log_error(self, text: str) -> None:
        """Append to <repo>/.alma/engine-error.log (best effort: the disk may be full)."""
        try:
            with open(Path(self.config.repo) / ".alma" / "engine-error.log", "a") as fh:
                fh.write(f"--- {utcnow().isoformat()}\n{text}\n")
        except OSError:
            pass

    def _recover(self) -> None:
        """Resume after a crash or kill: finish lineage, restart interrupted evaluations."""
        assert self.store is not None
        with self.store.session() as s:
            from sqlmodel import select

            for ev in s.exec(select(Evaluation).where(Evaluation.status == "running")).all():
                ev.status = "failed"
                ev.error = ENGINE_DIED
                s.add(ev)
            s.commit()
            died = [ev.design_id for ev in s.exec(select(Evaluation).where(Evaluation.error == ENGINE_DIED)).all()]
        limit = crash_limit()
        for d in self.store.designs():
            if d.status == "accepted" and not d.commit:
                self._commit(d)
            elif d.status == "evaluating" and died.count(d.id) >= limit:
                # a poison design: each evaluation of it took the engine down; do not start a third
                times = "twice" if limit == 2 else f"{died.count(d.id)} times"
                self._reject(
                    d,
                    f"crashed the engine {times}",
                    f"{died.count(d.id)} evaluations of {d.id} started and never finished: the engine "
                    "process died during each (crash, out of memory or kill). It is not evaluated again.",
                )
            elif d.status in ("validating", "evaluating"):
                self.emit("design.resumed", f"{d.id} was interrupted while {d.status}; redoing", d.id)
        self._update_best()

    def _seed_archive(self) -> None:
        """The no-memory normaliser and trajectory retrieval, evaluated before any search."""
        from alma_tui.designs import BUILTIN, builtin_source

        assert self.store is not None and self.run_row is not None
        if not self.store.designs():
            for name in SEED_DESIGNS:
                seq = self.store.next_design_seq()
                self.store.add(
                    Design(
                        id=f"d{seq:03d}",
                        run_id=self.run_row.id,
                        seq=seq,
                        iteration=0,
                        origin="builtin",
                        title=BUILTIN[name][0],
                        code=builtin_source(name),
                    )
                )
        for d in self.store.designs():
            if d.iteration == 0 and d.status not in FINAL_STATUSES and not self.cancel.is_set():
                self._process(d)
        nm = self.store.get_design("d001")
        if nm is not None and nm.status == "accepted":
            self.run_row = self.store.update_run(self.run_row.id, no_memory_score=nm.score)
        elif nm is not None and nm.status == "rejected":
            raise SearchError(f"the no-memory design failed to evaluate: {nm.error}")

    def _children_of(self, iteration: int) -> list[Design]:
        assert self.store is not None
        return [d for d in self.store.designs() if d.iteration == iteration]

    def _candidates(self) -> list[Candidate]:
        assert self.store is not None
        return [
            Candidate(d.id, d.score or 0.0, d.visits, d.pinned, d.vetoed)
            for d in self.store.designs()
            if d.status == "accepted" and d.score is not None
        ]

    def _select(self, iteration: int) -> list[Design]:
        """Choose parents and persist their children (and visit counts) in one transaction."""
        assert self.store is not None and self.run_row is not None
        cands = self._candidates()
        if not cands:
            raise SearchError("no accepted design to select a parent from")
        s0 = self.run_row.no_memory_score or 0.0
        params = self.config.params
        parents = select_parents(cands, s0, iteration_rng(self.config.seed, iteration), params, self.config.selection)
        if not parents:
            raise SearchError("every design is vetoed; unveto one to continue")
        probs = probabilities([c for c in cands if not c.pinned], s0, params)
        children: list[Design] = []
        with self.store.session() as s:
            seq = self.store.next_design_seq()
            for pid in parents:
                parent = s.get(Design, pid)
                assert parent is not None
                parent.visits += 1
                s.add(parent)
                child = Design(
                    id=f"d{seq:03d}",
                    run_id=self.run_row.id,
                    seq=seq,
                    parent_id=pid,
                    iteration=iteration,
                    origin="meta",
                    title=f"child of {pid}",
                )
                s.add(child)
                children.append(child)
                seq += 1
            s.commit()
        pinned = [c.id for c in cands if c.pinned]
        self.emit(
            "selection",
            f"iteration {iteration}: parents {', '.join(parents)}"
            + (f" (pinned: {', '.join(pinned)})" if pinned else ""),
            flush=True,
            iteration=iteration,
            parents=parents,
            probabilities=probs,
            mode=self.config.selection,
            formula=params.describe(),
        )
        return children

    # -- steering -------------------------------------------------------------------------------
    def _apply_commands(self) -> bool:
        """Apply pending commands; wait while paused. False when the user asked to stop."""
        assert self.store is not None and self.run_row is not None
        paused = self.run_row.status == "paused"
        while True:
            applied = []
            for cmd in self.store.pending_commands():
                if cmd.kind == "hint":
                    if cmd.id not in self._hint_cmd_ids:
                        self._hints.append(cmd.text)
                        self._hint_cmd_ids.append(cmd.id)  # marked applied once an analysis used it
                    continue
                applied.append(cmd.id)
                if cmd.kind == "pause":
                    paused = True
                elif cmd.kind == "resume":
                    paused = False
                elif cmd.kind == "stop":
                    self.store.mark_applied(applied)
                    return False
                self.emit(
                    "command.applied",
                    f"applied {cmd.kind} {cmd.design_id or ''}".strip(),
                    cmd.design_id,
                    command=cmd.kind,
                )
            self.store.mark_applied(applied)
            if not paused:
                if self.run_row.status == "paused":
                    self._set_status("running", "resumed")
                return True
            if self.run_row.status != "paused":
                self._set_status("paused", "paused by the user")
            if self.cancel.wait(0.5):
                return True

    # -- one design -----------------------------------------------------------------------------
    def _process(self, d: Design) -> None:
        assert self.store is not None
        self.progress.design_id = d.id
        if (
            d.origin == "meta"
            and not d.analysis_json
            and (self.config.budget_usd is not None or self.config.budget_tokens is not None)
        ):
            from alma_tui.llm.accounting import estimate_next_design

            usd, tokens = estimate_next_design(self.store)  # stop before a design that would not fit
            self.llm.ensure_room(usd, tokens, what=f"{d.id} (median cost of a finished design)")
        if d.origin == "meta":
            d = self._propose(d)
            if d.status == "rejected":
                return
        if d.status in ("proposed", "validating"):
            d = self._validate(d)
            if d.status == "rejected" or self.cancel.is_set():
                return
        self._evaluate(d)

    def _parent_info(self, parent: Design) -> Any:
        from alma_tui.engine.meta_agent import ParentInfo

        assert self.store is not None and self.run_row is not None
        episodes = self._sample_episodes(parent.id)
        prev_suggestion = prev_improved = None
        if parent.analysis_json:
            try:
                changes = json.loads(parent.analysis_json).get("suggested_changes") or []
                prev_suggestion = "; ".join(c.get("what", "") for c in changes[:3]) or None
            except (ValueError, AttributeError):
                prev_suggestion = None
            gp = self.store.get_design(parent.parent_id) if parent.parent_id else None
            if gp is not None and gp.score is not None and parent.score is not None:
                prev_improved = parent.score > gp.score
        return ParentInfo(
            design_id=parent.id,
            title=parent.title,
            code=parent.code,
            score=parent.score,
            run_scores=json.loads(parent.run_scores_json or "[]"),
            no_memory_score=self.run_row.no_memory_score,
            episodes=episodes,
            errors=[parent.error] if parent.error else [],
            previous_suggestion=prev_suggestion,
            previous_improved=prev_improved,
            hints=list(self._hints),
            domain_name=self.domain.name,
            domain_description=getattr(self.domain, "instructions", ""),
            example_episode=self._example_episode(),
        )

    def _example_episode(self) -> dict | None:
        """A real episode and query of this domain (the validation data), trimmed for the prompt."""
        try:
            episodes, queries = self._validation_data()
        except Exception:  # the example is a courtesy; the prompt works without it
            return None
        if not episodes or not queries:
            return None
        ep = episodes[0].to_dict()
        ep["steps"] = ep["steps"][:6] + (
            [{"...": f"{len(ep['steps']) - 6} more steps"}] if len(ep["steps"]) > 6 else []
        )
        return {"episode": ep, "query": queries[0].to_dict()}

    def _sample_episodes(self, design_id: str, n: int = 8) -> list[dict]:
        """A sample of the parent's deployment episodes, stratified by success."""
        assert self.store is not None
        from sqlmodel import select

        with self.store.session() as s:
            ev = s.exec(
                select(Evaluation)
                .where(Evaluation.design_id == design_id, Evaluation.status == "done")
                .order_by(Evaluation.id.desc())
            ).first()  # type: ignore[union-attr]
            if ev is None:
                return []
            rows = s.exec(
                select(EpisodeRow).where(EpisodeRow.evaluation_id == ev.id, EpisodeRow.phase == "deployment")
            ).all()
        rng = random.Random(f"sample:{design_id}")
        fails = [r for r in rows if not r.success]
        wins = [r for r in rows if r.success]
        rng.shuffle(fails)
        rng.shuffle(wins)
        n_fail = min(len(fails), max(n - min(len(wins), n // 2), n // 2))
        picked = fails[:n_fail] + wins[: n - n_fail]
        out = []
        for r in picked:
            traj = json.loads(r.trajectory_json or "[]")
            out.append(
                {
                    "task_id": r.task_id,
                    "goal": r.goal,
                    "success": r.success,
                    "run": r.run,
                    "step_count": r.steps,
                    "memory": r.retrieved,
                    "actions": [t.get("action", "") for t in traj][-12:],
                    "error": r.error,
                }
            )
        return out

    def _propose(self, d: Design) -> Design:
        """Analysis of the parent, then the child's code (each step stored as it completes)."""
        from alma_tui.engine.meta_agent import Analysis, MetaAgent, MetaAgentError

        assert self.store is not None
        parent = self.store.get_design(d.parent_id or "")
        if parent is None:
            return self._reject(d, f"parent {d.parent_id} is missing from the archive")
        meta = MetaAgent(self._meta_complete(d.id), seed=self.config.seed + d.seq)
        info = self._parent_info(parent)
        if not d.analysis_json:
            self.emit("design.analyzing", f"{d.id}: analyzing parent {parent.id}", d.id, parent=parent.id)
            try:
                analysis, raw = meta.analyze(info)
            except MetaAgentError as exc:
                return self._reject(d, f"meta agent failed: {exc}")
            d = self.store.update_design(d.id, analysis_json=analysis.model_dump_json(), analysis_raw=raw)
            if self._hint_cmd_ids:
                self.store.mark_applied(self._hint_cmd_ids)
                self.emit("hint.used", f"{d.id}: hints used in analysis: {'; '.join(self._hints)}", d.id)
                self._hints, self._hint_cmd_ids = [], []
        if not d.code:
            analysis = Analysis.model_validate_json(d.analysis_json or "{}")
            self.emit("design.writing", f"{d.id}: writing code", d.id)
            try:
                title, code, _raw = meta.write(info, analysis)
            except MetaAgentError as exc:
                return self._reject(d, f"meta agent failed: {exc}")
            d = self.store.update_design(
                d.id, title=sanitize(title, newlines=False)[:120], code=code, status="proposed"
            )
            self.emit("design.proposed", f"{d.id}: {d.title}", d.id, parent=parent.id, flush=True)
        return d

    def _validate(self, d: Design) -> Design:
        """Run the design on a few real episodes in the sandbox; repair up to max_repairs times."""
        from alma_tui.engine.meta_agent import MetaAgent, MetaAgentError
        from alma_tui.sandbox import DesignFailure, validate_design

        assert self.store is not None
        d = self.store.update_design(d.id, status="validating")
        self.emit("design.validating", f"{d.id}: validating in the sandbox", d.id)
        episodes, queries = self._validation_data()
        hooks = self._hooks(d.id)
        limits = replace(self.sandbox_limits, call_timeout_s=10.0)
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
                self._llm_stopped()
                if code != d.code:
                    d = self.store.update_design(d.id, code=code)
                return self.store.update_design(d.id, status="evaluating")
            except DesignFailure as exc:
                self._llm_stopped()  # a failed model call is not the design's fault
                error = exc.reason
                detail = exc.detail
            if d.origin != "meta" or attempt >= self.config.max_repairs:
                return self._reject(d, f"failed validation: {error}", detail)
            attempt += 1
            self.emit(
                "design.repair",
                f"{d.id}: repair {attempt}/{self.config.max_repairs} after: {error}",
                d.id,
                attempt=attempt,
                error=error,
                detail=detail[:4000],
                failed_code=code[:40000],
                flush=True,
            )  # every attempt stays visible: the event keeps the code that failed
            parent = self.store.get_design(d.parent_id or "")
            assert parent is not None
            meta = MetaAgent(self._meta_complete(d.id), seed=self.config.seed + d.seq + 1000 * attempt)
            try:
                title, code, _raw = meta.repair(self._parent_info(parent), code, f"{error}\n{detail}".strip()[:4000])
            except MetaAgentError as exc:  # a repair with no usable code is a failed attempt
                self.emit(
                    "design.repair",
                    f"{d.id}: repair {attempt} gave no usable code: {exc}",
                    d.id,
                    attempt=attempt,
                    error=str(exc),
                )
                d = self.store.update_design(d.id, repairs=attempt)
                continue
            d = self.store.update_design(
                d.id, code=code, title=sanitize(title, newlines=False)[:120] or d.title, repairs=attempt
            )

    def _validation_data(self) -> tuple[list[ApiEpisode], list[Any]]:
        if not hasattr(self, "_vdata"):
            self._vdata = synthetic_episodes(
                self.domain, lambda m, s: self._agent_complete(m, s), n=2, seed=self.config.seed
            )
        return self._vdata

    def _spend(self, design_id: str) -> dict[str, Any]:
        """Tokens and cost of every call made for a design (meta, agent, design-internal)."""
        from alma_tui.llm.accounting import design_totals

        t = design_totals(self.store).get(design_id) or {}
        return {"tokens": int(t.get("tokens", 0)), "cost_usd": float(t.get("cost_usd", 0.0))}

    def _reject(self, d: Design, error: str, detail: str = "") -> Design:
        assert self.store is not None
        error, detail = sanitize(error), sanitize(detail)
        d = self.store.update_design(
            d.id,
            status="rejected",
            error=error[:1000],
            error_detail=detail[:20000],
            finished_at=utcnow(),
            **self._spend(d.id),
        )
        self.emit("design.rejected", f"{d.id} rejected: {error}", d.id, flush=True, error=error)
        return d

    def _evaluate(self, d: Design) -> None:
        assert self.store is not None
        cfg = self.config
        d = self.store.update_design(d.id, status="evaluating")
        ev = Evaluation(
            design_id=d.id,
            kind="search",
            domain=cfg.domain,
            agent_model=cfg.agent_model,
            split=cfg.eval.split,
            seed=cfg.seed,
            runs=cfg.eval.runs,
        )
        self.store.add(ev)
        n = cfg.eval.n_collection + cfg.eval.n_deployment * cfg.eval.runs
        self.progress.episodes_done, self.progress.episodes_total = 0, n
        self.emit("design.evaluating", f"{d.id}: evaluating ({n} episodes)", d.id, flush=True, total=n)
        settings = cfg.eval
        settings.seed = cfg.seed
        if os.environ.get(_TEST_DIE_ON) == d.id:  # test hook: a design that takes the engine down
            import signal

            os.kill(os.getpid(), signal.SIGKILL)
        try:
            result = self.evaluator.evaluate(d.code, settings, self._hooks(d.id), self.cancel)
            self._llm_stopped()
        except (EvaluationCancelled, KeyboardInterrupt):  # the user, not the design: no crash counted
            self.store.update_design(d.id, status="evaluating")
            self._close_evaluation(ev.id, "interrupted by the user; redone on resume")
            raise
        except EvaluationFailed as exc:
            self._llm_stopped()
            with self.store.session() as s:
                row = s.get(Evaluation, ev.id)
                assert row is not None
                row.status, row.error = "failed", exc.reason
                s.add(row)
                s.commit()
            self._reject(d, f"failed evaluation: {exc.reason}", exc.detail)
            return
        self._accept(d, ev, result)

    def _close_evaluation(self, ev_id: int | None, error: str) -> None:
        assert self.store is not None
        with self.store.session() as s:
            row = s.get(Evaluation, ev_id)
            if row is not None:
                row.status, row.error = "failed", error
                s.add(row)
                s.commit()

    def _accept(self, d: Design, ev: Evaluation, result: EvalResult) -> None:
        assert self.store is not None
        with self.store.session() as s:
            row = s.get(Evaluation, ev.id)
            assert row is not None
            row.status, row.score, row.score_se = "done", result.score, result.score_se
            row.run_scores_json, row.wall_s = json.dumps(result.run_scores), result.wall_s
            s.add(row)
            for e in result.episodes:
                s.add(
                    EpisodeRow(
                        evaluation_id=ev.id,
                        design_id=d.id,
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
                )
            design = s.get(Design, d.id)
            assert design is not None
            design.status, design.score, design.score_se = "accepted", result.score, result.score_se
            design.run_scores_json = json.dumps(result.run_scores)
            memory = json.dumps(result.memory, default=str)
            if len(memory) > 200_000:
                memory = json.dumps({"truncated": True, "size_chars": len(memory), "head": memory[:20_000]})
            design.memory_json = memory
            design.finished_at = utcnow()
            s.add(design)
            s.commit()
            s.refresh(design)
        self.emit(
            "evaluation.done",
            f"{d.id}: score {result.score:.3f} ± {result.score_se:.3f} "
            f"(runs {', '.join(f'{x:.2f}' for x in result.run_scores)}) in {result.wall_s:.1f}s",
            d.id,
            flush=True,
            score=result.score,
            score_se=result.score_se,
            run_scores=result.run_scores,
        )
        self.store.update_design(d.id, **self._spend(d.id))
        commit = self._commit(design)
        self.emit(
            "design.accepted",
            f"{d.id} accepted: {d.title} ({result.score:.3f})",
            d.id,
            flush=True,
            score=result.score,
            commit=commit,
        )
        self._update_best()

    def _commit(self, d: Design) -> str:
        assert self.store is not None and self.run_row is not None
        from alma_tui.engine.reconcile import commit_info

        parent = self.store.get_design(d.parent_id) if d.parent_id else None
        parent_commit = parent.commit if parent is not None else None
        if parent is not None and not parent_commit:
            parent_commit = self._commit(parent)
        commit = self.lineage.commit_design(commit_info(d, self.run_row), parent_commit)
        self.store.update_design(d.id, commit=commit)
        return commit

    def _update_best(self) -> None:
        assert self.store is not None
        accepted = [d for d in self.store.designs() if d.status == "accepted" and d.score is not None]
        if not accepted:
            return
        best = max(accepted, key=lambda d: (d.score or 0.0, -d.seq))
        self.progress.best_id, self.progress.best_score = best.id, best.score
        if best.commit:
            try:
                update = self.lineage.set_best(best.commit)
            except Exception as exc:  # a user's checkout in the way must not stop the search
                self.emit("error", f"could not move the best branch: {exc}")
                return
            how = "commit or stash them, then `git checkout best`" if update.dirty else "`git checkout best`"
            note = "" if update.worktree else f"{update.note}, best design is {best.id} ({how} to see it)"
            if note and note != getattr(self, "_best_note", ""):  # said once, not at every accept
                self.emit("lineage.best", note, best.id, flush=True)
            self._best_note = note
