"""Opening the store and the few queries everyone needs.

The database lives at ``<repo>/.alma/alma.db`` in WAL mode so the TUI (another
process) reads while the engine writes. Writes from the engine's worker threads
go through one lock; events are buffered and flushed in batches because a
search emits thousands of step events per evaluation.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import func
from sqlmodel import Session, SQLModel, col, create_engine, select

from alma_tui.store.models import Command, CompareResult, Design, Evaluation, Event, LLMCall, Run, utcnow
from alma_tui.store.models import Episode as EpisodeRow
from alma_tui.store.peek import damaged_message, disk_full_message, readonly_uri, sqlite_problem

STORE_DIR = ".alma"
DB_NAME = "alma.db"

log = logging.getLogger(__name__)

# Rows written in batches: events (thousands per evaluation) and LLM calls (budget accounting
# after a resume sums them, so a lost batch would hand a resumed run budget it already spent).
BufferedRow = Event | LLMCall


class StoreError(Exception):
    """The store cannot be opened or written (one clear line for the user)."""


class StoreEmpty(StoreError):
    """The store file exists but holds no tables (a 0-byte or freshly created file)."""


def db_path(repo: Path) -> Path:
    return Path(repo) / STORE_DIR / DB_NAME


class Store:
    def __init__(self, repo: Path, *, create: bool = True, readonly: bool = False) -> None:
        """Open ``<repo>/.alma/alma.db``; ``create=False`` refuses a missing or empty store and
        ``readonly=True`` never writes (it works on a read-only mount or directory)."""
        self.repo = Path(repo)
        path = db_path(self.repo)
        self.path = path
        self.readonly = readonly
        if (not create or readonly) and not path.exists():
            raise StoreError(f"no alma-tui search found in {self.repo} (missing {path})")
        existed = path.exists() and path.stat().st_size > 0
        if path.exists() and not readonly:
            _check_writable(path)
        if path.exists() and not create and not readonly and not _peek_tables(path):
            # checked read-only first: opening for writes would turn a 0-byte file into a database
            raise StoreEmpty(f"the store {path} holds no alma-tui search (it has no tables)")
        if not readonly:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create {path.parent}: {exc.strerror or exc}") from exc
        if readonly:
            uri = readonly_uri(path)
            self.engine = create_engine(
                "sqlite://",
                creator=lambda: sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=30),
            )
            sa_event.listen(self.engine, "connect", _sqlite_ro_pragmas)
        else:
            self.engine = create_engine(f"sqlite:///{path}", connect_args={"check_same_thread": False, "timeout": 30})
            sa_event.listen(self.engine, "connect", _sqlite_pragmas)
        if existed:
            self._check_integrity()
        if (not create or readonly) and not self._has_tables():
            self.engine.dispose()
            raise StoreEmpty(f"the store {path} holds no alma-tui search (it has no tables)")
        if not readonly:
            self._create_tables(path)
        else:
            self._upgrade_for_reading(path)
        self._lock = threading.RLock()
        self._events: list[BufferedRow] = []
        self._events_flushed_at = time.monotonic()
        self._flush_failing = False  # the last flush failed: its rows wait in _events

    def _check_integrity(self) -> None:
        """Refuse a damaged database file at once, with one line, before any query trips on it."""
        try:
            with self.engine.connect() as conn:
                rows = conn.exec_driver_sql("PRAGMA quick_check(1)").fetchall()
        except Exception as exc:  # sqlite3.DatabaseError: not a database, malformed, ...
            self.engine.dispose()
            raise store_error(self.path, exc) from exc
        if rows and rows[0][0] != "ok":
            self.engine.dispose()
            detail = str(rows[0][0]).replace("*** in database main ***", "").strip().splitlines()[0]
            raise StoreError(damaged_message(self.path, f"database disk image is malformed: {detail}"))

    def _has_tables(self) -> bool:
        try:
            with self.engine.connect() as conn:
                names = {r[0] for r in conn.exec_driver_sql("SELECT name FROM sqlite_master").fetchall()}
        except Exception as exc:
            self.engine.dispose()
            raise store_error(self.path, exc) from exc
        return "run" in names and "design" in names

    def _create_tables(self, path: Path) -> None:
        """Create missing tables; another process (engine, TUI, CLI) may be doing the same."""
        for attempt in range(5):
            try:
                SQLModel.metadata.create_all(self.engine)
                self._upgrade_schema(self.engine, path)
                return
            except Exception as exc:  # sqlite3.OperationalError: readonly, locked, corrupt, race
                reason = str(getattr(exc, "orig", exc)).splitlines()[0]
                if "already exists" in reason and attempt < 4:
                    time.sleep(0.05 * (attempt + 1))
                    continue
                raise store_error(path, exc) from exc

    def _upgrade_schema(self, engine: Any, path: Path) -> None:
        """Add the columns a newer alma-tui defines to a store an older one wrote."""
        from alma_tui.store.schema import SchemaError, upgrade

        try:
            with engine.begin() as conn:
                added = upgrade(conn)
        except SchemaError as exc:
            raise StoreError(f"cannot upgrade the store {path}: {exc}") from exc
        if added:
            log.info("store %s upgraded: added %s", path, ", ".join(added))

    def _upgrade_for_reading(self, path: Path) -> None:
        """A read-only open of an older store: upgrade it when the file is writable (adding
        a column is atomic and never changes a row); otherwise say what to do."""
        from alma_tui.store.schema import missing_columns

        try:
            with self.engine.connect() as conn:
                missing = missing_columns(conn)
        except Exception as exc:
            self.engine.dispose()
            raise store_error(path, exc) from exc
        if not missing:
            return
        if not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)):
            self.engine.dispose()
            raise StoreError(
                f"the store {path} was written by an older alma-tui and is read-only here; "
                "copy the repo somewhere writable to upgrade it"
            )
        writer = create_engine(f"sqlite:///{path}", connect_args={"check_same_thread": False, "timeout": 30})
        sa_event.listen(writer, "connect", _sqlite_pragmas)
        try:
            self._upgrade_schema(writer, path)
        finally:
            writer.dispose()

    # -- sessions ---------------------------------------------------------------------------
    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._lock, Session(self.engine, expire_on_commit=False) as s:
            yield s

    def add(self, *rows: Any) -> None:
        with self.session() as s:
            for row in rows:
                s.add(row)
            s.commit()
            for row in rows:
                s.refresh(row)

    def close(self) -> None:
        """Flush what is buffered and release the database. A batch that still cannot be
        written is given up here, and only here, with an error naming what was lost."""
        try:
            self.flush_events()
        except Exception as exc:
            with self._lock:
                lost, self._events = self._events, []
            kinds = sorted({type(row).__name__ for row in lost})
            log.error(
                "the run store %s could not write %d buffered row(s) (%s) before closing: %s",
                self.path,
                len(lost),
                ", ".join(kinds),
                store_error(self.path, exc),
            )
        self.engine.dispose()

    # -- runs -------------------------------------------------------------------------------
    def get_run(self) -> Run | None:
        with self.session() as s:
            return s.exec(select(Run).order_by(col(Run.id))).first()

    def require_run(self) -> Run:
        run = self.get_run()
        if run is None:
            raise StoreError(f"the store {self.path} holds no run")
        return run

    def update_run(self, run_id: int, **fields: Any) -> Run:
        with self.session() as s:
            run = s.get(Run, run_id)
            assert run is not None
            for k, v in fields.items():
                setattr(run, k, v)
            s.add(run)
            s.commit()
            s.refresh(run)
            return run

    # -- designs ----------------------------------------------------------------------------
    def designs(self) -> list[Design]:
        with self.session() as s:
            return list(s.exec(select(Design).order_by(col(Design.seq))).all())

    def get_design(self, design_id: str) -> Design | None:
        with self.session() as s:
            return s.get(Design, design_id)

    def next_design_seq(self) -> int:
        with self.session() as s:
            value = s.exec(select(func.max(Design.seq))).one()
            return int(value or 0) + 1

    def update_design(self, design_id: str, **fields: Any) -> Design:
        with self.session() as s:
            d = s.get(Design, design_id)
            if d is None:
                raise StoreError(f"unknown design {design_id}")
            for k, v in fields.items():
                setattr(d, k, v)
            s.add(d)
            s.commit()
            s.refresh(d)
            return d

    def add_children(
        self,
        run_id: int,
        iteration: int,
        parent_ids: Sequence[str],
        second_parents: Sequence[str | None] = (),
    ) -> list[Design]:
        """One child per parent (in order), and each parent's visit count, in one transaction:
        a search killed after selection resumes with exactly these children. ``second_parents``
        (aligned with ``parent_ids``) makes a child a merge of two designs; both are visited."""
        children: list[Design] = []
        seconds = list(second_parents) + [None] * (len(parent_ids) - len(second_parents))
        with self.session() as s:
            seq = self.next_design_seq()
            for pid, second in zip(parent_ids, seconds, strict=True):
                parent = s.get(Design, pid)
                if parent is None:
                    raise StoreError(f"unknown design {pid}")
                parent.visits += 1
                s.add(parent)
                if second is not None:
                    other = s.get(Design, second)
                    if other is None:
                        raise StoreError(f"unknown design {second}")
                    other.visits += 1
                    s.add(other)
                child = Design(
                    id=f"d{seq:03d}",
                    run_id=run_id,
                    seq=seq,
                    parent_id=pid,
                    second_parent_id=second,
                    iteration=iteration,
                    origin="meta",
                    title=f"merge of {pid} and {second}" if second else f"child of {pid}",
                )
                s.add(child)
                children.append(child)
                seq += 1
            s.commit()
        return children

    def resolve_design(self, ref: str) -> Design | None:
        """A design by id ("d007"), bare number ("7") or unique title prefix."""
        ref = ref.strip()
        d = self.get_design(ref)
        if d is None and ref.isdigit():
            d = self.get_design(f"d{int(ref):03d}")
        return d

    # -- compare results (`alma-tui compare`) ------------------------------------------------
    def compare_result(self, key: str) -> CompareResult | None:
        with self.session() as s:
            return s.exec(select(CompareResult).where(CompareResult.key == key)).first()

    def save_compare_result(self, row: CompareResult) -> None:
        """Keep a finished compare row; one already stored under its key (a concurrent compare
        finished it first) is replaced, since both measured the same thing."""
        with self.session() as s:
            old = s.exec(select(CompareResult).where(CompareResult.key == row.key)).first()
            if old is not None:
                s.delete(old)
                s.flush()
            s.add(row)
            s.commit()
            s.refresh(row)

    # -- evaluations --------------------------------------------------------------------------
    def fail_evaluation(self, evaluation_id: int | None, error: str) -> None:
        """Mark an evaluation failed (a missing row is left alone)."""
        with self.session() as s:
            row = s.get(Evaluation, evaluation_id)
            if row is not None:
                row.status, row.error = "failed", error
                s.add(row)
                s.commit()

    def finish_evaluation(
        self, evaluation_id: int | None, score: float, score_se: float, run_scores: list[float], wall_s: float
    ) -> None:
        """Mark an evaluation done with its score (one kept without its episodes: a held-out one)."""
        with self.session() as s:
            row = s.get(Evaluation, evaluation_id)
            if row is not None:
                row.status, row.score, row.score_se, row.wall_s = "done", score, score_se, wall_s
                row.run_scores_json = json.dumps(run_scores)
                s.add(row)
                s.commit()

    def fail_running_evaluations(self, error: str) -> list[str]:
        """After a crash: every evaluation still marked running is failed with ``error``. Returns
        the design id of each evaluation that carries that error, one entry per evaluation."""
        with self.session() as s:
            for ev in s.exec(select(Evaluation).where(Evaluation.status == "running")).all():
                ev.status = "failed"
                ev.error = error
                s.add(ev)
            s.commit()
            return [ev.design_id for ev in s.exec(select(Evaluation).where(Evaluation.error == error)).all()]

    def last_episodes(self, design_id: str, phase: str) -> list[EpisodeRow]:
        """The episodes of one phase of the design's latest finished evaluation."""
        with self.session() as s:
            ev = s.exec(
                select(Evaluation)
                .where(Evaluation.design_id == design_id, Evaluation.status == "done", Evaluation.kind != "test")
                .order_by(col(Evaluation.id).desc())
            ).first()
            if ev is None:
                return []
            q = select(EpisodeRow).where(EpisodeRow.evaluation_id == ev.id, EpisodeRow.phase == phase)
            return list(s.exec(q).all())

    def task_table(self, design_ids: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
        """Design id -> search task -> mean deployment reward over the runs of the design's
        last finished search evaluation: what Pareto selection and merges compare."""
        sql = (
            "SELECT ev.design_id, ep.task_id, AVG(ep.score) FROM episode ep "
            "JOIN evaluation ev ON ep.evaluation_id = ev.id "
            "WHERE ep.phase = 'deployment' AND ev.kind = 'search' AND ev.status = 'done' "
            "AND ev.id = (SELECT MAX(e2.id) FROM evaluation e2 WHERE e2.design_id = ev.design_id "
            "AND e2.kind = 'search' AND e2.status = 'done') "
            "GROUP BY ev.design_id, ep.task_id"
        )
        wanted = set(design_ids) if design_ids is not None else None
        out: dict[str, dict[str, float]] = {}
        with self.session() as s:
            for did, task, mean in s.connection().exec_driver_sql(sql).fetchall():
                if wanted is None or did in wanted:
                    out.setdefault(str(did), {})[str(task)] = float(mean or 0.0)
        return out

    def accept_design(
        self,
        design_id: str,
        evaluation_id: int | None,
        *,
        score: float,
        score_se: float,
        run_scores_json: str,
        wall_s: float,
        memory_json: str,
        episodes: Sequence[EpisodeRow],
    ) -> Design:
        """A finished evaluation, its episodes and the accepted design, in one transaction."""
        with self.session() as s:
            row = s.get(Evaluation, evaluation_id)
            design = s.get(Design, design_id)
            if row is None or design is None:
                raise StoreError(f"unknown design {design_id} or evaluation {evaluation_id}")
            row.status, row.score, row.score_se = "done", score, score_se
            row.run_scores_json, row.wall_s = run_scores_json, wall_s
            s.add(row)
            s.add_all(episodes)
            design.status, design.score, design.score_se = "accepted", score, score_se
            design.run_scores_json = run_scores_json
            design.memory_json = memory_json
            design.finished_at = utcnow()
            s.add(design)
            s.commit()
            s.refresh(design)
            return design

    # -- events -----------------------------------------------------------------------------
    def emit(
        self,
        kind: str,
        message: str = "",
        *,
        run_id: int | None = None,
        design_id: str | None = None,
        data: dict[str, Any] | None = None,
        flush: bool = False,
    ) -> None:
        ev = Event(
            kind=kind,
            message=message,
            run_id=run_id,
            design_id=design_id,
            data_json=json.dumps(data or {}, default=str),
        )
        self.buffer(ev, flush=flush)

    def buffer(self, row: BufferedRow, *, flush: bool = False) -> None:
        """Queue a row for a batched insert (events, LLM calls): thousands per evaluation.

        ``flush=True`` writes at once and raises if the write fails. A flush that is merely
        due (size or age) does not raise into the caller (often an episode's step hook): the
        rows stay buffered for the next flush, and the first failure of a streak is logged."""
        with self._lock:
            self._events.append(row)
            idle = time.monotonic() - self._events_flushed_at
            due = (len(self._events) >= 200 and not self._flush_failing) or idle > 0.25
        if flush:
            self.flush_events()
        elif due:
            failing = self._flush_failing
            try:
                self.flush_events()
            except Exception as exc:
                # a full disk is the search's to report, in one line naming the file (a worker
                # thread's due flush may meet it first); anything else is worth a warning now
                if not failing and sqlite_problem(str(exc))[0] != "full":
                    log.warning("the run store could not write; rows kept for the next flush: %s", exc)

    def pending_rows(self) -> int:
        """Rows buffered and not yet written."""
        with self._lock:
            return len(self._events)

    def flush_events(self) -> None:
        """Write the buffered rows in one transaction. If it fails they stay buffered (ahead
        of rows queued since) for the next flush, and the error is raised: never dropped."""
        with self._lock:
            batch, self._events = self._events, []
            self._events_flushed_at = time.monotonic()
            if not batch:
                return
            try:
                with Session(self.engine) as s:
                    s.add_all(batch)
                    s.commit()
            except BaseException:
                # fresh copies: the failed transaction may have given the rows ids that another
                # writer (the CLI, the TUI) can take before the retry
                self._events = [_unsaved(row) for row in batch] + self._events
                self._flush_failing = True
                raise
            self._flush_failing = False

    def events_after(self, after_id: int, limit: int = 5000) -> list[Event]:
        with Session(self.engine, expire_on_commit=False) as s:
            q = select(Event).where(col(Event.id) > after_id).order_by(col(Event.id)).limit(limit)
            return list(s.exec(q).all())

    # -- steering ---------------------------------------------------------------------------
    def command(self, kind: str, design_id: str | None = None, text: str = "", source: str = "cli") -> Command:
        """Record a steering command; pin/veto flags are set at once so every view agrees."""
        flags = {
            "pin": ("pinned", True),
            "unpin": ("pinned", False),
            "veto": ("vetoed", True),
            "unveto": ("vetoed", False),
        }
        cmd = Command(kind=kind, design_id=design_id, text=text, source=source)
        with self.session() as s:
            if kind in flags:
                d = s.get(Design, design_id)
                if d is None:
                    raise StoreError(f"unknown design {design_id!r}")
                attr, value = flags[kind]
                setattr(d, attr, value)
                s.add(d)
            s.add(cmd)
            s.commit()
            s.refresh(cmd)
        run = self.get_run()
        self.emit(
            "command",
            f"{kind} {design_id or ''} {text}".strip(),
            run_id=run.id if run else None,
            design_id=design_id,
            data={"source": source},
            flush=True,
        )
        return cmd

    def pending_commands(self) -> list[Command]:
        with self.session() as s:
            q = select(Command).where(col(Command.applied_at).is_(None)).order_by(col(Command.id))
            return list(s.exec(q).all())

    def mark_applied(self, cmd_ids: Sequence[int | None]) -> None:
        if not cmd_ids:
            return
        with self.session() as s:
            for cid in cmd_ids:
                c = s.get(Command, cid) if cid is not None else None
                if c is not None:
                    c.applied_at = utcnow()
                    s.add(c)
            s.commit()


def _unsaved(row: BufferedRow) -> BufferedRow:
    """The same row without a database id, ready to be inserted again."""
    return type(row).model_validate(row.model_dump(exclude={"id"}))


def _check_writable(path: Path) -> None:
    for p in (path.parent, path):
        if not os.access(p, os.W_OK):
            try:
                ro = bool(os.statvfs(p).f_flag & os.ST_RDONLY)
            except OSError:
                ro = False
            why = "read-only file system" if ro else "permission denied"
            raise StoreError(f"cannot write to the run store {path}: it is read-only ({why})")


def _peek_tables(path: Path) -> bool:
    """Whether the database holds the store's tables, looked at without writing a byte."""
    try:
        con = sqlite3.connect(readonly_uri(path), uri=True, timeout=30)
        try:
            names = {r[0] for r in con.execute("SELECT name FROM sqlite_master")}
        finally:
            con.close()
    except sqlite3.Error as exc:
        raise store_error(path, exc) from exc
    return "run" in names and "design" in names


def store_error(path: Path, exc: BaseException) -> StoreError:
    """One line for a failed store operation: damaged, disk full, read-only or other."""
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    kind, reason = sqlite_problem(reason)
    if kind == "damaged":
        return StoreError(damaged_message(path, reason))
    if kind == "full":
        return StoreError(disk_full_message(path))
    if kind == "readonly":
        return StoreError(f"cannot write to the run store {path}: it is read-only ({reason})")
    return StoreError(f"cannot open the store {path}: {reason}")


def is_store_failure(exc: BaseException) -> bool:
    """An exception raised by SQLite (directly or wrapped by SQLAlchemy)."""
    return isinstance(exc, sqlite3.Error) or isinstance(getattr(exc, "orig", None), sqlite3.Error)


def _sqlite_ro_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=OFF")
    cur.close()
