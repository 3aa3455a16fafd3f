"""SQLite store (SQLModel, WAL) shared by the engine, the CLI and the TUI.

The names are loaded on first use: importing SQLModel costs ~0.6 s, and light
modules of this package (``peek``) must be importable without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from alma_tui.store.db import Store, StoreError, db_path

__all__ = ["Store", "StoreError", "db_path"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from alma_tui.store import db

        return getattr(db, name)
    raise AttributeError(f"module 'alma_tui.store' has no attribute {name!r}")
