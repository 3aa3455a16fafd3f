"""Read side of the TUI: plain functions and dataclasses over a :class:`Store`.

Nothing here imports Textual, and nothing here is imported before the first
frame: the poll worker imports this module (and with it sqlmodel) in its
thread. Every query selects plain columns (tuples, not ORM objects) because
the poller runs every ~250 ms against a database another process is writing.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import case, func
from sqlmodel import Session, select

from alma_tui.store.models import Command, Design, Episode, Evaluation, Event, LLMCall, Run
from alma_tui.tui.rows import (
    DesignDetail,
    DesignRow,
    EpisodeRow,
    EventRow,
    RunInfo,
    Totals,
    Update,
)

if TYPE_CHECKING:
    from alma_tui.store import Store

# Statuses in which an engine is expected to write heartbeats.
LIVE_STATUSES = frozenset({"running", "paused", "stopping"})
INITIAL_EVENTS = 5000  # events loaded when attaching (the log's history)
BATCH_EVENTS = 5000  # most events read in one poll


# -- queries --------------------------------------------------------------------------------

_DESIGN_COLS = (
    Design.id,
    Design.parent_id,
    Design.seq,
    Design.iteration,
    Design.origin,
    Design.title,
    Design.status,
    Design.score,
    Design.score_se,
    Design.visits,
    Design.pinned,
    Design.vetoed,
    Design.commit,
    Design.repairs,
    Design.error,
    Design.tokens,
    Design.cost_usd,
)
_EVENT_COLS = (Event.id, Event.ts, Event.design_id, Event.kind, Event.message, Event.data_json)


def _session(store: Store) -> Session:
    return Session(store.engine, expire_on_commit=False)


def read_run(store: Store) -> RunInfo | None:
    with _session(store) as s:
        r = s.exec(select(Run).order_by(Run.id)).first()
        if r is None:
            return None
        return RunInfo(
            id=r.id or 0,
            status=r.status,
            status_detail=r.status_detail or "",
            domain=r.domain,
            meta_model=r.meta_model,
            agent_model=r.agent_model,
            selection=r.selection,
            iterations_target=r.iterations_target,
            iterations_done=r.iterations_done,
            no_memory_score=r.no_memory_score,
            heartbeat_at=r.heartbeat_at,
            pid=r.pid,
        )


def read_designs(store: Store) -> list[DesignRow]:
    with _session(store) as s:
        rows = s.exec(select(*_DESIGN_COLS).order_by(Design.seq)).all()
    return [
        DesignRow(
            id=r[0],
            parent_id=r[1],
            seq=r[2] or 0,
            iteration=r[3] or 0,
            origin=r[4] or "",
            title=r[5] or "",
            status=r[6] or "",
            score=r[7],
            score_se=r[8],
            visits=r[9] or 0,
            pinned=bool(r[10]),
            vetoed=bool(r[11]),
            commit=r[12],
            repairs=r[13] or 0,
            error=r[14],
            tokens=r[15] or 0,
            cost_usd=float(r[16] or 0.0),
        )
        for r in rows
    ]


def _event_rows(rows: Any) -> list[EventRow]:
    return [EventRow(r[0], r[1], r[2], r[3] or "", r[4] or "", r[5] or "{}") for r in rows]


def read_events_after(store: Store, after_id: int, limit: int = BATCH_EVENTS) -> list[EventRow]:
    with _session(store) as s:
        q = select(*_EVENT_COLS).where(Event.id > after_id).order_by(Event.id).limit(limit)
        return _event_rows(s.exec(q).all())


def last_event_id(store: Store) -> int:
    with _session(store) as s:
        return int(s.exec(select(func.max(Event.id))).one() or 0)


def read_design_events(store: Store, design_id: str, limit: int = 10_000) -> list[EventRow]:
    """The newest ``limit`` events of one design, oldest first."""
    with _session(store) as s:
        q = (
            select(*_EVENT_COLS)
            .where(Event.design_id == design_id)
            .order_by(Event.id.desc())  # type: ignore[union-attr]
            .limit(limit)
        )
        rows = _event_rows(s.exec(q).all())
    rows.reverse()
    return rows


def read_totals(store: Store) -> Totals:
    with _session(store) as s:
        rows = s.exec(
            select(
                LLMCall.role,
                func.count(),
                func.sum(LLMCall.prompt_tokens + LLMCall.completion_tokens),
                func.sum(LLMCall.cost_usd),
                func.sum(case((LLMCall.cost_known, 0), else_=1)),
            ).group_by(LLMCall.role)
        ).all()
    by_role = tuple(sorted((r, int(t or 0), float(c or 0.0)) for r, _n, t, c, _u in rows))
    return Totals(
        tokens=sum(int(t or 0) for _r, _n, t, _c, _u in rows),
        cost_usd=sum(float(c or 0.0) for _r, _n, _t, c, _u in rows),
        calls=sum(int(n or 0) for _r, n, _t, _c, _u in rows),
        unknown_cost_calls=sum(int(u or 0) for *_x, u in rows),
        by_role=by_role,
    )


# -- the poller -----------------------------------------------------------------------------


class Poller:
    """Diffs the store against what the UI has seen; one instance per app."""

    def __init__(self, store: Store, *, history: int = INITIAL_EVENTS) -> None:
        self.store = store
        self.history = history
        self.last_event_id: int | None = None
        self._run: RunInfo | None = None
        self._designs: list[DesignRow] | None = None
        self._totals: Totals | None = None
        self._polls = 0

    def poll(self, *, force_totals: bool = False) -> Update:
        store = self.store
        up = Update(first=self._polls == 0)
        if self.last_event_id is None:
            self.last_event_id = max(0, last_event_id(store) - self.history)
        run = read_run(store)
        if run != self._run:
            up.run, up.run_changed = run, True
            self._run = run
        else:
            up.run = run
        designs = read_designs(store)
        if designs != self._designs:
            up.designs = designs
            self._designs = designs
        events = read_events_after(store, self.last_event_id)
        if events:
            self.last_event_id = events[-1].id
            up.events = events
        # The totals are an aggregate over every call: every 4th poll is plenty.
        if force_totals or self._polls % 4 == 0 or any(e.kind == "evaluation.done" for e in events):
            totals = read_totals(store)
            if totals != self._totals:
                up.totals = totals
                self._totals = totals
        self._polls += 1
        return up


# -- detail of one design -------------------------------------------------------------------


def _loads(text: str | None, default: Any = None) -> Any:
    if not text:
        return default
    try:
        return json.loads(text)
    except ValueError:
        return default


def read_detail(store: Store, design_id: str) -> DesignDetail | None:
    with _session(store) as s:
        d = s.get(Design, design_id)
        if d is None:
            return None
        parent = s.get(Design, d.parent_id) if d.parent_id else None
        ev = s.exec(
            select(Evaluation)
            .where(Evaluation.design_id == design_id)
            .order_by(Evaluation.id.desc())  # type: ignore[union-attr]
        ).first()
        episodes: list[EpisodeRow] = []
        if ev is not None:
            eps = s.exec(
                select(
                    Episode.phase,
                    Episode.run,
                    Episode.task_id,
                    Episode.goal,
                    Episode.success,
                    Episode.score,
                    Episode.steps,
                    func.length(Episode.retrieved),
                    Episode.error,
                )
                .where(Episode.evaluation_id == ev.id)
                .order_by(Episode.id)
            ).all()
            episodes = [
                EpisodeRow(
                    p,
                    r or 0,
                    t or "",
                    g or "",
                    bool(ok),
                    float(sc or 0.0),
                    st or 0,
                    int(n or 0),
                    err,
                )
                for p, r, t, g, ok, sc, st, n, err in eps
            ]
        run = s.exec(select(Run.no_memory_score).order_by(Run.id)).first()
    memory = _loads(d.memory_json, None)
    run_scores = _loads(d.run_scores_json, []) or (_loads(ev.run_scores_json, []) if ev else [])
    return DesignDetail(
        id=d.id,
        title=d.title,
        status=d.status,
        origin=d.origin,
        parent_id=d.parent_id,
        iteration=d.iteration,
        code=d.code or "",
        parent_code=parent.code if parent else None,
        parent_title=parent.title if parent else None,
        parent_score=parent.score if parent else None,
        score=d.score if d.score is not None else (ev.score if ev else None),
        score_se=d.score_se if d.score_se is not None else (ev.score_se if ev else None),
        run_scores=[float(x) for x in run_scores if isinstance(x, int | float)],
        error=d.error,
        error_detail=d.error_detail,
        repairs=d.repairs,
        commit=d.commit,
        analysis=_loads(d.analysis_json, None),
        analysis_raw=d.analysis_raw,
        memory=memory,
        memory_raw=d.memory_json,
        tokens=d.tokens,
        cost_usd=d.cost_usd,
        evaluation_status=ev.status if ev else None,
        evaluation_wall_s=ev.wall_s if ev else None,
        evaluation_error=ev.error if ev else None,
        episodes=episodes,
        no_memory_score=run,
    )


def pending_commands(store: Store) -> list[tuple[str, str | None, str]]:
    with _session(store) as s:
        rows = s.exec(
            select(Command.kind, Command.design_id, Command.text)
            .where(Command.applied_at.is_(None))  # type: ignore[union-attr]
            .order_by(Command.id)
        ).all()
    return [(k, d, t) for k, d, t in rows]


# -- git (lazy GitPython) -------------------------------------------------------------------


def git_history(repo: Path, design_id: str, commit: str | None) -> tuple[str, str]:
    """(graph log up to the design, ``git show --stat`` of its commit) with ANSI colours."""
    try:
        import git  # GitPython, imported only when the user asks
    except ImportError:  # pragma: no cover - a project dependency
        return "", "GitPython is not installed"
    try:
        r = git.Repo(repo)
    except Exception as exc:
        return "", f"{repo} is not a git repository: {exc}"
    rev = commit or f"design/{design_id}"
    try:
        r.git.rev_parse("--verify", rev)
    except Exception:
        return "", f"{design_id} has no commit yet (only accepted designs are committed)."
    env = {"GIT_PAGER": "cat", "TERM": os.environ.get("TERM", "xterm-256color")}
    try:
        log = r.git.log(
            "--graph", "--decorate", "--oneline", "--color=always", "-n", "60", rev, env=env
        )
        show = r.git.show("--stat", "--color=always", "--format=fuller", rev, env=env)
    except Exception as exc:
        return "", f"git failed: {exc}"
    return log, show


# -- helpers shared with tests --------------------------------------------------------------


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, step: float = 0.05) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return predicate()
