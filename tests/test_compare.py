"""`alma-tui compare`: the paper's table (ranking, noise marks, formats), design names, reuse."""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path

import pytest

from alma_tui.cli import main
from alma_tui.comparison import Protocol, json_rows, markdown_table
from alma_tui.designs import BUILTIN, builtin_source
from alma_tui.engine.compare import CompareRow, Evaluated, paired_p_value, rank, run_compare
from alma_tui.engine.designref import DesignRef, DesignRefError, resolve_design
from alma_tui.engine.evaluator import EpisodeRecord, EvalResult, EvalSettings, EvaluationFailed, Evaluator
from alma_tui.store.db import Store

SMALL = ["--collection", "3", "--deployment", "3", "--runs", "1", "--concurrency", "2"]
PROTO = Protocol("household", "offline/agent", "test", 2, 3, 3, 0, "/tmp/x.db")


def row(label: str, score: float, per_task: dict[str, list[float]], se: float = 0.0, **kw: object) -> CompareRow:
    return CompareRow(label, "builtin", f"h-{label}", f"k-{label}", score=score, score_se=se, per_task=per_task, **kw)  # type: ignore[arg-type]


# -- the noise test and the ranking, on hand-made results -----------------------------------------
def test_paired_sign_flip_p_values() -> None:
    # every one of n tasks better by the same amount: only the all-+ and all-- patterns are as extreme
    assert paired_p_value([1.0] * 6, [0.0] * 6) == pytest.approx(2 / 64)
    assert paired_p_value([1.0] * 5, [0.0] * 5) == pytest.approx(2 / 32)
    assert paired_p_value([0.5, 0.2], [0.5, 0.2]) == 1.0  # identical: no evidence of a difference
    # one task much better, five slightly worse: the mean difference is 0 -> p = 1
    assert paired_p_value([1.0, 0, 0, 0, 0, 0], [0, 0.2, 0.2, 0.2, 0.2, 0.2]) == 1.0
    # above the exact limit: a seeded Monte Carlo estimate, reproducible
    a, b = [1.0] * 20, [0.0] * 19 + [1.0]
    assert paired_p_value(a, b) == paired_p_value(a, b) < 0.001
    with pytest.raises(ValueError):
        paired_p_value([1.0], [1.0, 0.0])


def test_rank_sorts_and_marks_noise() -> None:
    tasks = [f"t{i}" for i in range(6)]
    top = row("best", 0.9, {t: [1.0, 0.8] for t in tasks})
    close = row("close", 0.9, {t: [1.0, 0.8] for t in tasks}, se=0.1)  # same score, larger s.e.
    worse = row("worse", 0.1, {t: [0.0, 0.2] for t in tasks})  # worse on every task: p = 2/64
    mixed = row("mixed", 0.5, {t: ([1.0, 1.0] if i < 3 else [0.0, 0.0]) for i, t in enumerate(tasks)})
    failed = CompareRow("broken", "file", "h", "k", error="update raised ValueError")
    ranked = rank([worse, failed, mixed, close, top])
    assert [r.label for r in ranked] == ["best", "close", "mixed", "worse", "broken"]
    assert ranked[0].p_value is None and ranked[0].within_noise is None
    assert ranked[1].within_noise is True and ranked[1].p_value == 1.0
    assert ranked[2].within_noise is True  # better on 3 tasks, worse on 3: not distinguishable
    assert ranked[3].within_noise is False and ranked[3].p_value == pytest.approx(2 / 64)
    assert ranked[4].p_value is None and not ranked[4].ok


def test_markdown_and_json_formats() -> None:
    tasks = [f"t{i}" for i in range(6)]
    rows = rank(
        [
            row("d005 (best)", 0.8, {t: [1.0, 0.6] for t in tasks}, se=0.1, run_scores=[1.0, 0.6], episodes=10),
            row("no_memory", 0.1, {t: [0.0, 0.2] for t in tasks}, run_scores=[0.0, 0.2], episodes=10, tokens=5000),
            # as good as the top row on five tasks, worse on one: within noise
            row(
                "g_memory",
                0.7,
                {t: [1.0, 0.6] if t != "t0" else [0.4, 0.0] for t in tasks},
                cost_usd=0.01,
                episodes=10,
                run_scores=[1.0, 0.4],
            ),
            CompareRow("x|y.py", "file", "h", "k", error="boom"),
        ]
    )
    md = markdown_table(rows, PROTO).splitlines()
    assert md[0] == "| Design | Success ± s.e. | Runs | Tokens/episode | Cost/episode | Wall |"
    assert md[2].startswith("| d005 (best) | **0.800 ± 0.100** | 1.00 0.60 |")
    assert md[3].startswith("| g_memory | 0.700 ± 0.000 ≈ |") and "$0.001 |" in md[3]
    assert md[4].startswith("| no_memory | 0.100 ± 0.000 |") and "| 500 |" in md[4]  # not within noise: no mark
    assert md[5] == "| x\\|y.py | failed | | | | |"  # a pipe in a name cannot break the table
    data = json.loads(json.dumps(json_rows(rows, PROTO)))
    assert [d["design"] if "design" in d else d["label"] for d in data] == [
        "d005 (best)",
        "g_memory",
        "no_memory",
        "x|y.py",
    ]
    first = data[0]
    for key in (
        "rank",
        "label",
        "kind",
        "score",
        "score_se",
        "run_scores",
        "per_task",
        "tokens_per_episode",
        "cost_per_episode",
        "wall_s",
        "reused",
        "p_value",
        "within_noise",
        "error",
        "domain",
        "agent_model",
        "split",
        "runs",
        "n_collection",
        "n_deployment",
        "seed",
        "noise_test",
    ):
        assert key in first, key
    assert [d["rank"] for d in data] == [1, 2, 3, None]
    assert data[2]["within_noise"] is False and data[3]["error"] == "boom"


# -- design names ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seeds-only search (d001 no memory, d002 trajectory retrieval) with its lineage."""
    repo = tmp_path_factory.mktemp("cmp") / "r"
    assert main(["run", "--headless", "--repo", str(repo), "--iterations", "0", *SMALL]) == 0
    return repo


def test_resolve_builtin_file_and_unknown(tmp_path: Path) -> None:
    nowhere = tmp_path / "none"
    d = resolve_design("reasoning_bank", nowhere)
    assert (d.label, d.kind, d.code) == ("reasoning_bank", "builtin", builtin_source("reasoning_bank"))
    f = tmp_path / "mine.py"
    f.write_text(builtin_source("no_memory") + "\n# mine\n")
    d = resolve_design(str(f), nowhere)
    assert (
        d.kind == "file"
        and d.code.endswith("# mine\n")
        and d.code_hash != resolve_design("no_memory", nowhere).code_hash
    )
    for bad, says in (
        ("nosuch", "unknown design 'nosuch'"),
        ("gone.py", "no such design file"),
        ("best", "`best` needs"),
    ):
        with pytest.raises(DesignRefError, match=says):
            resolve_design(bad, nowhere)


def test_resolve_id_best_and_git_rev(searched: Path) -> None:
    from alma_tui.archive_rows import best_id
    from alma_tui.lineage import Lineage

    store = Store(searched, create=False, readonly=True)
    designs = {d.id: d for d in store.designs()}
    bid = best_id(store.designs())
    store.close()
    assert resolve_design("d002", searched).code == designs["d002"].code
    assert resolve_design("1", searched).label == "d001"  # a bare number, as in pin/veto
    best = resolve_design("best", searched)
    assert best.label == f"{bid} (best)" and best.code == designs[bid].code and best.kind == "archive"
    commit = Lineage(searched).commit_of("d002")
    assert commit is not None
    for rev in ("design/d002", commit, commit[:10]):
        d = resolve_design(rev, searched)
        assert d.kind == "rev" and d.code == designs["d002"].code
        assert d.code_hash == resolve_design("d002", searched).code_hash  # same bytes: the same stored row
    with pytest.raises(DesignRefError, match="unknown design"):
        resolve_design("d099", searched)
    git = ["git", "-C", str(searched)]
    empty = subprocess.run([*git, "mktree"], input="", capture_output=True, text=True, check=True).stdout.strip()
    other = subprocess.run(
        [*git, "commit-tree", empty, "-m", "not a design"], capture_output=True, text=True, check=True
    )
    with pytest.raises(DesignRefError, match="is not a design"):
        resolve_design(other.stdout.strip(), searched)


# -- reuse of stored rows and Ctrl-C --------------------------------------------------------------
class FakeEvaluate:
    """Stands in for the sandboxed evaluator: counts calls; scores a design by its code length."""

    def __init__(self, fail: str | None = None, interrupt: str | None = None, crash: str | None = None) -> None:
        self.calls: list[str] = []
        self.fail, self.interrupt, self.crash = fail, interrupt, crash
        self.lock = threading.Lock()

    def __call__(self, design: DesignRef, key: str, hooks, cancel: threading.Event) -> Evaluated:  # type: ignore[no-untyped-def]
        with self.lock:
            self.calls.append(design.label)
        if design.label == self.interrupt:
            raise KeyboardInterrupt
        if design.label == self.fail:
            raise EvaluationFailed("update raised ValueError: boom")
        eps = []
        for run in range(2):
            for t in range(3):
                s = float((len(design.code) + t + run) % 2)
                eps.append(EpisodeRecord("deployment", run, f"t{t}", "g", bool(s), s, 3))
                if design.label == self.crash and t == 0:  # the model provider failed mid-episode
                    eps[-1] = EpisodeRecord("deployment", run, "t0", "g", False, 0.0, 0, error="APIError: 503")
                hooks.on_episode(eps[-1])
        runs = [sum(e.score for e in eps if e.run == r) / 3 for r in range(2)]
        return Evaluated(EvalResult(sum(runs) / 2, 0.0, runs, eps, {}, 0.5), tokens=600, cost_usd=0.0)


def _compare(
    store: Store, designs: list[DesignRef], fake: FakeEvaluate, runs: int = 2, jobs: int = 2
) -> list[CompareRow]:
    return run_compare(
        designs,
        fake,
        store=store,
        domain="household",
        agent_model="offline/agent",
        settings=EvalSettings(n_collection=3, n_deployment=3, runs=runs, split="test"),
        n_deployment=3,
        jobs=jobs,
    )


def _refs(*names: str) -> list[DesignRef]:
    return [DesignRef(n, builtin_source(n), "builtin") for n in names]


def test_second_compare_reuses_every_row(tmp_path: Path) -> None:
    store = Store(tmp_path / "cache")
    fake = FakeEvaluate()
    first = _compare(store, _refs("no_memory", "g_memory", "reasoning_bank"), fake)
    assert sorted(fake.calls) == ["g_memory", "no_memory", "reasoning_bank"] and not any(r.reused for r in first)
    assert all(r.episodes == 6 and r.tokens_per_episode == 100 for r in first)
    fake.calls.clear()
    dup = DesignRef("best", builtin_source("g_memory"), "archive")  # the same code under another name
    again = _compare(store, [*_refs("no_memory", "g_memory", "reasoning_bank"), dup], fake)
    assert fake.calls == []  # nothing evaluated
    assert all(r.reused for r in again) and len(again) == 3
    assert [(r.label, r.score, r.per_task) for r in again] == [(r.label, r.score, r.per_task) for r in first]
    # another protocol (runs) is another measurement: evaluated, and only the new one
    _compare(store, _refs("no_memory"), fake, runs=1)
    assert fake.calls == ["no_memory"]
    store.close()


def test_failed_rows_are_not_stored_and_interrupt_keeps_finished(tmp_path: Path) -> None:
    store = Store(tmp_path / "cache")
    fake = FakeEvaluate(fail="g_memory")
    rows = _compare(store, _refs("no_memory", "g_memory"), fake)
    assert [r.label for r in rows] == ["no_memory", "g_memory"] and rows[1].error and rows[1].p_value is None
    fake = FakeEvaluate(interrupt="reasoning_bank")
    with pytest.raises(KeyboardInterrupt):
        _compare(store, _refs("trajectory_retrieval", "reasoning_bank"), fake, jobs=1)
    fake = FakeEvaluate(crash="reasoning_bank")
    rows = _compare(store, _refs("reasoning_bank"), fake)
    assert rows[0].ok and rows[0].episode_errors == 2
    fake = FakeEvaluate()
    rows = _compare(store, _refs("no_memory", "g_memory", "trajectory_retrieval", "reasoning_bank"), fake)
    # the failed one and the one with crashed episodes again; the finished ones were kept
    assert sorted(fake.calls) == ["g_memory", "reasoning_bank"]
    assert {r.label: r.reused for r in rows} == {
        "no_memory": True,
        "trajectory_retrieval": True,
        "g_memory": False,
        "reasoning_bank": False,
    }
    store.close()


# -- the command ----------------------------------------------------------------------------------
@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "alma-tui" / "compare" / ".alma" / "alma.db"


def test_cli_json_then_reuse_without_evaluating(
    tmp_path: Path, cache: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ["compare", "--baselines", "no_memory", *SMALL, "--json", "--repo", str(tmp_path / "none")]
    assert main(args) == 0
    out = capsys.readouterr()
    rows = json.loads(out.out)
    assert [r["rank"] for r in rows] == [1, 2, 3, 4, 5] and {r["label"] for r in rows} == set(BUILTIN)
    assert all(
        r["split"] == "test" and r["runs"] == 1 and r["n_deployment"] == 3 and len(r["per_task"]) == 3 for r in rows
    )
    assert rows[0]["score"] >= rows[1]["score"] and rows[0]["tokens_per_episode"] > 0
    assert cache.is_file() and str(cache) in out.err and "reused 0 of 5" in out.err

    # designs run at once (--jobs): the same numbers as one at a time
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "other"))
    assert main(["compare", "g_memory", "dynamic_cheatsheet", *SMALL, "--jobs", "1", "--json", *args[-2:]]) == 0
    alone = {r["label"]: (r["score"], r["per_task"]) for r in json.loads(capsys.readouterr().out)}
    assert alone == {r["label"]: (r["score"], r["per_task"]) for r in rows if r["label"] in alone}
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))

    def no_evaluation(*_a: object, **_k: object) -> None:
        raise AssertionError("a stored row was evaluated again")

    monkeypatch.setattr(Evaluator, "evaluate", no_evaluation)
    assert main([*args[:-3], "--markdown", "--repo", str(tmp_path / "none")]) == 0
    out = capsys.readouterr().out
    assert "| Design | Success ± s.e. |" in out and "reused 5 of 5 rows" in out
    assert (
        "paired sign-flip permutation test" in out and "test split, 3 collection + 3 deployment tasks x 1 runs" in out
    )


def test_cli_in_a_search_repo_uses_its_protocol_and_store(
    searched: Path, cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the repo's search was SMALL (3 + 3 tasks x 1 run): compare measures the same way by default
    assert main(["compare", "best", "d001", "--split", "search", "--repo", str(searched)]) == 0
    out = capsys.readouterr().out
    assert "search split, 3 collection + 3 deployment tasks x 1 runs" in out
    assert str(searched / ".alma" / "alma.db") in out and not cache.exists()
    store = Store(searched, create=False, readonly=True)
    scores = {d.id: d.score for d in store.designs()}
    store.close()
    # on the search split with the search's protocol, compare reproduces the archive's scores
    assert main(["compare", "d001", "d002", "--split", "search", "--json", "--repo", str(searched)]) == 0
    rows = {r["label"]: r["score"] for r in json.loads(capsys.readouterr().out)}
    assert rows == pytest.approx(scores)


def test_cli_bad_input_is_one_line(tmp_path: Path, cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = ["--repo", str(tmp_path / "none")]
    for argv, code, says in (
        (["compare", *repo], 2, "name the designs to compare"),
        (["compare", "nosuch", *repo], 1, "unknown design 'nosuch'"),
        (["compare", "best", *repo], 1, "`best` needs a search"),
        (["compare", "missing.py", *repo], 1, "no such design file"),
    ):
        with pytest.raises(SystemExit) if code == 2 else _nothing():
            assert main(argv) == code
        err = capsys.readouterr().err
        assert says in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    with pytest.raises(SystemExit) as exc:
        main(["compare", "no_memory", "--json", "--markdown", *repo])
    assert exc.value.code == 2 and "not allowed with" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["compare", "no_memory", "--split", "train", *repo])
    assert exc.value.code == 2


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return False


def test_a_store_from_before_compare_gains_its_table(tmp_path: Path) -> None:
    """A repo written by an alma-tui without `compare` (no compare_result table) is upgraded on open."""
    import sqlite3

    Store(tmp_path / "old").close()
    db = tmp_path / "old" / ".alma" / "alma.db"
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE compare_result")
    store = Store(tmp_path / "old")
    rows = _compare(store, _refs("no_memory"), FakeEvaluate())
    assert store.compare_result(rows[0].key) is not None
    store.close()


def test_an_ambiguous_short_rev_is_one_line(searched: Path, tmp_path: Path) -> None:
    from collections import Counter

    files = []
    for i in range(600):  # enough objects that two share a 4-digit prefix (fixed contents: fixed hashes)
        files.append(tmp_path / f"f{i}")
        files[-1].write_text(f"blob {i}\n")
    shas = subprocess.run(
        ["git", "-C", str(searched), "hash-object", "-w", "--", *map(str, files)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    prefix = next(p for p, n in Counter(s[:4] for s in shas).items() if n > 1)
    with pytest.raises(DesignRefError, match=f"ambiguous design '{prefix}'"):
        resolve_design(prefix, searched)
