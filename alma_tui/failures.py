"""Recognise failures of the machine (disk full, read-only file system) in any layer.

The same condition arrives as an ``OSError`` (our own writes), an ``sqlite3`` error
(SQLite's ``SQLITE_FULL``, possibly wrapped by SQLAlchemy) or a ``GitCommandError`` whose
stderr says "No space left on device". The user needs one line for all of them.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from pathlib import Path

_FULL_ERRNOS = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
_FULL_TEXT = ("no space left on device", "database or disk is full", "disk quota exceeded")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        yield cur
        orig = getattr(cur, "orig", None)  # sqlalchemy wraps the DB-API error
        if isinstance(orig, BaseException) and id(orig) not in seen:
            yield orig
            seen.add(id(orig))
        cur = cur.__cause__ or cur.__context__


def disk_full_target(exc: BaseException, repo: Path | str) -> str | None:
    """What could not be written when ``exc`` means a full disk (None otherwise)."""
    repo = Path(repo)
    for e in _chain(exc):
        if isinstance(e, OSError) and e.errno in _FULL_ERRNOS:
            return str(e.filename or repo)
        text = f"{e} {getattr(e, 'stderr', '') or ''}".lower()
        if any(t in text for t in _FULL_TEXT):
            if "database or disk is full" in text or type(e).__module__.startswith(("sqlite3", "sqlalchemy")):
                return str(repo / ".alma" / "alma.db")
            if type(e).__module__.startswith("git"):
                return str(repo / ".git")
            return str(repo)
    return None


def disk_full_message(target: str | Path) -> str:
    return f"disk full while writing {target}: free some space and run again to resume"


def read_only_target(exc: BaseException) -> str | None:
    """The path of a write refused by a read-only file system (None otherwise)."""
    for e in _chain(exc):
        if isinstance(e, OSError) and e.errno == errno.EROFS:
            return str(e.filename or "")
    return None
