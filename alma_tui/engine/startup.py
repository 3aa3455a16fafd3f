"""Opening a search: the domain, the sandbox, the repo, the lock, the run row, the models.

What is opened is closed again if a later step refuses to start, so a failed open
leaves neither the store open nor the lock held.
"""

from __future__ import annotations

import os
import threading
from contextlib import ExitStack
from pathlib import Path

from alma_tui.domains import DomainError, get_domain, prepare_domain
from alma_tui.domains.base import Domain
from alma_tui.engine.config import SearchConfig
from alma_tui.engine.context import Progress, Reporter, RunContext
from alma_tui.engine.errors import SearchError
from alma_tui.engine.executor import open_executor
from alma_tui.engine.loop import Engine
from alma_tui.engine.reconcile import ArchiveMismatch, reconcile
from alma_tui.engine.runlock import RunLock
from alma_tui.engine.steering import drop_stale_commands
from alma_tui.engine.wiring import build_llm
from alma_tui.lineage import Lineage
from alma_tui.llm.accounting import run_totals
from alma_tui.sandbox import SandboxLimits, SandboxUnavailable, describe, require
from alma_tui.sandbox.isolation import cleanup_stale_dirs
from alma_tui.store.db import Store
from alma_tui.store.models import Run, utcnow


def _domain(cfg: SearchConfig) -> Domain:
    try:
        domain: Domain = get_domain(cfg.domain)
    except DomainError as exc:
        raise SearchError(str(exc)) from exc
    missing = domain.requirements() if hasattr(domain, "requirements") else None
    if missing:
        raise SearchError(f"domain {cfg.domain!r} is not usable here: {missing}")
    return domain


def _start_run(store: Store, cfg: SearchConfig, repo: Path) -> Run:
    """Create the run row, or resume the stored one with this session's settings."""
    run = store.get_run()
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
        store.add(run)
    else:
        if run.domain != cfg.domain:
            raise SearchError(
                f"{repo} holds a search on domain {run.domain!r}, not {cfg.domain!r}; "
                "use another --repo for a new search"
            )
        run = store.update_run(
            _id(run),
            iterations_target=cfg.iterations,
            meta_model=cfg.meta_model,
            agent_model=cfg.agent_model,
            selection=cfg.selection,
            settings_json=cfg.to_json(),
        )
    return store.update_run(_id(run), status="running", status_detail="", pid=os.getpid(), heartbeat_at=utcnow())


def _id(run: Run) -> int:
    if run.id is None:
        raise SearchError("the run row was not saved")
    return run.id


def open_engine(cfg: SearchConfig, reporter: Reporter | None, cancel: threading.Event, progress: Progress) -> Engine:
    """Open (or create) the repo, take the engine lock, create or resume the run."""
    repo = Path(cfg.repo)
    domain = _domain(cfg)
    try:
        iso = require(cfg.allow_weak_sandbox)
    except SandboxUnavailable as exc:
        raise SearchError(str(exc)) from exc
    sandbox_line = describe(iso)
    limits = SandboxLimits(isolate=iso.strong)
    lineage = Lineage(repo)
    with ExitStack() as undo:  # closes what was opened if a later step refuses to start
        store = Store(repo)
        undo.callback(store.close)
        lock = RunLock.acquire(repo)
        undo.callback(lock.release)
        try:  # the store and git must agree before anything is added to either
            repairs = reconcile(store, lineage, store.get_run())
        except ArchiveMismatch as exc:
            raise SearchError(str(exc)) from exc
        run_row = _start_run(store, cfg, repo)
        ctx = RunContext(
            cfg,
            store=store,
            lineage=lineage,
            run_row=run_row,
            domain=domain,
            cancel=cancel,
            progress=progress,
            reporter=reporter,
        )
        drop_stale_commands(store)  # issued while no engine ran
        for line in repairs:
            ctx.emit("lineage.repair", line, flush=True)
        progress.iterations = cfg.iterations
        progress.iteration = run_row.iterations_done
        llm = build_llm(cfg, ctx.record_call, cancel)
        spent = run_totals(store)  # a budget covers the whole run, earlier sessions included
        llm.restore(spent["prompt_tokens"], spent["completion_tokens"], spent["cost_usd"], spent["calls"])
        ctx.emit("run.sandbox", sandbox_line, flush=True, strong=iso.strong, report=iso.report)
        try:  # a domain that generates or loads data does it now, each step an event
            prepare_domain(domain, lambda line: ctx.emit("domain.prepare", line, flush=True))
        except DomainError as exc:
            raise SearchError(str(exc)) from exc
        executor = open_executor(ctx, limits)  # --executor ray: joins Ray and probes its nodes
        undo.callback(executor.close)
        engine = Engine(ctx, lock, llm, limits, executor)
        for path in cleanup_stale_dirs():
            ctx.emit("run.cleanup", f"removed a sandbox folder left by a killed engine: {path}")
        undo.pop_all()
    return engine
