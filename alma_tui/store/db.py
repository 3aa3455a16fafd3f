"""Opening the store and the few queries everyone needs.

The database lives at ``<repo>/.alma/alma.db`` in WAL mode so the TUI (another
process) reads while the engine writes. Writes from the engine's worker threads
go through one lock; events are buffered and flushed in batches because a
search emits thousands of step events per evaluation.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import func
from sqlmodel import Session, SQLModel, create_engine, select

from alma_tui.store.models import Command, Design, Event, Run, utcnow

STORE_DIR = ".alma"
DB_NAME = "alma.db"


class StoreError(Exception):
    """The store cannot be opened or written (one clear line for the user)."""


def db_path(repo: Path) -> Path:
    return Path(repo) / STORE_DIR / DB_NAME


class Store:
    def __init__(self, repo: Path, *, create: bool = True) -> None:
        self.repo = Path(repo)
        path = db_path(self.repo)
        if not create and not path.exists():
            raise StoreError(f"no alma-tui search found in {self.repo} (missing {path})")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create {path.parent}: {exc.strerror or exc}") from exc
        self.path = path
        self.engine = create_engine(
            f"sqlite:///{path}", connect_args={"check_same_thread": False, "timeout": 30}
        )
        sa_event.listen(self.engine, "connect", _sqlite_pragmas)
        self._create_tables(path)
        self._lock = threading.RLock()
        self._events: list[Any] = []
        self._events_flushed_at = time.monotonic()

    def _create_tables(self, path: Path) -> None:
        """Create missing tables; another process (engine, TUI, CLI) may be doing the same."""
        for attempt in range(5):
            try:
                SQLModel.metadata.create_all(self.engine)
                return
            except Exception as exc:  # sqlite3.OperationalError: readonly, locked, corrupt, race
                reason = str(getattr(exc, "orig", exc)).splitlines()[0]
                if "already exists" in reason and attempt < 4:
                    time.sleep(0.05 * (attempt + 1))
                    continue
                raise StoreError(f"cannot open the store {path}: {reason}") from exc

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
        self.flush_events()
        self.engine.dispose()

    # -- runs -------------------------------------------------------------------------------
    def get_run(self) -> Run | None:
        with self.session() as s:
            return s.exec(select(Run).order_by(Run.id)).first()

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
            return list(s.exec(select(Design).order_by(Design.seq)).all())

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

    def resolve_design(self, ref: str) -> Design | None:
        """A design by id ("d007"), bare number ("7") or unique title prefix."""
        ref = ref.strip()
        d = self.get_design(ref)
        if d is None and ref.isdigit():
            d = self.get_design(f"d{int(ref):03d}")
        return d

    # -- events -----------------------------------------------------------------------------
    def emit(
        self,
        kind: str,
        message: str = "",
        *,
        run_id: int | None = None,
        design_id: str | None = None,
        data: dict | None = None,
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

    def buffer(self, row: Any, *, flush: bool = False) -> None:
        """Queue a row for a batched insert (events, LLM calls): thousands per evaluation."""
        with self._lock:
            self._events.append(row)
            due = len(self._events) >= 200 or time.monotonic() - self._events_flushed_at > 0.25
        if flush or due:
            self.flush_events()

    def flush_events(self) -> None:
        with self._lock:
            batch, self._events = self._events, []
            self._events_flushed_at = time.monotonic()
            if not batch:
                return
            with Session(self.engine) as s:
                s.add_all(batch)
                s.commit()

    def events_after(self, after_id: int, limit: int = 5000) -> list[Event]:
        with Session(self.engine, expire_on_commit=False) as s:
            q = select(Event).where(Event.id > after_id).order_by(Event.id).limit(limit)
            return list(s.exec(q).all())

    # -- steering ---------------------------------------------------------------------------
    def command(self, kind: str, design_id: str | None = None, text: str = "", source: str = "cli") -> Command:
        """Record a steering command; pin/veto flags are set at once so every view agrees."""
        flags = {"pin": ("pinned", True), "unpin": ("pinned", False),
                 "veto": ("vetoed", True), "unveto": ("vetoed", False)}
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
        self.emit("command", f"{kind} {design_id or ''} {text}".strip(), run_id=run.id if run else None,
                  design_id=design_id, data={"source": source}, flush=True)
        return cmd

    def pending_commands(self) -> list[Command]:
        with self.session() as s:
            q = select(Command).where(Command.applied_at.is_(None)).order_by(Command.id)  # type: ignore[union-attr]
            return list(s.exec(q).all())

    def mark_applied(self, cmd_ids: list[int]) -> None:
        if not cmd_ids:
            return
        with self.session() as s:
            for cid in cmd_ids:
                c = s.get(Command, cid)
                if c is not None:
                    c.applied_at = utcnow()
                    s.add(c)
            s.commit()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=OFF")
    cur.close()
