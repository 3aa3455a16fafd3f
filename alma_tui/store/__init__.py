"""SQLite store (SQLModel, WAL) shared by the engine, the CLI and the TUI."""

from alma_tui.store.db import Store, StoreError, db_path

__all__ = ["Store", "StoreError", "db_path"]
