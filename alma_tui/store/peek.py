"""Read a repo's stored run settings with the stdlib only.

`alma-tui` (the TUI path) must resume an existing search without importing
SQLModel/SQLAlchemy first (~0.8 s before the first frame); the engine, started in
its own process, opens the full store.
"""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

STORE_DIR = ".alma"
DB_NAME = "alma.db"


class PeekError(Exception):
    """The store exists but cannot be read (one line for the user)."""


# What SQLite says about a file that is not (or no longer) a sound database.
_DAMAGE = ("malformed", "not a database", "could not decode", "file is encrypted", "corrupt")
_FULL = ("database or disk is full", "no space left")
RECOVER_HINT = "move it aside and run `alma-tui repair --repo {repo}` to rebuild it from the lineage"


def damaged_message(path: Path, reason: str) -> str:
    repo = Path(path).parent.parent
    return f"the run store {path} is damaged (sqlite: {reason}); " + RECOVER_HINT.format(repo=repo)


def disk_full_message(path: Path | str) -> str:
    from alma_tui.failures import disk_full_message as message

    return message(path)


def sqlite_problem(reason: str) -> tuple[str, str]:
    """(kind, reason) of an SQLite error message; kind is damaged, full, readonly or other."""
    low = reason.lower()
    if any(k in low for k in _DAMAGE):
        if "could not decode" in low:  # a text cell overwritten with garbage
            return "damaged", "database disk image is malformed: " + reason.split(" with text ")[0]
        return "damaged", reason
    if any(k in low for k in _FULL):
        return "full", reason
    if "readonly" in low or "read-only" in low:
        return "readonly", reason
    return "other", reason


def readonly_uri(path: Path) -> str:
    """SQLite URI that reads ``path`` without writing anything.

    ``mode=ro`` still needs the WAL index (``-shm``) next to the database, which SQLite
    creates or maps writable; in a directory nobody may write to (a read-only mount, a
    copied archive) ``immutable=1`` reads the file as is, since no engine can be writing.
    """
    uri = Path(path).resolve().as_uri()
    return f"{uri}?mode=ro" if os.access(Path(path).parent, os.W_OK) else f"{uri}?immutable=1"


def stored_run(repo: Path) -> dict[str, Any] | None:
    """The repo's run row (status, iterations, heartbeat, pid) or None when there is none yet."""
    path = Path(repo) / STORE_DIR / DB_NAME
    if not path.exists():
        return None
    cols = ("status", "status_detail", "iterations_done", "iterations_target", "heartbeat_at", "pid")
    try:
        con = sqlite3.connect(readonly_uri(path), uri=True, timeout=10)
        try:
            row = con.execute(f"SELECT {', '.join(cols)} FROM run ORDER BY id LIMIT 1").fetchone()
        finally:
            con.close()
    except sqlite3.Error as exc:
        if "no such table" in str(exc):
            return None
        kind, reason = sqlite_problem(str(exc))
        if kind == "damaged":
            raise PeekError(damaged_message(path, reason)) from exc
        raise PeekError(f"cannot open the store {path}: {exc}") from exc
    if row is None:
        return None
    run = dict(zip(cols, row, strict=True))
    run["heartbeat_at"] = _dt(run["heartbeat_at"])
    return run


def _dt(value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        dt = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def stored_settings(repo: Path) -> str | None:
    """The settings JSON of the repo's run, or None when there is no store or no run yet."""
    path = Path(repo) / STORE_DIR / DB_NAME
    if not path.exists():
        return None
    try:
        con = sqlite3.connect(readonly_uri(path), uri=True, timeout=10)
        try:
            row = con.execute("SELECT settings_json FROM run ORDER BY id LIMIT 1").fetchone()
        finally:
            con.close()
    except sqlite3.Error as exc:
        if "no such table" in str(exc):
            return None  # created by a process that has not written its run yet
        kind, reason = sqlite_problem(str(exc))
        if kind == "damaged":
            raise PeekError(damaged_message(path, reason)) from exc
        raise PeekError(f"cannot open the store {path}: {exc}") from exc
    return row[0] if row else None
