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
from tests.conftest import TINY


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


# -- the search loop -------------------------------------------------------------------------
def _search(repo: Path, iterations: int, **overrides: Any) -> Any:
    from alma_tui.cli import build_parser, config_from_args
    from alma_tui.engine.search import Search

    args = ["run", "--repo", str(repo), "--iterations", str(iterations), *TINY]
    cfg = config_from_args(build_parser().parse_args(args))
    for k, v in overrides.items():
        setattr(cfg, k, v)
    return Search(cfg)


def _run(repo: Path, iterations: int, **overrides: Any) -> tuple[str, list[Any], list[Any]]:
    """Run a search to its end: (final status, its designs, its run.status events)."""
    search = _search(repo, iterations, **overrides)
    search.open()
    try:
        status = search.run()
        store = search.store
        store.flush_events()
        with store.session() as s:
            events = list(s.exec(select(Event).where(Event.kind == "run.status").order_by(col(Event.id))).all())
        return status, store.designs(), events
    finally:
        search.close()


def _fail_once(monkeypatch: pytest.MonkeyPatch, target: Any, name: str, exc: BaseException) -> list[int]:
    """Make ``target.name`` raise ``exc`` on its first call only; returns a call counter."""
    real = getattr(target, name)
    calls = [0]

    def once(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] == 1:
            raise exc
        return real(*args, **kwargs)

    monkeypatch.setattr(target, name, once)
    return calls


@pytest.fixture
def seeded(repo: Path) -> Path:
    """A repo whose seed designs are evaluated (the next session starts by proposing d003)."""
    assert _run(repo, 0)[0] == "done"
    return repo


def test_the_budget_reaches_its_handler_from_the_prompt_example(seeded: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The prompt's example episode is a courtesy (its errors are ignored), but the budget
    running out while it is made stops the search: it used to be swallowed there."""
    from alma_tui.engine import evidence
    from alma_tui.llm.client import BudgetExceeded

    calls = _fail_once(monkeypatch, evidence, "synthetic_episodes", BudgetExceeded("token budget 1000 reached"))
    status, designs, events = _run(seeded, 1, parallel_children=1)  # one child at a time: d003 meets it
    assert calls[0] == 1 and status == "budget"
    assert events[-1].message == "run budget: token budget 1000 reached"
    d003 = next(d for d in designs if d.id == "d003")
    assert d003.status == "proposed" and not d003.analysis_json  # stopped before the analysis


def test_an_outage_reaches_its_handler_from_the_prompt_example(seeded: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from alma_tui.engine import evidence
    from alma_tui.llm.client import ProviderUnavailable

    _fail_once(monkeypatch, evidence, "synthetic_episodes", ProviderUnavailable("offline/agent: 503"))
    status, designs, events = _run(seeded, 1, outage_wait_s=0.05)
    assert status == "done"  # paused, retried, finished
    assert [e.message for e in events if "paused" in e.message] == [
        "run paused: provider unavailable: offline/agent: 503; retrying in 0s (or on `alma-tui resume`)"
    ]
    assert all(d.status in ("accepted", "rejected") for d in designs) and len(designs) == 4


@pytest.mark.parametrize(
    ("stop", "status", "detail"),
    [
        ("budget", "budget", "run budget: cost budget $0.01 reached"),
        ("cancelled", "stopped", "run stopped: interrupted; run again to resume"),
        ("outage", "stopped", "run stopped: stopped while the model provider was unavailable"),
    ],
)
def test_a_stop_wrapped_in_another_error_still_reaches_its_handler(
    repo: Path, monkeypatch: pytest.MonkeyPatch, stop: str, status: str, detail: str
) -> None:
    """Raised deep inside (here: the evaluator's pool) and wrapped with ``raise ... from``,
    a stop used to land in the catch-all and end the run as a crash ("error")."""
    from alma_tui.engine.evaluator import EvaluationCancelled, Evaluator
    from alma_tui.llm.client import BudgetExceeded, ProviderUnavailable

    cause = {
        "budget": BudgetExceeded("cost budget $0.01 reached"),
        "cancelled": EvaluationCancelled(),
        "outage": ProviderUnavailable("offline/agent: 503"),
    }[stop]

    def evaluate(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("a worker of the episode pool failed") from cause

    monkeypatch.setattr(Evaluator, "evaluate", evaluate)
    search = _search(repo, 0, outage_wait_s=30.0)
    search.open()
    if stop == "outage":  # a stop during the outage pause ends the run
        search.store.command("stop")
    try:
        assert search.run() == status
        run = search.store.get_run()
        assert f"run {run.status}: {run.status_detail}" == detail
        assert not (repo / ".alma" / "engine-error.log").exists()  # not a crash
    finally:
        search.close()


def test_an_unexpected_error_is_still_an_error_with_its_traceback(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from alma_tui.engine.evaluator import Evaluator

    def evaluate(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("a worker of the episode pool failed")

    monkeypatch.setattr(Evaluator, "evaluate", evaluate)
    status, _designs, events = _run(repo, 0)
    assert status == "error"
    assert events[-1].message.startswith("run error: RuntimeError: a worker of the episode pool failed (traceback in")
    assert "a worker of the episode pool failed" in (repo / ".alma" / "engine-error.log").read_text()
