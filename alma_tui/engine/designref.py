"""What a design named on the command line is: one resolver for `eval` and `compare`.

A user names a design the way they see it: a built-in baseline (``reasoning_bank``), an
archive id (``d007``, or ``7``), ``best`` (the archive's best, the same one the CLI, the
TUI and the ``best`` branch mark: :func:`alma_tui.archive_rows.best_id`), a git rev of the
lineage repo (``design/d004``, a commit, ``best~1``) or a ``.py`` file. Each resolves to its
source code, which is what gets evaluated (in the sandbox: designs are untrusted code).
An unknown or ambiguous name is a :class:`DesignRefError` with one line saying why.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from alma_tui.archive_rows import best_id
from alma_tui.designs import BUILTIN, builtin_source

__all__ = ["BEST", "DesignRef", "DesignRefError", "code_hash", "resolve_design"]

#: the archive's best design
BEST = "best"


class DesignRefError(ValueError):
    """A design reference that names nothing, or more than one thing (one line for the user)."""


@dataclass(frozen=True)
class DesignRef:
    label: str  # what tables show: the name, the archive id ("d005 (best)"), the rev or the path
    code: str
    kind: str  # builtin | archive | rev | file

    @property
    def code_hash(self) -> str:
        return code_hash(self.code)


def code_hash(code: str) -> str:
    """The design's identity for stored results: its exact source (a changed file is another design)."""
    return hashlib.sha256(code.encode("utf-8")).hexdigest()


def resolve_design(ref: str, repo: Path) -> DesignRef:
    """The design ``ref`` names, looked up in this order: a ``.py`` file, a built-in name,
    ``best``, an archive id in ``repo``'s store, a git rev of ``repo``'s lineage."""
    ref = ref.strip()
    if not ref:
        raise DesignRefError("an empty design name")
    path = Path(ref).expanduser()
    if ref.endswith(".py"):
        if not path.is_file():
            raise DesignRefError(f"no such design file: {ref}")
        try:
            return DesignRef(str(path), path.read_text(encoding="utf-8"), "file")
        except (OSError, UnicodeDecodeError) as exc:
            raise DesignRefError(f"cannot read design file {ref}: {exc}") from exc
    if ref in BUILTIN:
        return DesignRef(ref, builtin_source(ref), "builtin")
    found = _from_store(ref, repo)
    if found is not None:
        return found
    if ref == BEST:
        raise DesignRefError(f"`best` needs a search with an accepted design in {repo} (none found there)")
    found = _from_git(ref, repo)
    if found is not None:
        return found
    raise DesignRefError(
        f"unknown design {ref!r}: not a .py file, built-in ({', '.join(BUILTIN)}), `best`, "
        f"archive id or git rev in {repo}"
    )


def _from_store(ref: str, repo: Path) -> DesignRef | None:
    from alma_tui.store import StoreError
    from alma_tui.store.db import Store, StoreEmpty, db_path

    if not db_path(repo).exists():
        return None
    try:
        store = Store(repo, create=False, readonly=True)
    except StoreEmpty:
        return None
    except StoreError as exc:
        raise DesignRefError(str(exc)) from exc
    try:
        if ref == BEST:
            bid = best_id(store.designs())
            d = store.get_design(bid) if bid else None
            return DesignRef(f"{d.id} (best)", d.code, "archive") if d is not None and d.code else None
        d = store.resolve_design(ref)
        if d is None:
            return None
        if not d.code:
            raise DesignRefError(f"design {d.id} in {repo} has no code yet ({d.status})")
        return DesignRef(d.id, d.code, "archive")
    finally:
        store.close()


def _from_git(ref: str, repo: Path) -> DesignRef | None:
    """``design/<ref>`` (an archive id whose store is gone) first, then ``ref`` as any rev."""
    if ref.startswith("-") or not (repo / ".git").exists():  # never an option to git
        return None
    import git

    try:
        g = git.Repo(repo).git
    except (git.GitError, OSError):  # a broken .git: not a design either way
        return None
    for rev in (f"refs/tags/design/{ref}", ref):
        try:
            commit = g.rev_parse("--verify", f"{rev}^{{commit}}")
        except git.GitCommandError as exc:
            if "ambiguous" in str(exc.stderr):
                raise DesignRefError(
                    f"ambiguous design {ref!r}: more than one object in {repo} starts with it (give more characters)"
                ) from exc
            continue
        except git.GitError:
            continue
        try:
            code = g.show(f"{commit}:design.py", strip_newline_in_stdout=False)
        except git.GitError:
            raise DesignRefError(f"git rev {ref!r} in {repo} is not a design (no design.py in {commit[:10]})") from None
        return DesignRef(ref, code, "rev")
    return None
