"""The archive as git history: one commit per accepted design, parent commit = parent design.

Commits are built with plumbing (hash-object, mktree, commit-tree), never through the
index, so several evaluations finishing close together cannot trample each other and
a user's checkout is never touched mid-run. ``refs/heads/best`` follows the best
design and HEAD points at it, so a plain ``git log`` and the work tree show the
current champion; ``git log --graph --all`` shows the whole tree.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path

BEST_REF = "refs/heads/best"
STORE_EXCLUDE = ".alma/"


class LineageError(Exception):
    """The designs repo cannot be created or written."""


@dataclass
class CommitInfo:
    design_id: str
    parent_design: str | None
    title: str
    rationale: str
    code: str
    meta: dict
    analysis_md: str
    trailers: dict[str, str]


class Lineage:
    def __init__(self, path: Path) -> None:
        import git  # GitPython: imported here, it costs ~0.1 s and the TUI may not need it

        self.path = Path(path)
        self._git_mod = git
        self._lock = threading.Lock()
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            if (self.path / ".git").exists():
                self.repo = git.Repo(self.path)
            else:
                self.repo = git.Repo.init(self.path)
                self.repo.git.symbolic_ref("HEAD", BEST_REF)
            exclude = Path(self.repo.git_dir) / "info" / "exclude"
            exclude.parent.mkdir(parents=True, exist_ok=True)
            text = exclude.read_text() if exclude.exists() else ""
            if STORE_EXCLUDE not in text.split():
                exclude.write_text(text + ("\n" if text and not text.endswith("\n") else "") + STORE_EXCLUDE + "\n")
        except (OSError, git.GitError) as exc:
            raise LineageError(f"cannot use {self.path} as a designs repo: {exc}") from exc

    def _g(self):  # type: ignore[no-untyped-def]
        return self.repo.git

    def commit_of(self, design_id: str) -> str | None:
        try:
            return self._g().rev_parse(f"refs/tags/design/{design_id}^{{commit}}")
        except self._git_mod.GitCommandError:
            return None

    def commit_design(self, info: CommitInfo, parent_commit: str | None) -> str:
        """Commit a design (idempotent: an existing tag for the id is returned as is)."""
        with self._lock:
            existing = self.commit_of(info.design_id)
            if existing:
                return existing
            g = self._g()
            blobs = {
                "design.py": info.code if info.code.endswith("\n") else info.code + "\n",
                "design.json": json.dumps(info.meta, indent=2, sort_keys=True, default=str) + "\n",
                "ANALYSIS.md": info.analysis_md if info.analysis_md.endswith("\n") else info.analysis_md + "\n",
            }
            entries = []
            for name, content in sorted(blobs.items()):
                sha = g.hash_object("-w", "--stdin", istream=_Stdin(content))
                entries.append(f"100644 blob {sha}\t{name}")
            tree = g.mktree(istream=_Stdin("\n".join(entries) + "\n"))
            message = f"{info.design_id}: {info.title}\n\n{info.rationale.strip()}\n\n" + "\n".join(
                f"{k}: {v}" for k, v in info.trailers.items()
            ) + "\n"
            args = ["commit-tree", tree]
            if parent_commit:
                args += ["-p", parent_commit]
            env = {
                "GIT_AUTHOR_NAME": "alma-tui", "GIT_AUTHOR_EMAIL": "alma-tui@localhost",
                "GIT_COMMITTER_NAME": "alma-tui", "GIT_COMMITTER_EMAIL": "alma-tui@localhost",
            }
            commit = g.execute(["git", *args], istream=_Stdin(message), env={**_base_env(), **env}).strip()
            g.tag(f"design/{info.design_id}", commit)
            return commit

    def set_best(self, commit: str) -> None:
        """Point the `best` branch (and so HEAD and the work tree) at the best design."""
        with self._lock:
            g = self._g()
            g.update_ref(BEST_REF, commit)
            g.read_tree("-u", "--reset", commit)

    def diff(self, parent_id: str, child_id: str) -> str:
        return self._g().diff(f"design/{parent_id}", f"design/{child_id}", "--", "design.py")


class _Stdin:
    """GitPython wants a file-like object with fileno or read for istream."""

    def __init__(self, text: str) -> None:
        import io
        import tempfile

        self._f = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as this object)
        self._f.write(text.encode())
        self._f.seek(0)
        self._io = io

    def fileno(self) -> int:
        return self._f.fileno()

    def read(self, *args: int) -> bytes:
        return self._f.read(*args)


def _base_env() -> dict[str, str]:
    import os

    return dict(os.environ)
