"""Failure paths that must fail loudly: a store write that fails keeps its rows, and the
errors that stop a search reach the loop's handlers wherever they are raised."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, col, func, select

from alma_tui.store import db as store_db
from alma_tui.store.db import Store
from alma_tui.store.models import Event, LLMCall


class _FailingCommits:
    """Make the store's batch commits fail ``times`` times (``None``: always)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, times: int | None) -> None:
        self.left = times
        self.failed = 0
        outer = self

        class FlakySession(Session):
            def commit(self) -> None:
                if outer.left is None or outer.left > 0:
                    if outer.left is not None:
                        outer.left -= 1
                    outer.failed += 1
                    self.flush()  # rows get ids, as in a commit that fails at the end
                    raise OperationalError("COMMIT", {}, sqlite3.OperationalError("database is locked"))
                super().commit()

        monkeypatch.setattr(store_db, "Session", FlakySession)


def _count(store: Store, table: Any) -> int:
    with store.session() as s:
        return int(s.exec(select(func.count()).select_from(table)).one())


def _call(**kw: Any) -> LLMCall:
    return LLMCall(model="offline/agent", role="agent", prompt_tokens=10, completion_tokens=5, **kw)


# -- the store -------------------------------------------------------------------------------
def test_a_batch_that_fails_to_commit_is_kept_and_written_by_the_next_flush(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(tmp_path)
    other = Store(tmp_path)  # another writer (the CLI, the TUI) between the two flushes
    failing = _FailingCommits(monkeypatch, times=1)
    store.emit("one", "first")
    store.buffer(_call())
    with pytest.raises(OperationalError):
        store.flush_events()
    assert failing.failed == 1 and store.pending_rows() == 2  # kept, not dropped
    monkeypatch.setattr(store_db, "Session", Session)
    with other.session() as s:  # takes the ids the failed transaction had handed out
        s.add(Event(kind="cli", message="from elsewhere"))
        s.commit()
    store.emit("two", "second", flush=True)
    assert store.pending_rows() == 0
    with store.session() as s:
        kinds = [e.kind for e in s.exec(select(Event).order_by(col(Event.id))).all()]
    assert kinds == ["cli", "one", "two"]  # the retried batch keeps its order, ahead of later rows
    assert _count(store, LLMCall) == 1  # budget accounting after a resume sums these rows
    store.close()
    other.close()


def test_a_due_flush_that_fails_does_not_raise_into_the_caller(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    store = Store(tmp_path)
    _FailingCommits(monkeypatch, times=None)
    with caplog.at_level(logging.WARNING, logger="alma_tui.store.db"):
        for i in range(450):  # an episode's step hook: size-due flushes, all failing
            store.buffer(_call(design_id=f"d{i}"))
    assert store.pending_rows() == 450
    warnings = [r for r in caplog.records if "rows kept for the next flush" in r.getMessage()]
    assert len(warnings) == 1  # once per failing streak, not once per row
    monkeypatch.setattr(store_db, "Session", Session)
    store.flush_events()
    assert store.pending_rows() == 0 and _count(store, LLMCall) == 450
    store.close()


def test_close_gives_up_on_a_batch_with_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    store = Store(tmp_path)
    _FailingCommits(monkeypatch, times=None)
    store.emit("one")
    store.buffer(_call())
    store.emit("two")
    with caplog.at_level(logging.ERROR, logger="alma_tui.store.db"):
        store.close()  # does not raise: closing goes on
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    message = record.getMessage()
    assert "could not write 3 buffered row(s) (Event, LLMCall)" in message
    assert "database is locked" in message and str(store.path) in message
