"""Read a repo's stored run settings with the stdlib only.

`alma-tui` (the TUI path) must resume an existing search without importing
SQLModel/SQLAlchemy first (~0.8 s before the first frame); the engine, started in
its own process, opens the full store.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

STORE_DIR = ".alma"
DB_NAME = "alma.db"


class PeekError(Exception):
    """The store exists but cannot be read (one line for the user)."""


def stored_settings(repo: Path) -> str | None:
    """The settings JSON of the repo's run, or None when there is no store or no run yet."""
    path = Path(repo) / STORE_DIR / DB_NAME
    if not path.exists():
        return None
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        try:
            row = con.execute("SELECT settings_json FROM run ORDER BY id LIMIT 1").fetchone()
        finally:
            con.close()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return None  # created by a process that has not written its run yet
        raise PeekError(f"cannot open the store {path}: {exc}") from exc
    except sqlite3.DatabaseError as exc:
        raise PeekError(f"cannot open the store {path}: {exc}") from exc
    return row[0] if row else None
