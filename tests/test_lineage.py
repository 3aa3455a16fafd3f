"""The archive as git: commit parents are design parents; tags and the best branch."""

from __future__ import annotations

import subprocess
from pathlib import Path

from alma_tui.lineage import CommitInfo, Lineage


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


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


def test_commits_follow_design_parents(tmp_path: Path) -> None:
    lin = Lineage(tmp_path / "r")
    a = lin.commit_design(_info("d001", None, "a = 1\n"), None)
    b = lin.commit_design(_info("d003", "d001", "a = 2\n"), a)
    c = lin.commit_design(_info("d004", "d001", "a = 3\n"), a)
    assert git(tmp_path / "r", "rev-list", "--parents", "-n1", b).split() == [b, a]
    assert git(tmp_path / "r", "rev-list", "--parents", "-n1", c).split() == [c, a]
    assert git(tmp_path / "r", "rev-list", "--parents", "-n1", a).split() == [a]
    assert lin.commit_of("d003") == b
    assert "+a = 2" in lin.diff("d001", "d003")
    files = git(tmp_path / "r", "ls-tree", "--name-only", b).split()
    assert files == ["ANALYSIS.md", "design.json", "design.py"]
    assert "Design-Id: d003" in git(tmp_path / "r", "log", "-1", "--format=%B", b)


def test_commit_is_idempotent(tmp_path: Path) -> None:
    lin = Lineage(tmp_path / "r")
    a = lin.commit_design(_info("d001", None, "x = 1\n"), None)
    assert lin.commit_design(_info("d001", None, "x = 1\n"), None) == a
    assert git(tmp_path / "r", "rev-list", "--all", "--count").strip() == "1"


def test_best_branch_and_store_excluded(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    lin = Lineage(repo)
    (repo / ".alma").mkdir()
    (repo / ".alma" / "alma.db").write_text("x")
    a = lin.commit_design(_info("d001", None, "x = 1\n"), None)
    lin.set_best(a)
    assert git(repo, "rev-parse", "HEAD").strip() == a
    assert (repo / "design.py").read_text() == "x = 1\n"
    assert git(repo, "status", "--porcelain").strip() == ""
