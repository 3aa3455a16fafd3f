"""Additive schema upgrades: a store written by an older alma-tui gains new columns.

Why: ``SQLModel.metadata.create_all`` creates missing *tables* but never touches an
existing one, so a release that adds a column to ``Design`` would make every query on
an existing repo fail with "no such column", and the user's archive would look lost.
Every schema change we make is additive (a new nullable column, or one with a scalar
default), so ``ALTER TABLE ... ADD COLUMN`` is enough; it is atomic in SQLite and safe
while a reader (the TUI) has the database open. A column we cannot add that way is a
programming error and is reported in one line rather than half-applied.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic_core import PydanticUndefined
from sqlalchemy import Column, Table
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

__all__ = ["SchemaError", "missing_columns", "upgrade"]


class SchemaError(RuntimeError):
    """A column of the current schema cannot be added to an existing table."""


def missing_columns(conn: Connection) -> list[tuple[Table, Column[Any]]]:
    """Columns of our models that existing tables lack (tables that do not exist are
    ``create_all``'s business, not ours)."""
    out: list[tuple[Table, Column[Any]]] = []
    for table in SQLModel.metadata.sorted_tables:
        rows = conn.exec_driver_sql(f'PRAGMA table_info("{table.name}")').fetchall()
        if not rows:
            continue
        have = {r[1] for r in rows}
        out.extend((table, c) for c in table.columns if c.name not in have)
    return out


def upgrade(conn: Connection) -> list[str]:
    """Add every missing column; return ``table.column`` names added (for the log)."""
    added = []
    for table, column in missing_columns(conn):
        ddl = _column_ddl(table, column, conn)
        conn.exec_driver_sql(f'ALTER TABLE "{table.name}" ADD COLUMN {ddl}')
        added.append(f"{table.name}.{column.name}")
    return added


def _column_ddl(table: Table, column: Column[Any], conn: Connection) -> str:
    type_sql = column.type.compile(dialect=conn.dialect)
    default = _model_default(table.name, column.name)
    if default is None:
        if not column.nullable:
            raise SchemaError(
                f"cannot add column {table.name}.{column.name} to an existing store: it is NOT NULL without a default"
            )
        return f'"{column.name}" {type_sql}'
    return f'"{column.name}" {type_sql} NOT NULL DEFAULT {_literal(default)}'


def _model_default(table_name: str, column_name: str) -> Any:
    """The scalar default the model declares for a field (None when it has none)."""
    for mapper in SQLModel._sa_registry.mappers:
        cls = mapper.class_
        if getattr(cls, "__tablename__", None) != table_name:
            continue
        field = cls.model_fields.get(column_name)
        if field is None or field.default is PydanticUndefined or field.default is None:
            return None
        return field.default
    return None


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, datetime):
        value = value.isoformat(sep=" ")
    return "'" + str(value).replace("'", "''") + "'"
