"""Pareto parent selection and two-parent merges (issue 14): the frontier math, seeded and
resumable choices, merge commits in the lineage, the offline merge, the TUI's mark and diff."""

from __future__ import annotations

import json
import random
import shutil
import sqlite3
import struct
import subprocess
from pathlib import Path

import pytest

from alma_tui.cli import main
from alma_tui.engine.archive import (
    Candidate,
    SelectionParams,
    choose_parents,
    compare_tasks,
    frontier,
    iteration_rng,
    merge_partner,
    merge_partners,
    merge_rng,
    pareto_weights,
    select_parents,
)
from alma_tui.engine.config import SearchConfig
from alma_tui.store import Store

SMALL = ["--collection", "3", "--deployment", "3", "--runs", "1", "--concurrency", "2"]


# -- the frontier on hand-made per-task tables ------------------------------------------------------
def test_frontier_leaders_ties_shared_and_unsolved_tasks_led_by_nobody() -> None:
    table = {
        "a": {"cool": 1.0, "clean": 0.0, "put": 0.5, "hard": 0.0},
        "b": {"cool": 0.5, "clean": 1.0, "put": 0.5, "hard": 0.0},
        "c": {"cool": 0.0, "clean": 0.0, "put": 0.0, "hard": 0.0},
    }
    f = frontier(table)
    assert f.leaders == {"clean": ["b"], "cool": ["a"], "put": ["a", "b"]}  # "hard": nobody solved it
    assert f.led == {"a": ["cool", "put"], "b": ["clean", "put"]}
    assert f.credit == {"a": 1.5, "b": 1.5}  # the tied task counts half for each
    assert f.members == ["a", "b"]  # c leads nothing: off the frontier


def test_frontier_of_a_single_design_and_of_nothing() -> None:
    assert frontier({"a": {"t1": 0.3, "t2": 0.0}}).led == {"a": ["t1"]}
    assert frontier({}).members == []
    assert frontier({"a": {}}).members == []
    assert frontier({"a": {"t1": 1.0}}, eligible=[]).members == []  # every design vetoed


def test_a_low_mean_design_that_alone_solves_a_task_stays_selectable() -> None:
    """What a mean hides: b is worse on average but the only one to solve 'cool' chores."""
    table = {
        "a": {f"t{i}": 1.0 for i in range(9)} | {"cool": 0.0},
        "b": {f"t{i}": 0.0 for i in range(9)} | {"cool": 1.0},
    }
    cands = [Candidate("a", 0.9), Candidate("b", 0.1)]
    probs = pareto_weights(cands, frontier(table), SelectionParams())
    assert probs == pytest.approx({"a": 0.9, "b": 0.1})
    picks = {
        select_parents(cands, 0.0, iteration_rng(0, it), SelectionParams(k=1), "pareto", table)[0] for it in range(60)
    }
    assert picks == {"a", "b"}
    assert select_parents(cands, 0.0, iteration_rng(0, 1), SelectionParams(k=1), "greedy") == ["a"]


def test_pareto_visit_penalty_is_the_open_ended_factor() -> None:
    table = {"a": {"t1": 1.0}, "b": {"t2": 1.0}}
    p = SelectionParams(visit_penalty=0.5, temperature=0.25)
    probs = pareto_weights([Candidate("a", 0.5, visits=3), Candidate("b", 0.5)], frontier(table), p)
    factor = (1 + 3) ** (-0.5 / 0.25)  # exp(-vp * log(1 + visits) / T)
    assert probs["a"] / probs["b"] == pytest.approx(factor)


def test_choices_say_why_and_pinned_vetoed_still_rule() -> None:
    table = {"a": {"t1": 1.0, "t2": 1.0}, "b": {"t1": 1.0}, "c": {"t3": 1.0}}
    cands = [Candidate("a", 0.6, visits=2), Candidate("b", 0.4, pinned=True), Candidate("c", 0.3, vetoed=True)]
    choices = choose_parents(cands, 0.0, iteration_rng(1, 1), SelectionParams(k=3), "pareto", table)
    assert [c.id for c in choices][:2] == ["b", "a"]  # pinned first; c vetoed: never
    assert "c" not in [c.id for c in choices]
    pinned, drawn = choices[0], choices[1]
    assert pinned.why == "pinned"
    assert drawn.why == "frontier" and drawn.tasks_led == 2 and drawn.credit == pytest.approx(1.5)
    assert drawn.explain() == {"why": "frontier", "score": 0.6, "visits": 2, "p": 1.0, "tasks_led": 2, "credit": 1.5}
    # a third slot with one frontier design left: it is drawn again, and says so
    assert choices[2].id == "a" and choices[2].why == "frontier-again"


def test_pareto_without_solved_tasks_falls_back_to_open_ended() -> None:
    cands = [Candidate("a", 0.0), Candidate("b", 0.0)]
    choices = choose_parents(cands, 0.0, iteration_rng(0, 1), SelectionParams(k=2), "pareto", {"a": {"t": 0.0}})
    assert sorted(c.id for c in choices) == ["a", "b"] and {c.why for c in choices} == {"open-ended fallback"}


@pytest.mark.parametrize("mode", ["open-ended", "greedy", "pareto"])
def test_each_strategy_is_reproducible_for_a_seed_and_iteration(mode: str) -> None:
    table = {f"d{i}": {f"t{j}": random.Random(i * 7 + j).random() for j in range(6)} for i in range(6)}
    cands = [Candidate(f"d{i}", 0.1 * i, visits=i % 3) for i in range(6)]
    draws = [select_parents(cands, 0.2, iteration_rng(5, 4), SelectionParams(k=3), mode, table) for _ in range(3)]
    assert draws[0] == draws[1] == draws[2] and len(set(draws[0])) == 3
    merges = [merge_partners(draws[0], cands, merge_rng(5, 4), 0.5, table) for _ in range(2)]
    assert merges[0] == merges[1]


def test_merge_partner_is_the_complement_else_the_best_other() -> None:
    table = {"a": {"t1": 1.0, "t2": 1.0}, "b": {"t1": 1.0, "t3": 1.0}, "c": {"t2": 1.0}}
    cands = [Candidate("a", 0.7), Candidate("b", 0.5), Candidate("c", 0.9)]
    assert merge_partner("a", cands, table) == "b"  # b leads t3, which a does not
    assert merge_partner("a", cands, {}) == "c"  # no per-task results: the best other design
    assert merge_partner("a", [Candidate("a", 0.7)], table) is None
    assert merge_partners(["a", "b"], cands, merge_rng(0, 1), 0.0, table) == [None, None]
    assert compare_tasks(table, "a", "b") == {"a_better": [], "b_better": [], "tied": ["t1"]}


# -- settings -----------------------------------------------------------------------------------------
def test_merge_rate_defaults_off_in_greedy_and_on_otherwise() -> None:
    assert SearchConfig(selection="greedy").effective_merge_rate == 0.0
    assert SearchConfig(selection="pareto").effective_merge_rate == 0.2
    assert SearchConfig(selection="open-ended").effective_merge_rate == 0.2
    assert SearchConfig(selection="greedy", merge_rate=0.5).effective_merge_rate == 0.5


def test_bad_selection_and_merge_rate_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for bad in (["--merge-rate", "1.5"], ["--selection", "best"]):
        with pytest.raises(SystemExit) as exc:
            main(["run", "--headless", "--repo", str(tmp_path / "r"), *bad])
        assert exc.value.code != 0
        err = capsys.readouterr().err
        assert "Traceback" not in err and ("merge-rate" in err or "selection" in err)


# -- end to end on the offline models -----------------------------------------------------------------
def _rows(repo: Path) -> list[dict]:
    from alma_tui.archive_rows import design_rows

    store = Store(repo, create=False)
    try:
        return design_rows(store)
    finally:
        store.close()


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


def _shape(rows: list[dict]) -> list[tuple]:
    return [(r["id"], r["parents"], r["status"], r["score"], r["title"]) for r in rows]


# greedy draws nothing (it takes the best), so open-ended and pareto cover the seeded draws
@pytest.mark.parametrize("mode", ["open-ended", "pareto"])
def test_a_resumed_search_makes_the_same_choices(tmp_path: Path, mode: str) -> None:
    # one child at a time: concurrent siblings race in duplicate detection (which one is written
    # first), which would make even two uninterrupted runs differ; selection itself never races
    flags = ["--selection", mode, "--merge-rate", "0.5", "--seed", "3", "--parallel-children", "1", *SMALL]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert main(["run", "--headless", "--repo", str(straight), "--iterations", "2", *flags]) == 0
    assert main(["run", "--headless", "--repo", str(resumed), "--iterations", "1", *flags]) == 0
    assert main(["run", "--headless", "--repo", str(resumed), "--iterations", "2"]) == 0
    assert _shape(_rows(resumed)) == _shape(_rows(straight))
    assert _selections(resumed) == _selections(straight)  # and the same reasons for each parent


def _selections(repo: Path) -> list[dict]:
    with sqlite3.connect(repo / ".alma" / "alma.db") as conn:
        rows = conn.execute("SELECT data_json FROM event WHERE kind = 'selection' ORDER BY id").fetchall()
    out = []
    for (raw,) in rows:
        data = json.loads(raw)
        out.append({k: data[k] for k in ("iteration", "parents", "why", "merges", "probabilities")})
    return out


def test_merge_commits_have_both_designs_as_git_parents_and_survive_a_lost_lineage(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    flags = ["--selection", "pareto", "--merge-rate", "1", *SMALL]
    assert main(["run", "--headless", "--repo", str(repo), "--iterations", "2", *flags]) == 0
    rows = _rows(repo)
    by_id = {r["id"]: r for r in rows}
    merged = [r for r in rows if len(r["parents"]) == 2 and r["status"] == "accepted"]
    assert merged, "--merge-rate 1 writes every child from two parents"
    for r in rows:
        if r["iteration"] > 0:
            assert len(r["parents"]) == 2 and r["parent"] == r["parents"][0] and r["parents"][0] != r["parents"][1]

    def check() -> None:
        for r in merged:
            commit = _git(repo, "rev-parse", f"design/{r['id']}^{{commit}}").strip()
            git_parents = _git(repo, "rev-list", "--parents", "-n1", commit).split()[1:]
            assert git_parents == [
                _git(repo, "rev-parse", f"design/{p}^{{commit}}").strip() for p in r["parents"]
            ]  # a git merge commit, first parent first
            meta = json.loads(_git(repo, "show", f"design/{r['id']}:design.json"))
            assert meta["parent"] == r["parents"][0] and meta["parents"] == r["parents"]

    check()
    code = _git(repo, "show", f"design/{merged[0]['id']}:design.py")
    first, second = by_id[merged[0]["id"]]["parents"]
    assert f"merge of {first} and {second}" in code  # the offline writer says what it combined
    # the lineage lost: reconcile recreates it from the store, merge commits included
    shutil.rmtree(repo / ".git")
    assert main(["run", "--headless", "--repo", str(repo), "--iterations", "2"]) == 0
    check()
    # the store lost: `repair` rebuilds the archive from the lineage, second parents included
    shutil.move(repo / ".alma", tmp_path / "old-store")
    assert main(["repair", "--repo", str(repo)]) == 0
    assert {r["id"]: r["parents"] for r in _rows(repo)} == {r["id"]: r["parents"] for r in rows if r["commit"]}


def test_an_older_store_gains_the_second_parent_column(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    assert main(["run", "--headless", "--repo", str(repo), "--iterations", "0", *SMALL]) == 0
    db = repo / ".alma" / "alma.db"
    with sqlite3.connect(db) as conn:
        conn.execute("ALTER TABLE design DROP COLUMN second_parent_id")
    store = Store(repo, create=False)
    try:
        assert all(d.second_parent_id is None for d in store.designs())
    finally:
        store.close()
    with sqlite3.connect(db) as conn:
        assert "second_parent_id" in {r[1] for r in conn.execute("PRAGMA table_info(design)")}


# -- the meta agent's merge prompt and the offline merge ---------------------------------------------
def _genome_code(**changes: object) -> str:
    from alma_tui.offline import mechanisms as dm

    g = dm.normalise({**dm.DEFAULT_GENOME, "store": "facts", "rank": "count", **changes})
    return dm.render(g, None, "test")


def test_the_merge_prompt_shows_both_designs_and_the_per_task_comparison() -> None:
    from alma_tui.engine import prompts
    from alma_tui.engine.meta_agent import ParentInfo

    second = ParentInfo("d005", "tools", _genome_code(tools="worked"), score=0.5)
    first = ParentInfo("d004", "plain", _genome_code(), score=0.6, second_parent=second, comparison={"tasks": []})
    task, sections = prompts.parse_prompt(prompts.merge_messages(first, "{}"))
    assert task == prompts.TASK_MERGE
    assert "'tools': 'worked'" in sections[prompts.S_SECOND_CODE].replace('"', "'")
    assert json.loads(sections[prompts.S_SECOND_EVALUATION])["design_id"] == "d005"
    assert json.loads(sections[prompts.S_PARENT_EVALUATION])["design_id"] == "d004"
    assert json.loads(sections[prompts.S_COMPARISON]) == {"tasks": []}


def test_offline_merge_brings_in_the_mechanism_behind_the_other_parents_wins() -> None:
    from alma_tui.engine import prompts
    from alma_tui.offline import mechanisms as dm
    from alma_tui.offline.meta import merge

    tasks = [
        {"task_id": "t1", "goal": "put a clean mug in cabinet 1", "first": 0.0, "second": 1.0, "better": "second"},
        {"task_id": "t2", "goal": "put a hot apple in fridge 1", "first": 0.0, "second": 1.0, "better": "second"},
        {"task_id": "t3", "goal": "put a book on shelf 2", "first": 1.0, "second": 1.0, "better": "tie"},
    ]
    comparison = {"first": "d004", "second": "d005", "first_better": 0, "second_better": 2, "tied": 1}
    base = _genome_code(plurals=True, context="house")
    donor = _genome_code(tools="worked")
    sections = {
        prompts.S_PARENT_CODE: base,
        prompts.S_SECOND_CODE: donor,
        prompts.S_COMPARISON: json.dumps({**comparison, "first_score": 0.5, "second_score": 0.6, "tasks": tasks}),
        prompts.S_ANALYSIS: "{}",
    }
    answer = merge(sections, seed=0)
    child = dm.genome_from_code(answer.split("```python\n", 1)[1])
    assert child["tools"] == "worked"  # the donor's wins are clean/heat chores: its tool memory comes in
    assert child["store"] == "facts"
    assert "merge of d004 and d005" in answer and "base d005" in answer  # d005 wins more tasks: the base
    assert merge(sections, seed=0) == answer  # deterministic


# -- the TUI: the mark in the tree and the Diff tab's parent switch ----------------------------------
async def test_tui_marks_a_merge_design_and_diffs_against_either_parent(tmp_path: Path) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from test_tui import SIZE, make_app, ready, wait_until
    from tui_fixture import make_fixture_repo

    repo = make_fixture_repo(tmp_path / "designs_repo")
    with sqlite3.connect(repo / ".alma" / "alma.db") as conn:
        conn.execute("UPDATE design SET second_parent_id = 'd005' WHERE id = 'd006'")
    app = make_app(repo)
    async with app.run_test(size=SIZE) as pilot:
        main = await ready(pilot, "d006")
        tree = main.archive_tree
        label = tree._dnodes["d006"].label.plain
        assert "⊕d005" in label
        assert tree._dnodes["d006"].parent is tree._dnodes["d004"]  # under its first parent
        assert main.check_action("diff_parent", ()) is True  # "d" is in the footer for a merge design

        def diff_text() -> str:
            views = main.detail.views
            assert views is not None
            return "\n".join(getattr(r, "plain", "") for r in views.tab("diff").renderables)

        assert "d004/design.py" in diff_text() and "d diffs against d005" in diff_text()
        await pilot.press("d")
        await wait_until(pilot, lambda: "d005/design.py" in diff_text())
        assert "d diffs against d004" in diff_text()
        await pilot.press("d")
        await wait_until(pilot, lambda: "d004/design.py" in diff_text())
        main.go_to_design("d004")
        await wait_until(pilot, lambda: main.detail_for == "d004")
        assert main.check_action("diff_parent", ()) is False  # one parent: hidden


# -- the benchmark's --quick mode (CI) -------------------------------------------------------------------
def test_search_quality_quick_writes_the_table_and_the_picture(tmp_path: Path) -> None:
    from benchmarks import search_quality

    out, png = tmp_path / "table.md", tmp_path / "curve.png"
    args = ["--quick", "--runs-dir", str(tmp_path / "runs"), "--out", str(out), "--png", str(png)]
    assert search_quality.main(args) == 0
    table = out.read_text()
    rows = [ln for ln in table.splitlines() if ln.startswith("| ") and "strategy" not in ln]
    names = [r.split("|")[1].strip() for r in rows]
    assert names == ["open-ended", "open-ended + merge", "greedy", "greedy + merge", "pareto", "pareto + merge"]
    for r in rows:
        merges = r.split("|")[-4].strip()
        assert (merges == "-") == ("merge" not in r.split("|")[1])  # --quick merges every child
        if "merge" in r.split("|")[1]:
            assert merges.startswith("1 ")
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (720, 420)
