"""The archive as git history: one commit per accepted design, parent commit = parent design.

Commits are built with plumbing (hash-object, mktree, commit-tree), never through the
index, so several evaluations finishing close together cannot trample each other and
a user's checkout is never touched mid-run. ``refs/heads/best`` follows the best
design and HEAD points at it, so a plain ``git log`` and the work tree show the
current champion; ``git log --graph --all`` shows the whole tree.

The repo is the tool's, never the user's
-----------------------------------------
A lineage repo is marked by the ref ``refs/alma/lineage`` (``MARKER_REF``), which
points at a small blob saying so. A ref rather than a file or a commit: it is not
part of any tree or history (``git log --all`` and the work tree stay the archive
alone), ``git gc`` keeps it, and no checkout, reset or rebase moves it. Opening a
path for a search (``Lineage(path)``, or ``check_lineage_path`` without GitPython):

* missing or empty directory, or one holding only our ``.alma/`` store (and the
  work-tree files of a lineage whose ``.git`` was removed): a new lineage repo;
* a git repo with the marker: ours;
* a git repo without it whose every commit is by ``alma-tui@localhost`` (made by a
  version before the marker), or with no commit and no file: adopted, marker added;
* anything else (a clone of a project, a directory of the user's files): refused
  with one line saying why and what to do. Nothing is written to it.

The work tree and index are moved to the best design only when that loses nothing
(``set_best``): a work tree or index that differs from HEAD is left as it is and
HEAD is detached at the commit the edits were made on (``refs/alma/parked`` records
that we did it, so once the edits are gone a later run puts HEAD back on ``best``).

Git failures surface as ``LineageError`` with one line naming the command and, when
git names one (a lock file), the file.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BEST_REF = "refs/heads/best"
MARKER_REF = "refs/alma/lineage"
PARKED_REF = "refs/alma/parked"  # HEAD was detached here to keep a user's uncommitted edits
ORPHAN_PREFIX = "refs/alma/orphaned/"  # design tags that did not match the store, kept
STORE_EXCLUDE = ".alma/"
STORE_DIR = ".alma"
DESIGN_FILES = ("ANALYSIS.md", "design.json", "design.py")
AUTHOR_EMAIL = "alma-tui@localhost"
MARKER_TEXT = "alma-tui lineage repository: one commit per accepted design (see alma_tui/lineage.py)\n"


class LineageError(Exception):
    """The designs repo cannot be created or written (one line for the user)."""


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


@dataclass
class BestUpdate:
    """What ``set_best`` did: ``best`` always moves; the work tree only when nothing is lost."""

    commit: str
    worktree: bool  # HEAD, index and work tree now show the best design
    note: str = ""  # why they were left as they are
    dirty: list[str] = field(default_factory=list)  # paths with uncommitted changes that were kept


def git_error_line(exc: Any, repo: Path | None = None) -> str:
    """One line for a ``git.GitCommandError``: the command and what git complained about."""
    cmd = exc.command if isinstance(exc.command, list | tuple) else str(exc.command).split()
    words = [str(w) for w in cmd]
    if words and os.path.basename(words[0]) == "git":
        words[0] = "git"
    words = [w[:12] if re.fullmatch(r"[0-9a-f]{40}", w) else w for w in words[:5]]
    shown = " ".join(words)
    raw = str(exc.stderr or "")
    m = re.search(r"stderr: '(.*)'", raw, re.S)
    text = m.group(1) if m else raw
    where = f" in {repo}" if repo is not None else ""
    lock = re.search(r"Unable to create '([^']+)': File exists", text)
    if lock:
        return (
            f"`{shown}` failed{where}: {lock.group(1)} exists (another git process is using the repo, "
            "or one died and left it; remove the file if none is running)"
        )
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    key = next((ln for ln in lines if ln.startswith(("fatal:", "error:"))), lines[-1] if lines else "")
    return f"`{shown}` failed{where}: {key or f'exit code {exc.status}'}"


def _git_out(path: Path, *args: str) -> tuple[int, str]:
    """Plain git (no GitPython: the TUI path checks a repo before importing it)."""
    # never discover a repository above ``path`` (a designs_repo inside the user's project)
    env = {
        **os.environ,
        "GIT_TERMINAL_PROMPT": "0",
        "LC_ALL": "C",
        "GIT_CEILING_DIRECTORIES": str(Path(path).resolve().parent),
    }
    cp = subprocess.run(["git", "-C", str(path), *args], capture_output=True, text=True, env=env)
    return cp.returncode, cp.stdout if cp.returncode == 0 else cp.stderr


def check_lineage_path(path: Path) -> str | None:
    """Why ``path`` must not be used as a lineage repo (one line), or None when it may be.

    Read-only: nothing is created or written, so a refused path is left exactly as it was.
    """
    path = Path(path)
    if not path.exists():
        return None
    if not path.is_dir():
        return f"cannot use {path} as a designs repo: it is not a directory"
    dot_git = path / ".git"
    entries = sorted(e.name for e in path.iterdir())
    if not dot_git.exists():
        foreign = [e for e in entries if e not in (STORE_DIR, *DESIGN_FILES)]
        if foreign or (entries and STORE_DIR not in entries):
            shown = foreign or entries
            return (
                f"{path} is not empty ({len(entries)} entries, e.g. {shown[0]}) and not an alma-tui lineage; "
                "alma-tui keeps its lineage in a repository of its own: use --repo PATH for a new or "
                "empty directory"
            )
        return None
    rc, top = _git_out(path, "rev-parse", "--show-toplevel")
    if rc != 0:
        return (
            f"{dot_git} is not a usable git repository ({top.strip().splitlines()[-1] if top.strip() else 'git'}"
            f"); move it away and alma-tui recreates the lineage from its store"
        )
    rc, _ = _git_out(path, "rev-parse", "--verify", "-q", MARKER_REF)
    if rc == 0:
        return None
    rc, out = _git_out(path, "log", "--all", "--format=%ae")
    authors = out.split() if rc == 0 else []
    if authors:
        if set(authors) == {AUTHOR_EMAIL}:
            return None  # a lineage made before the marker existed
        return (
            f"{path} is a git repository with unrelated history ({len(authors)} commits); alma-tui keeps its "
            "lineage in a repository of its own: use --repo PATH for a new one"
        )
    rc, out = _git_out(path, "ls-files")
    tracked = out.split() if rc == 0 else []
    foreign = tracked or [e for e in entries if e not in (".git", STORE_DIR)]
    if foreign:
        return (
            f"{path} is a git repository with files of its own ({len(foreign)}, e.g. {foreign[0]}); alma-tui "
            "keeps its lineage in a repository of its own: use --repo PATH for a new one"
        )
    return None


@contextlib.contextmanager
def _dir_lock(path: Path) -> Iterator[None]:
    """Serialise opening/creating one repo across processes (two runs started at once)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _blob_sha(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()  # git's object id


Parents = str | None | list[str] | tuple[str, ...]


def _parent_list(parents: Parents) -> list[str]:
    """A design's parent commits: none (a seed), one, or two (a merge child: a git merge commit)."""
    if parents is None:
        return []
    if isinstance(parents, str):
        return [parents]
    return [p for p in parents if p]


def _normalise(text: str) -> str:
    return text if text.endswith("\n") else text + "\n"


class Lineage:
    def __init__(self, path: Path) -> None:
        import git  # GitPython: imported here, it costs ~0.1 s and the TUI may not need it

        self.path = Path(path)
        self._git_mod = git
        self._lock = threading.Lock()
        self.created = False  # True when this open made a new repo (none was there)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            with _dir_lock(self.path):
                reason = check_lineage_path(self.path)
                if reason:
                    raise LineageError(reason)
                if (self.path / ".git").exists():
                    self.repo = git.Repo(self.path)
                else:
                    self.repo = git.Repo.init(self.path)
                    self.repo.git.symbolic_ref("HEAD", BEST_REF)
                    self.created = True
                if self._rev(MARKER_REF) is None:
                    blob = self.repo.git.hash_object("-w", "--stdin", istream=_Stdin(MARKER_TEXT))
                    self.repo.git.update_ref(MARKER_REF, blob)
                exclude = Path(self.repo.git_dir) / "info" / "exclude"
                exclude.parent.mkdir(parents=True, exist_ok=True)
                text = exclude.read_text() if exclude.exists() else ""
                if STORE_EXCLUDE not in text.split():
                    exclude.write_text(text + ("\n" if text and not text.endswith("\n") else "") + STORE_EXCLUDE + "\n")
        except git.GitCommandError as exc:
            raise LineageError(git_error_line(exc, self.path)) from exc
        except (OSError, git.GitError) as exc:
            raise LineageError(f"cannot use {self.path} as a designs repo: {exc}") from exc

    def _g(self) -> Any:
        return self.repo.git

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except self._git_mod.GitCommandError as exc:
            raise LineageError(git_error_line(exc, self.path)) from exc

    def _rev(self, rev: str) -> str | None:
        try:
            return self._g().rev_parse("--verify", "-q", rev) or None
        except self._git_mod.GitCommandError:
            return None

    # -- reading ----------------------------------------------------------------------------------
    def commit_of(self, design_id: str) -> str | None:
        return self._rev(f"refs/tags/design/{design_id}^{{commit}}")

    def design_tags(self) -> dict[str, str]:
        """Design id -> commit of every ``design/<id>`` tag."""
        with self._errors():
            out = self._g().for_each_ref(
                "--format=%(refname:strip=3) %(objectname) %(*objectname)", "refs/tags/design/"
            )
        tags = {}
        for line in out.splitlines():
            parts = line.split()
            if len(parts) >= 2:
                tags[parts[0]] = parts[-1]  # the peeled commit of an annotated tag comes last
        return tags

    def read_file(self, commit: str, name: str) -> str | None:
        try:
            return self._g().cat_file("-p", f"{commit}:{name}", strip_newline_in_stdout=False)
        except self._git_mod.GitCommandError:
            return None

    def parents_of(self, commit: str) -> list[str]:
        with self._errors():
            return self._g().rev_list("--parents", "-n1", commit).split()[1:]

    def mismatch(self, commit: str, code: str, parent_commit: Parents) -> str | None:
        """Why ``commit`` is not the design with ``code`` on ``parent_commit`` (None when it is);
        a merge design's two parent commits must match in order."""
        if self.read_file(commit, "design.py") != _normalise(code):
            return "other code"
        if self.parents_of(commit) != _parent_list(parent_commit):
            return "another parent commit"
        return None

    def matches_if_present(self, commit: str, code: str, parent_commit: Parents) -> bool:
        """``matches`` for a commit that may not be in the repo (False then)."""
        return self._rev(f"{commit}^{{commit}}") is not None and self.matches(commit, code, parent_commit)

    def matches(self, commit: str, code: str, parent_commit: Parents) -> bool:
        """True when ``commit`` holds ``code`` as design.py and has exactly those parents."""
        return self.mismatch(commit, code, parent_commit) is None

    def diff(self, parent_id: str, child_id: str) -> str:
        with self._errors():
            return self._g().diff(f"design/{parent_id}", f"design/{child_id}", "--", "design.py")

    # -- writing ----------------------------------------------------------------------------------
    def commit_design(self, info: CommitInfo, parent_commit: Parents) -> str:
        """Commit a design (idempotent: an existing tag holding the same code and parent is returned).

        A merge design has two parent commits (first parent first): its commit is a git merge
        commit, so ``git log --graph`` shows both lines meeting. An existing tag with other code
        or other parents is another design: refused, never taken."""
        with self._lock, self._errors():
            existing = self.commit_of(info.design_id)
            if existing:
                why = self.mismatch(existing, info.code, parent_commit)
                if why is None:
                    return existing
                raise LineageError(
                    f"tag design/{info.design_id} in {self.path} already holds another design (commit "
                    f"{existing[:8]} has {why}); run `alma-tui repair --repo {self.path}`"
                )
            g = self._g()
            blobs = {
                "design.py": _normalise(info.code),
                "design.json": json.dumps(info.meta, indent=2, sort_keys=True, default=str) + "\n",
                "ANALYSIS.md": _normalise(info.analysis_md),
            }
            entries = []
            for name, content in sorted(blobs.items()):
                sha = g.hash_object("-w", "--stdin", istream=_Stdin(content))
                entries.append(f"100644 blob {sha}\t{name}")
            tree = g.mktree(istream=_Stdin("\n".join(entries) + "\n"))
            message = (
                f"{info.design_id}: {info.title}\n\n{info.rationale.strip()}\n\n"
                + "\n".join(f"{k}: {v}" for k, v in info.trailers.items())
                + "\n"
            )
            args = ["commit-tree", tree]
            for p in _parent_list(parent_commit):
                args += ["-p", p]
            env = {
                "GIT_AUTHOR_NAME": "alma-tui",
                "GIT_AUTHOR_EMAIL": AUTHOR_EMAIL,
                "GIT_COMMITTER_NAME": "alma-tui",
                "GIT_COMMITTER_EMAIL": AUTHOR_EMAIL,
            }
            commit = g.execute(["git", *args], istream=_Stdin(message), env={**_base_env(), **env}).strip()
            g.tag(f"design/{info.design_id}", commit)
            return commit

    def retag(self, design_id: str, commit: str) -> bool:
        """Tag an existing commit as ``design/<id>``; False when the commit is not in the repo."""
        if self._rev(f"{commit}^{{commit}}") is None:
            return False
        with self._lock, self._errors():
            self._g().tag(f"design/{design_id}", commit)
        return True

    def orphan_tag(self, design_id: str) -> str:
        """Move ``design/<id>`` aside to ``refs/alma/orphaned/<id>-<sha8>`` (kept, not deleted)."""
        with self._lock, self._errors():
            commit = self.commit_of(design_id)
            assert commit is not None
            ref = f"{ORPHAN_PREFIX}{design_id}-{commit[:8]}"
            self._g().update_ref(ref, commit)
            self._g().update_ref("-d", f"refs/tags/design/{design_id}")
            return ref

    def remove_stale_locks(self) -> list[Path]:
        """Delete ``*.lock`` files git left behind (index, HEAD, refs). Call only while holding the engine
        lock: then no alma-tui process is writing here, and a lock file is what a killed one left."""
        git_dir = Path(self.repo.git_dir)
        found = [p for p in git_dir.glob("*.lock") if p.is_file()]
        for sub in ("refs", "logs"):
            if (git_dir / sub).is_dir():
                found += [p for p in (git_dir / sub).rglob("*.lock") if p.is_file()]
        removed = []
        for p in sorted(found):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
                removed.append(p)
        return removed

    def set_best(self, commit: str) -> BestUpdate:
        """Point ``best`` at the best design; HEAD, index and work tree follow only when nothing is lost.

        The work tree is "clean" when every path of HEAD, the index and the best design has the same
        content in the index and the work tree as in HEAD (files of the best design that are already
        there with the right content count as clean). ``.alma/`` and other untracked files that the
        best design does not hold are never touched."""
        with self._lock, self._errors():
            g = self._g()
            try:
                head_ref = g.symbolic_ref("-q", "HEAD")
            except self._git_mod.GitCommandError:
                head_ref = None  # detached
            old = self._rev("HEAD")
            parked = self._rev(PARKED_REF)
            dirty = self._dirty(old, commit)
            if head_ref == BEST_REF and dirty and old is not None and old != commit:
                # keep HEAD where the edits were made, so `git diff` shows only them, not the designs' change
                g.update_ref("--no-deref", "HEAD", old)
                g.update_ref(PARKED_REF, old)
            g.update_ref(BEST_REF, commit)
            note = f"work tree has uncommitted changes ({', '.join(dirty)}); left as is"
            if head_ref != BEST_REF:
                if head_ref is not None or old is None or old != parked:
                    where = head_ref.removeprefix("refs/heads/") if head_ref else f"detached at {(old or '')[:8]}"
                    return BestUpdate(commit, False, f"HEAD is not on the best branch ({where}); left as is")
                if dirty:  # still parked for the user's edits
                    return BestUpdate(commit, False, note, dirty)
                g.symbolic_ref("HEAD", BEST_REF)  # we parked HEAD for edits that are gone now
            elif dirty:
                if old is None and not g.ls_files():  # unborn HEAD (a recreated repo): the index takes
                    g.read_tree("--reset", commit)  # the best design, the work tree stays, edits show as diffs
                return BestUpdate(commit, False, note, dirty)
            g.read_tree("-u", "--reset", commit)
            with contextlib.suppress(self._git_mod.GitCommandError):
                g.update_index("-q", "--refresh")  # fresh stat data: no phantom diff for `git diff-files`
            if parked:
                g.update_ref("-d", PARKED_REF)
            return BestUpdate(commit, True)

    def _dirty(self, head: str | None, target: str) -> list[str]:
        """Paths whose index or work-tree content would be lost by ``read-tree -u --reset target``."""
        g = self._g()

        def tree(rev: str | None) -> dict[str, str]:
            if rev is None:
                return {}
            out = g.ls_tree("-r", "-z", rev)
            res = {}
            for item in out.split("\0"):
                if "\t" in item:
                    meta, name = item.split("\t", 1)
                    res[name] = meta.split()[2]
            return res

        index: dict[str, str] = {}
        for item in g.ls_files("-s", "-z").split("\0"):
            if "\t" in item:
                meta, name = item.split("\t", 1)
                _mode, sha, stage = meta.split()
                index[name] = sha if stage == "0" else "conflict"
        head_tree, target_tree = tree(head), tree(target)
        dirty = []
        for name in sorted(set(head_tree) | set(index) | set(target_tree)):
            if name == STORE_DIR or name.startswith(STORE_EXCLUDE):
                continue
            p = self.path / name
            work = _blob_sha(p.read_bytes()) if p.is_file() and not p.is_symlink() else None
            h, i, t = head_tree.get(name), index.get(name), target_tree.get(name)
            if work == h and i == h:
                continue  # clean relative to HEAD
            if work == t and i in (h, t):
                continue  # already holds the best design's content: nothing to lose
            dirty.append(name)
        return dirty


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
    return dict(os.environ)


def design_tag_count(path: Path) -> int:
    """How many ``design/<id>`` tags the repo at ``path`` holds (0 when it is not a git repo)."""
    if not (Path(path) / ".git").exists():
        return 0
    rc, out = _git_out(Path(path), "for-each-ref", "--format=%(refname)", "refs/tags/design/")
    return len(out.split()) if rc == 0 else 0
