"""The lineage repo is the tool's, the user's files are the user's; store and git stay in agreement.

Each case here was found by fault injection: a clone used as --repo, a hand edit in the
work tree, a 0-byte store, deleted tags, stale git lock files, a deleted .git, two runs
started at once.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from alma_tui.cli import main
from alma_tui.engine.config import SearchConfig
from alma_tui.engine.evaluator import EvalSettings
from alma_tui.lineage import MARKER_REF, CommitInfo, Lineage, LineageError
from alma_tui.store import Store
from alma_tui.store.models import Design, Run
from tests.conftest import TINY


def git(repo: Path, *args: str, check: bool = True) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=check).stdout


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under root (the .git directory included), byte for byte."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def one_line(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _info(did: str, parent: str | None, code: str) -> CommitInfo:
    return CommitInfo(
        did,
        parent,
        f"title {did}",
        "why",
        code,
        {"id": did, "parent": parent},
        "# analysis",
        {"Design-Id": did, "Parent-Design": parent or "none"},
    )


def build_archive(repo: Path) -> dict[str, dict]:
    """A finished search without evaluating anything: store rows, then the lineage made from them."""
    from alma_tui.designs import builtin_source
    from alma_tui.engine.reconcile import reconcile

    cfg = SearchConfig(repo=repo, eval=EvalSettings(n_collection=4, n_deployment=4, runs=2, concurrency=2))
    store = Store(repo)
    run = Run(
        domain="household",
        meta_model="offline/meta",
        agent_model="offline/agent",
        iterations_target=2,
        iterations_done=2,
        status="done",
        settings_json=cfg.to_json(),
        no_memory_score=0.25,
    )
    store.add(run)
    rows = [
        ("d001", None, 0, "builtin", builtin_source("no_memory"), "accepted", 0.25),
        ("d002", None, 0, "builtin", builtin_source("trajectory_retrieval"), "accepted", 0.5),
        ("d003", "d002", 1, "meta", "# d003\nX = 3\n", "accepted", 0.75),
        ("d004", "d003", 2, "meta", "# d004\nX = 4\n", "accepted", 0.625),
        ("d005", "d001", 2, "meta", "# d005 broken\n", "rejected", None),
    ]
    for seq, (did, parent, it, origin, code, status, score) in enumerate(rows, 1):
        store.add(
            Design(
                id=did,
                run_id=run.id,
                seq=seq,
                parent_id=parent,
                iteration=it,
                origin=origin,
                title=f"design {did}",
                code=code,
                status=status,
                score=score,
                score_se=0.01,
                run_scores_json=json.dumps([score, score] if score is not None else []),
            )
        )
    lineage = Lineage(repo)
    reconcile(store, lineage, store.get_run())
    best = store.get_design("d003")
    assert best is not None and best.commit
    lineage.set_best(best.commit)
    out = {r["id"]: r for r in _rows(store)}
    store.close()
    return out


def _rows(store: Store) -> list[dict]:
    from alma_tui.archive_rows import design_rows

    return design_rows(store)


def designs_json(repo: Path, capsys: pytest.CaptureFixture[str]) -> list[dict]:
    capsys.readouterr()
    assert main(["designs", "--repo", str(repo), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    repo = tmp_path / "designs_repo"
    build_archive(repo)
    return repo


# -- the repo is the user's -----------------------------------------------------------------------
def test_clone_with_uncommitted_edit_is_refused_and_untouched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "project"
    src.mkdir()
    git(src, "init", "-q")
    for i in range(3):
        (src / f"f{i}.txt").write_text(f"file {i}\n")
        (src / "README.md").write_text(f"readme v{i}\n")
        git(src, "add", "-A")
        git(src, "-c", "user.name=u", "-c", "user.email=u@x", "commit", "-qm", f"c{i}")
    clone = tmp_path / "X"
    subprocess.run(["git", "clone", "-q", str(src), str(clone)], check=True)
    with open(clone / "README.md", "a") as fh:
        fh.write("edit\n")
    before = snapshot(clone)
    assert main(["run", "--headless", "--repo", str(clone), "--iterations", "1", *TINY]) == 1
    line = one_line(capsys.readouterr().err)
    assert "unrelated history (3 commits)" in line and "--repo PATH" in line
    assert snapshot(clone) == before  # work tree, index, refs: byte-identical, no .alma either


def test_directory_with_files_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "notes"
    target.mkdir()
    (target / "todo.txt").write_text("mine\n")
    assert main(["run", "--headless", "--repo", str(target), "--iterations", "0", *TINY]) == 1
    line = one_line(capsys.readouterr().err)
    assert "not empty" in line and "todo.txt" in line and "--repo PATH" in line
    assert sorted(p.name for p in target.iterdir()) == ["todo.txt"]


def test_git_repo_with_only_files_is_refused_but_an_empty_one_is_adopted(tmp_path: Path) -> None:
    busy = tmp_path / "busy"
    busy.mkdir()
    git(busy, "init", "-q")
    (busy / "main.c").write_text("int main;\n")
    with pytest.raises(LineageError, match="files of its own"):
        Lineage(busy)
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q")
    Lineage(empty)
    assert git(empty, "rev-parse", "--verify", "-q", MARKER_REF).strip()  # marked as ours


def test_clean_work_tree_follows_best_without_phantom_diff(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    lin = Lineage(repo)
    a = lin.commit_design(_info("d001", None, "a = 1\n"), None)
    b = lin.commit_design(_info("d002", "d001", "a = 2\n"), a)
    (repo / "notes.txt").write_text("untracked, not ours\n")
    assert lin.set_best(a).worktree
    update = lin.set_best(b)
    assert update.worktree and not update.note
    assert (repo / "design.py").read_text() == "a = 2\n"
    assert git(repo, "symbolic-ref", "HEAD").strip() == "refs/heads/best"
    assert git(repo, "rev-parse", "HEAD").strip() == b
    assert subprocess.run(["git", "-C", str(repo), "diff-files", "--quiet"]).returncode == 0
    assert git(repo, "status", "--porcelain").strip() == "?? notes.txt"
    assert (repo / "notes.txt").read_text() == "untracked, not ours\n"


def test_dirty_work_tree_is_kept_and_head_parked_then_restored(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    lin = Lineage(repo)
    a = lin.commit_design(_info("d001", None, "a = 1\n"), None)
    b = lin.commit_design(_info("d002", "d001", "a = 2\n"), a)
    lin.set_best(a)
    (repo / "design.py").write_text("a = 1  # my edit\n")
    update = lin.set_best(b)
    assert not update.worktree and update.dirty == ["design.py"]
    assert "uncommitted changes (design.py)" in update.note
    assert (repo / "design.py").read_text() == "a = 1  # my edit\n"
    assert git(repo, "rev-parse", "best").strip() == b  # best moves anyway
    assert git(repo, "rev-parse", "HEAD").strip() == a  # HEAD stays where the edit was made
    assert git(repo, "diff", "--stat").strip().startswith("design.py | 2")  # only the user's edit shows
    (repo / "design.py").write_text("a = 1\n")  # the user drops the edit: the next update moves on
    assert lin.set_best(b).worktree
    assert git(repo, "symbolic-ref", "HEAD").strip() == "refs/heads/best"
    assert (repo / "design.py").read_text() == "a = 2\n"


def test_hand_edit_survives_a_resume_and_is_reported(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--headless", "--repo", str(repo), "--iterations", "0", *TINY]) == 0
    edited = (repo / "design.py").read_text() + "# my experiment\n"
    (repo / "design.py").write_text(edited)
    index = (repo / ".git" / "index").read_bytes()
    capsys.readouterr()
    assert main(["run", "--headless", "--repo", str(repo), "--iterations", "0"]) == 0
    out = capsys.readouterr().out
    assert "work tree has uncommitted changes (design.py); left as is, best design is d00" in out
    assert (repo / "design.py").read_text() == edited
    assert (repo / ".git" / "index").read_bytes() == index


# -- store and lineage agree ----------------------------------------------------------------------
def test_zero_byte_store_is_refused_then_repair_rebuilds_it(archive: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = designs_json(archive, capsys)
    tags = git(archive, "tag")
    for f in (archive / ".alma").glob("alma.db*"):
        f.unlink()
    (archive / ".alma" / "alma.db").write_bytes(b"")
    assert main(["designs", "--repo", str(archive), "--json"]) == 1
    assert "the store is empty but the lineage holds 4 designs" in capsys.readouterr().err
    assert main(["run", "--headless", "--repo", str(archive), "--iterations", "3", *TINY]) == 1
    line = one_line(capsys.readouterr().err)
    assert line.endswith(
        f"the store is empty but the lineage holds 4 designs; rebuild the archive with "
        f"`alma-tui repair --repo {archive}`"
    )
    assert git(archive, "tag") == tags  # nothing was started over the old history
    assert main(["repair", "--repo", str(archive)]) == 0
    out = capsys.readouterr().out
    assert "d003: restored from design/d003" in out and "parent d002, score 0.750" in out
    after = designs_json(archive, capsys)
    accepted = [r for r in before if r["status"] == "accepted"]
    keys = ("id", "parent", "title", "score", "score_se", "status", "commit", "iteration", "origin")
    assert [{k: r[k] for k in keys} for r in after] == [{k: r[k] for k in keys} for r in accepted]
    assert {r["id"]: r["visits"] for r in after}["d002"] == 1  # one child in the lineage
    run = Store(archive, create=False).get_run()
    assert run is not None and run.iterations_done == 2 and run.no_memory_score == 0.25
    assert json.loads(run.settings_json)["eval"]["n_collection"] == 4  # the score-defining settings are back
    assert main(["repair", "--repo", str(archive)]) == 0
    assert capsys.readouterr().out.startswith("nothing to repair")
    assert main(["run", "--headless", "--repo", str(archive), "--iterations", "2"]) == 0  # resumes, same flags


def test_deleted_tag_and_stale_lock_are_repaired_on_start(archive: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d003 = git(archive, "rev-parse", "design/d003").strip()
    git(archive, "tag", "-d", "design/d003")
    lock = archive / ".git" / "refs" / "tags" / "design" / "d003.lock"
    lock.write_text("")
    index_lock = archive / ".git" / "index.lock"
    index_lock.write_text("")
    assert main(["run", "--headless", "--repo", str(archive), "--iterations", "2"]) == 0
    out = capsys.readouterr().out
    assert f"removed a stale git lock file {lock}" in out.replace("\n", "")
    assert f"removed a stale git lock file {index_lock}" in out.replace("\n", "")
    assert f"design/d003 was missing; tagged its commit {d003[:8]} again" in out
    assert git(archive, "rev-parse", "design/d003").strip() == d003
    assert not lock.exists() and not index_lock.exists()


def test_lost_commit_is_committed_again_on_its_parent(archive: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = designs_json(archive, capsys)
    store = Store(archive, create=False)
    store.update_design("d004", commit="0" * 40)  # the store remembers a commit git no longer has
    store.close()
    git(archive, "tag", "-d", "design/d004")
    assert main(["repair", "--repo", str(archive)]) == 0
    assert "d004: committed from the store as" in capsys.readouterr().out
    d004 = git(archive, "rev-parse", "design/d004").strip()
    assert git(archive, "rev-list", "--parents", "-n1", d004).split()[1:] == [
        next(r["commit"] for r in before if r["id"] == "d003")
    ]
    assert git(archive, "show", "design/d004:design.py") == "# d004\nX = 4\n"
    assert next(r["commit"] for r in designs_json(archive, capsys) if r["id"] == "d004") == d004


def test_tag_with_other_code_is_not_taken(archive: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wrong = git(archive, "rev-parse", "design/d001").strip()
    git(archive, "tag", "-f", "design/d003", wrong)  # design/d003 now holds d001's code
    assert main(["repair", "--repo", str(archive)]) == 0
    out = capsys.readouterr().out
    assert (
        f"design/d003 ({wrong[:8]}) has other code than the store's d003; kept it as "
        f"refs/alma/orphaned/d003-{wrong[:8]}" in out.replace("\n", "")
    )
    assert git(archive, "show", "design/d003:design.py") == "# d003\nX = 3\n"
    assert git(archive, "rev-parse", f"refs/alma/orphaned/d003-{wrong[:8]}").strip() == wrong


def test_commit_design_refuses_an_existing_tag_with_other_code(tmp_path: Path) -> None:
    lin = Lineage(tmp_path / "r")
    lin.commit_design(_info("d001", None, "x = 1\n"), None)
    with pytest.raises(LineageError, match=r"tag design/d001 .* already holds another design .*other code"):
        lin.commit_design(_info("d001", None, "x = 2\n"), None)


def test_deleted_git_dir_is_recreated_from_the_store(archive: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = {r["id"]: r for r in designs_json(archive, capsys)}
    work = (archive / "design.py").read_text()
    shutil.rmtree(archive / ".git")
    assert main(["run", "--headless", "--repo", str(archive), "--iterations", "2"]) == 0
    assert (
        f"the lineage repo {archive / '.git'} was missing; recreating it from the store (4 accepted designs)"
        in capsys.readouterr().out.replace("\n", "")
    )
    after = {r["id"]: r for r in designs_json(archive, capsys)}
    for did in ("d001", "d002", "d003", "d004"):
        commit = git(archive, "rev-parse", f"design/{did}").strip()
        assert after[did]["commit"] == commit  # (the same id when committed in the same second)
        parent = before[did]["parent"]
        assert git(archive, "rev-list", "--parents", "-n1", commit).split()[1:] == (
            [after[parent]["commit"]] if parent else []
        )
    assert (archive / "design.py").read_text() == work
    assert git(archive, "symbolic-ref", "HEAD").strip() == "refs/heads/best"
    assert git(archive, "status", "--porcelain").strip() == ""


def test_git_failure_is_one_line_naming_the_lock_file(tmp_path: Path) -> None:
    lin = Lineage(tmp_path / "r")
    lock = tmp_path / "r" / ".git" / "refs" / "tags" / "design" / "d001.lock"
    lock.parent.mkdir(parents=True)
    lock.write_text("")
    with pytest.raises(LineageError) as err:
        lin.commit_design(_info("d001", None, "x = 1\n"), None)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("`git tag design/d001") and f"{lock} exists" in msg


def test_runs_started_at_once_on_a_new_repo_all_open_it(tmp_path: Path) -> None:
    repo = tmp_path / "new"
    start = time.time() + 1.0
    code = (
        "import sys, time; from alma_tui.lineage import Lineage\n"
        f"time.sleep(max(0.0, {start} - time.time())); Lineage(sys.argv[1])\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(repo)], stderr=subprocess.PIPE, text=True) for _ in range(6)
    ]
    results = [(p.wait(timeout=60), p.stderr.read() if p.stderr else "") for p in procs]
    assert all(rc == 0 for rc, _ in results), results
    assert git(repo, "symbolic-ref", "HEAD").strip() == "refs/heads/best"
    assert os.listdir(repo) == [".git"]


def test_store_from_an_older_release_gains_new_columns_and_keeps_its_rows(
    archive: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A column added by a newer release must not make an existing archive unreadable:
    opening the store (read-only commands included) adds it, and every row survives."""
    import sqlite3

    from alma_tui.store.db import db_path

    before = designs_json(archive, capsys)
    con = sqlite3.connect(db_path(archive))
    con.execute("ALTER TABLE design DROP COLUMN score_se")  # what an older release wrote
    con.execute("ALTER TABLE run DROP COLUMN status_detail")
    con.commit()
    con.close()

    after = designs_json(archive, capsys)  # `designs --json` opens the store read-only
    assert [d["id"] for d in after] == [d["id"] for d in before]
    assert [d["score"] for d in after] == [d["score"] for d in before]
    con = sqlite3.connect(db_path(archive))
    assert "score_se" in {r[1] for r in con.execute("PRAGMA table_info(design)")}
    assert "status_detail" in {r[1] for r in con.execute("PRAGMA table_info(run)")}
    con.close()


def test_older_store_on_a_read_only_copy_is_one_clear_line(
    archive: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    import alma_tui.store.db as db

    con = sqlite3.connect(db.db_path(archive))
    con.execute("ALTER TABLE design DROP COLUMN score_se")
    con.commit()
    con.close()
    # a read-only mount, as seen by os.access (root ignores file modes, so chmod cannot show it)
    monkeypatch.setattr(db.os, "access", lambda p, mode: not (mode & os.W_OK))
    assert main(["designs", "--repo", str(archive)]) == 1
    err = capsys.readouterr().err
    assert "older alma-tui" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
