"""A new best's held-out evaluation runs beside the search, the run's end waits for it, and a
best left without one (a stop, a kill) is evaluated when the run resumes."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from alma_tui.archive_rows import best_id, design_rows
from alma_tui.cli import main
from alma_tui.engine import heldout
from alma_tui.store import Store
from tests.conftest import TINY


def _best(repo: Path) -> dict:
    rows = design_rows(Store(repo, create=False))
    return next(r for r in rows if r["id"] == best_id(rows))


def test_heldout_runs_in_the_background_and_the_run_waits_for_it(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = heldout.evaluate_new_best
    threads: list[str] = []

    def slow(ctx, evaluator, calls, design_id):  # type: ignore[no-untyped-def]
        threads.append(threading.current_thread().name)
        time.sleep(0.4)  # long enough that the search visibly goes on meanwhile
        return real(ctx, evaluator, calls, design_id)

    monkeypatch.setattr(heldout, "evaluate_new_best", slow)
    assert main(["run", "--headless", "--repo", str(repo), "--iterations", "2", *TINY]) == 0
    assert threads and all(t.startswith("alma-heldout") for t in threads)
    store = Store(repo, create=False)
    events = store.events_after(0)
    first = next(e for e in events if e.kind == "heldout.evaluating")
    done = next(e for e in events if e.kind == "heldout.done" and e.design_id == first.design_id)
    between = [e for e in events if first.id < e.id < done.id and e.design_id not in (None, first.design_id)]
    assert between, "the search waited for the held-out evaluation"
    # the final summary came after the last one: the best has its held-out score
    best = _best(repo)
    assert best["test_score"] is not None and 0.0 <= best["test_score"] <= 1.0


def test_a_best_left_without_heldout_score_is_evaluated_on_resume(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = heldout.evaluate_new_best

    def killed(ctx, evaluator, calls, design_id):  # type: ignore[no-untyped-def]
        return None  # as if the engine died before the held-out evaluation ran

    monkeypatch.setattr(heldout, "evaluate_new_best", killed)
    assert main(["run", "--headless", "--repo", str(repo), "--iterations", "1", *TINY]) == 0
    assert _best(repo)["test_score"] is None
    monkeypatch.setattr(heldout, "evaluate_new_best", real)
    assert main(["run", "--headless", "--repo", str(repo), "--iterations", "1"]) == 0  # nothing else to do
    assert _best(repo)["test_score"] is not None
