"""Read side of the TUI: plain functions and dataclasses over the store's database.

Nothing here imports Textual, sqlalchemy or sqlmodel: the TUI reads the store with the
standard library's ``sqlite3`` (imports in ~5 ms, where sqlmodel + sqlalchemy take
~800 ms, and on the event loop's process that time is GIL time taken from the UI).
The queries mirror :mod:`alma_tui.store.models` (SQLModel's default table names, plain
columns); ``tests/test_tui.py`` checks them against the models. Writes (steering
commands) still go through :class:`alma_tui.store.Store`, opened in a worker once the
first data is on screen. The poller runs every ~250 ms against a database another
process is writing (WAL mode: readers never block the writer).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alma_tui.sanitize import sanitize
from alma_tui.tui.rows import (
    DesignDetail,
    DesignRow,
    EpisodeRow,
    EventRow,
    RunInfo,
    Totals,
    Update,
)

# Statuses in which an engine is expected to write heartbeats.
LIVE_STATUSES = frozenset({"running", "paused", "stopping"})
INITIAL_EVENTS = 5000  # events loaded when attaching (the log's history)
BATCH_EVENTS = 5000  # most events read in one poll

# alma_tui.store.db.db_path without importing it (that module imports sqlmodel)
STORE_DIR = ".alma"
DB_NAME = "alma.db"
# tables the TUI reads; a store without them is "not there yet" (the engine creates them)
TABLES = ("run", "design", "evaluation", "episode", "event", "llmcall", "command")


def db_path(repo: Path) -> Path:
    return Path(repo) / STORE_DIR / DB_NAME


class ReaderError(Exception):
    """The store cannot be read (yet): missing, no tables, not a database."""


def _dt(value: Any) -> datetime | None:
    """A DATETIME column as the store's models return it: stored as UTC text, read aware."""
    if value is None:
        return None
    try:
        dt = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


class Reader:
    """One read-only connection to ``<repo>/.alma/alma.db`` (stdlib sqlite3).

    Each thread that reads opens its own Reader (they are cheap: ~0.1 ms).
    """

    def __init__(self, repo: Path) -> None:
        path = db_path(repo)
        if not path.exists():
            raise ReaderError(f"no store yet at {path}")
        try:
            # mode=rw: never create the file; the TUI itself does not write through it
            self.conn = sqlite3.connect(
                f"{path.resolve().as_uri()}?mode=rw", uri=True, timeout=30, check_same_thread=False
            )
            self.conn.execute("PRAGMA busy_timeout=30000")
            have = {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master")}
        except sqlite3.Error as exc:
            raise ReaderError(f"cannot open the store {path}: {exc}") from exc
        missing = [t for t in TABLES if t not in have]
        if missing:
            self.conn.close()
            raise ReaderError(f"the store {path} is not initialised yet (no {missing[0]} table)")
        self.path = path

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql, params).fetchall()

    def one(self, sql: str, params: tuple[Any, ...] = ()) -> tuple[Any, ...] | None:
        return self.conn.execute(sql, params).fetchone()

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- queries --------------------------------------------------------------------------------

_DESIGN_COLS = (
    "id, parent_id, seq, iteration, origin, title, status, score, score_se, visits, pinned, "
    'vetoed, "commit", repairs, error, tokens, cost_usd'
)
_EVENT_COLS = "id, ts, design_id, kind, message, data_json"
_RUN_COLS = (
    "id, status, status_detail, domain, meta_model, agent_model, selection, "
    "iterations_target, iterations_done, no_memory_score, heartbeat_at, pid, settings_json"
)


def _budget(settings_json: str | None) -> tuple[float | None, int | None]:
    """The run's budget from its stored settings (a resume with --budget-usd rewrites them)."""
    try:
        data = json.loads(settings_json or "{}")
    except ValueError:
        return None, None
    if not isinstance(data, dict):
        return None, None
    usd, tokens = data.get("budget_usd"), data.get("budget_tokens")
    return (
        float(usd) if isinstance(usd, int | float) and usd > 0 else None,
        int(tokens) if isinstance(tokens, int) and tokens > 0 else None,
    )


def read_run(db: Reader) -> RunInfo | None:
    r = db.one(f"SELECT {_RUN_COLS} FROM run ORDER BY id LIMIT 1")
    if r is None:
        return None
    sbx = db.one("SELECT data_json FROM event WHERE kind = 'run.sandbox' ORDER BY id DESC LIMIT 1")
    strong = None
    if sbx is not None:
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            strong = bool(json.loads(sbx[0] or "{}").get("strong"))
    budget_usd, budget_tokens = _budget(r[12])
    return RunInfo(
        sandbox_strong=strong,
        budget_usd=budget_usd,
        budget_tokens=budget_tokens,
        id=r[0] or 0,
        status=r[1],
        status_detail=r[2] or "",
        domain=r[3],
        meta_model=r[4],
        agent_model=r[5],
        selection=r[6],
        iterations_target=r[7],
        iterations_done=r[8],
        no_memory_score=r[9],
        heartbeat_at=_dt(r[10]),
        pid=r[11],
    )


def _test_scores(db: Reader, design_id: str | None = None) -> dict[str, tuple[float | None, float | None]]:
    """Held-out scores by design id; empty for a store written before they existed."""
    sql = "SELECT id, test_score, test_score_se FROM design WHERE test_score IS NOT NULL"
    try:
        rows = db.rows(sql + " AND id = ?", (design_id,)) if design_id else db.rows(sql)
    except sqlite3.OperationalError:  # no such column: an older store, not yet upgraded
        return {}
    return {r[0]: (r[1], r[2]) for r in rows}


def _second_parents(db: Reader, design_id: str | None = None) -> dict[str, str]:
    """Merge designs' second parents by design id; empty for a store written before merges."""
    sql = "SELECT id, second_parent_id FROM design WHERE second_parent_id IS NOT NULL"
    try:
        rows = db.rows(sql + " AND id = ?", (design_id,)) if design_id else db.rows(sql)
    except sqlite3.OperationalError:  # no such column: an older store, not yet upgraded
        return {}
    return {r[0]: r[1] for r in rows}


def _chosen_because(db: Reader, iteration: int) -> dict[str, dict[str, Any]]:
    """The reasons the selection of ``iteration`` gave for each parent (its last selection event)."""
    rows = db.rows("SELECT data_json FROM event WHERE kind = 'selection' ORDER BY id DESC LIMIT 200")
    for (raw,) in rows:
        data = _loads(raw, {})
        if isinstance(data, dict) and data.get("iteration") == iteration:
            why = data.get("why")
            return {str(k): v for k, v in why.items() if isinstance(v, dict)} if isinstance(why, dict) else {}
    return {}


def read_designs(db: Reader) -> list[DesignRow]:
    rows = db.rows(f"SELECT {_DESIGN_COLS} FROM design ORDER BY seq")
    tests = _test_scores(db)
    seconds = _second_parents(db)
    return [
        DesignRow(
            id=r[0],
            parent_id=r[1],
            seq=r[2] or 0,
            iteration=r[3] or 0,
            origin=r[4] or "",
            title=sanitize(r[5] or "", newlines=False),
            status=r[6] or "",
            score=r[7],
            score_se=r[8],
            visits=r[9] or 0,
            pinned=bool(r[10]),
            vetoed=bool(r[11]),
            commit=r[12],
            repairs=r[13] or 0,
            error=sanitize(r[14]) if r[14] else r[14],
            tokens=r[15] or 0,
            cost_usd=float(r[16] or 0.0),
            test_score=tests.get(r[0], (None, None))[0],
            second_parent_id=seconds.get(r[0]),
        )
        for r in rows
    ]


def _event_rows(rows: Any) -> list[EventRow]:
    # messages carry hints, LLM-written titles and design log lines: never raw escapes on screen
    return [EventRow(r[0], _dt(r[1]), r[2], r[3] or "", sanitize(r[4] or ""), r[5] or "{}") for r in rows]


def read_events_after(db: Reader, after_id: int, limit: int = BATCH_EVENTS) -> list[EventRow]:
    q = f"SELECT {_EVENT_COLS} FROM event WHERE id > ? ORDER BY id LIMIT ?"
    return _event_rows(db.rows(q, (after_id, limit)))


def last_event_id(db: Reader) -> int:
    r = db.one("SELECT max(id) FROM event")
    return int((r[0] if r else 0) or 0)


def read_design_events(db: Reader, design_id: str, limit: int = 10_000) -> list[EventRow]:
    """The newest ``limit`` events of one design, oldest first."""
    q = f"SELECT {_EVENT_COLS} FROM event WHERE design_id = ? ORDER BY id DESC LIMIT ?"
    rows = _event_rows(db.rows(q, (design_id, limit)))
    rows.reverse()
    return rows


def read_totals(db: Reader) -> Totals:
    rows = db.rows(
        "SELECT role, count(*), sum(prompt_tokens + completion_tokens), sum(cost_usd), "
        "sum(CASE WHEN cost_known THEN 0 ELSE 1 END) FROM llmcall GROUP BY role"
    )
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

    def __init__(self, db: Reader, *, history: int = INITIAL_EVENTS) -> None:
        self.db = db
        self.history = history
        self.last_event_id: int | None = None
        self._run: RunInfo | None = None
        self._designs: list[DesignRow] | None = None
        self._totals: Totals | None = None
        self._polls = 0

    def poll(self, *, force_totals: bool = False) -> Update:
        db = self.db
        up = Update(first=self._polls == 0)
        if self.last_event_id is None:
            self.last_event_id = max(0, last_event_id(db) - self.history)
        run = read_run(db)
        if run != self._run:
            up.run, up.run_changed = run, True
            self._run = run
        else:
            up.run = run
        designs = read_designs(db)
        if designs != self._designs:
            up.designs = designs
            self._designs = designs
        events = read_events_after(db, self.last_event_id)
        if events:
            self.last_event_id = events[-1].id
            up.events = events
        # The totals are an aggregate over every call: every 4th poll is plenty.
        if force_totals or self._polls % 4 == 0 or any(e.kind == "evaluation.done" for e in events):
            totals = read_totals(db)
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
        return _clean(json.loads(text))
    except ValueError:
        return default


def _clean(value: Any) -> Any:
    """Decoded JSON with every string sanitized (memories and analyses are model/design text)."""
    if isinstance(value, str):
        return sanitize(value)
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {sanitize(str(k)): _clean(v) for k, v in value.items()}
    return value


def _opt(text: str | None) -> str | None:
    return sanitize(text) if text else text


_DETAIL_COLS = (
    "id, title, status, origin, parent_id, iteration, code, score, score_se, run_scores_json, "
    'error, error_detail, repairs, "commit", analysis_json, analysis_raw, memory_json, tokens, '
    "cost_usd"
)


def read_detail(db: Reader, design_id: str) -> DesignDetail | None:
    # one read transaction: a consistent snapshot while the engine writes
    with db.conn:
        db.conn.execute("BEGIN")
        d = db.one(f"SELECT {_DETAIL_COLS} FROM design WHERE id = ?", (design_id,))
        if d is None:
            return None
        (
            _id, title, status, origin, parent_id, iteration, code, score, score_se,
            run_scores_json, error, error_detail, repairs, commit, analysis_json,
            analysis_raw, memory_json, tokens, cost_usd,
        )  = d  # fmt: skip
        parent = db.one("SELECT code, title, score FROM design WHERE id = ?", (parent_id,)) if parent_id else None
        second_id = _second_parents(db, design_id).get(design_id)
        second = db.one("SELECT code, title, score FROM design WHERE id = ?", (second_id,)) if second_id else None
        chosen = _chosen_because(db, iteration) if parent_id else {}
        ev = db.one(
            "SELECT id, status, score, score_se, run_scores_json, error, wall_s FROM evaluation "
            "WHERE design_id = ? AND kind != 'test' ORDER BY id DESC LIMIT 1",
            (design_id,),
        )
        episodes: list[EpisodeRow] = []
        if ev is not None:
            eps = db.rows(
                "SELECT phase, run, task_id, goal, success, score, steps, length(retrieved), "
                "error FROM episode WHERE evaluation_id = ? ORDER BY id",
                (ev[0],),
            )
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
                    _opt(err),
                )
                for p, r, t, g, ok, sc, st, n, err in eps
            ]
        run = db.one("SELECT no_memory_score FROM run ORDER BY id LIMIT 1")
        test_score, test_se = _test_scores(db, design_id).get(design_id, (None, None))
    memory = _loads(memory_json, None)
    run_scores = _loads(run_scores_json, []) or (_loads(ev[4], []) if ev else [])
    return DesignDetail(
        id=_id,
        title=sanitize(title or "", newlines=False),
        status=status,
        origin=origin,
        parent_id=parent_id,
        iteration=iteration,
        code=sanitize(code or ""),
        parent_code=sanitize(parent[0] or "") if parent else None,
        parent_title=sanitize(parent[1] or "", newlines=False) if parent else None,
        parent_score=parent[2] if parent else None,
        score=score if score is not None else (ev[2] if ev else None),
        score_se=score_se if score_se is not None else (ev[3] if ev else None),
        run_scores=[float(x) for x in run_scores if isinstance(x, int | float)],
        error=_opt(error),
        error_detail=_opt(error_detail),
        repairs=repairs,
        commit=commit,
        analysis=_loads(analysis_json, None),
        analysis_raw=_opt(analysis_raw),
        memory=memory,
        memory_raw=memory_json,
        tokens=tokens,
        cost_usd=cost_usd,
        evaluation_status=ev[1] if ev else None,
        evaluation_wall_s=ev[6] if ev else None,
        evaluation_error=_opt(ev[5]) if ev else None,
        episodes=episodes,
        no_memory_score=run[0] if run else None,
        test_score=test_score,
        test_score_se=test_se,
        second_parent_id=second_id,
        second_parent_code=sanitize(second[0] or "") if second else None,
        second_parent_title=sanitize(second[1] or "", newlines=False) if second else None,
        second_parent_score=second[2] if second else None,
        chosen_because=_clean({k: v for k, v in chosen.items() if k in (parent_id, second_id)}),
    )


def pending_commands(db: Reader) -> list[tuple[str, str | None, str]]:
    rows = db.rows("SELECT kind, design_id, text FROM command WHERE applied_at IS NULL ORDER BY id")
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
        log = r.git.log("--graph", "--decorate", "--oneline", "--color=always", "-n", "60", rev, env=env)
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
