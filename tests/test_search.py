"""The search end to end on the offline models: archive, lineage, resume, steering."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from alma_tui.cli import main
from alma_tui.store import Store
from alma_tui.store.db import StoreEmpty
from tests.conftest import TINY


def designs(repo: Path) -> list[dict]:
    from alma_tui.archive_rows import design_rows

    return design_rows(Store(repo, create=False))


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


def test_search_builds_archive_and_lineage(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--headless", "--repo", str(repo), "--iterations", "2", *TINY]) == 0
    rows = designs(repo)
    by_id = {r["id"]: r for r in rows}
    assert rows[0]["id"] == "d001" and rows[0]["parent"] is None  # the no-memory normaliser
    assert rows[1]["parent"] is None
    children = [r for r in rows if r["iteration"] > 0]
    assert len(children) == 4  # 2 iterations x 2 parents
    for r in rows:
        assert r["status"] in ("accepted", "rejected")
        if r["status"] == "accepted":
            assert r["commit"] and 0.0 <= r["score"] <= 1.0
            parents = git(repo, "rev-list", "--parents", "-n1", r["commit"]).split()[1:]
            expected = [by_id[p]["commit"] for p in r["parents"]]  # two for a merge child
            assert parents == expected  # git parents = archive parents
            assert r["parent"] == (r["parents"][0] if r["parents"] else None)
            assert git(repo, "rev-parse", f"design/{r['id']}^{{commit}}").strip() == r["commit"]
    child = next(r for r in children if r["status"] == "accepted")
    diff = git(repo, "diff", f"design/{child['parent']}", f"design/{child['id']}", "--", "design.py")
    assert diff.startswith("diff --git") and "\n+" in diff
    # visits accumulate in the store across iterations
    assert sum(r["visits"] for r in rows) == sum(len(r["parents"]) for r in children)
    out = capsys.readouterr().out
    assert "archive" in out and "d001" in out
    # honest scores: the one best design also has a held-out (test split) score, shown labelled
    from alma_tui.archive_rows import best_id

    best = by_id[best_id(rows)]
    assert best["test_score"] is not None and 0.0 <= best["test_score"] <= 1.0
    assert out.count("│ best ") == 1
    assert f"best {best['id']} search split" in out and "held-out test split" in out
    # the store is not part of the lineage history
    assert ".alma" not in git(repo, "log", "--all", "--name-only", "--format=")


def test_resume_extends_without_duplicates(repo: Path) -> None:
    assert main(["run", "--headless", "--repo", str(repo), "--iterations", "1", *TINY]) == 0
    first = {r["id"]: r for r in designs(repo)}
    tags_before = git(repo, "tag").split()
    # same target again: nothing to do, nothing redone
    assert main(["run", "--headless", "--repo", str(repo), "--iterations", "1"]) == 0
    assert {r["id"]: r for r in designs(repo)} == first
    assert main(["run", "--headless", "--repo", str(repo), "--iterations", "2"]) == 0
    after = {r["id"]: r for r in designs(repo)}
    for did, row in first.items():
        assert after[did]["commit"] == row["commit"] and after[did]["score"] == row["score"]
    assert len(after) == len(first) + 2
    tags = git(repo, "tag").split()
    assert len(tags) == len(set(tags)) and set(tags_before) <= set(tags)
    run = Store(repo, create=False).get_run()
    assert run is not None and run.iterations_done == 2 and run.status == "done"
    # resume kept the stored evaluation sizes (the tiny ones), not the defaults
    assert json.loads(run.settings_json)["eval"]["n_collection"] == 4


def test_veto_and_pin_steer_selection(repo: Path) -> None:
    assert main(["run", "--headless", "--repo", str(repo), "--iterations", "0", *TINY]) == 0
    assert main(["veto", "d002", "--repo", str(repo)]) == 0
    assert main(["pin", "d001", "--repo", str(repo)]) == 0
    assert main(["run", "--headless", "--repo", str(repo), "--iterations", "2", "--parents", "1"]) == 0
    children = [r for r in designs(repo) if r["iteration"] > 0]
    assert [c["parent"] for c in children] == ["d001", "d001"]  # pinned always, vetoed never


def test_kill_9_mid_evaluation_then_resume(repo: Path) -> None:
    """A killed engine loses only the evaluation in flight; resume redoes it once."""
    cmd = [sys.executable, "-m", "alma_tui", "run", "--headless", "--repo", str(repo), "--iterations", "1", *TINY]
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    with open(repo.parent / "engine.log", "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail("the engine exited early: " + (repo.parent / "engine.log").read_text()[-2000:])
            db = repo / ".alma" / "alma.db"
            if db.exists():
                try:
                    store = Store(repo, create=False)
                except StoreEmpty:  # the engine created the file and is creating its tables
                    time.sleep(0.05)
                    continue
                busy = [d for d in store.designs() if d.iteration == 1 and d.status == "evaluating"]
                store.close()
                if busy:
                    break
            time.sleep(0.05)
        else:
            pytest.fail("the engine never reached the evaluation of a child")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert main(["run", "--headless", "--repo", str(repo)]) == 0
    rows = designs(repo)
    assert [r["id"] for r in rows] == ["d001", "d002", "d003", "d004"]
    assert all(r["status"] in ("accepted", "rejected") for r in rows)
    store = Store(repo, create=False)
    from sqlmodel import select

    from alma_tui.store.models import Evaluation

    with store.session() as s:
        for did in ("d003", "d004"):
            done = s.exec(select(Evaluation).where(Evaluation.design_id == did, Evaluation.status == "done")).all()
            assert len(done) <= 1
    tags = git(repo, "tag").split()
    assert len(tags) == len(set(tags))


def test_greedy_selection_expands_the_best(repo: Path) -> None:
    assert (
        main(
            [
                "run",
                "--headless",
                "--repo",
                str(repo),
                "--iterations",
                "1",
                "--selection",
                "greedy",
                "--parents",
                "1",
                *TINY,
            ]
        )
        == 0
    )
    rows = designs(repo)
    best_seed = max(rows[:2], key=lambda r: (r["score"], -int(r["id"][1:])))
    assert rows[2]["parent"] == best_seed["id"]
