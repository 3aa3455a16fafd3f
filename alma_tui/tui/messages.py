"""App-wide messages (widget-local ones live on their widgets)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:
    from alma_tui.tui.widgets.detail import DetailViews


@dataclass
class DetailLoaded(Message):
    design_id: str
    views: DetailViews | None
    error: str = ""  # why it could not be loaded (views is None then)


@dataclass
class EngineExited(Message):
    returncode: int
    log_tail: str


@dataclass
class StoreMissing(Message):
    reason: str


@dataclass
class CommandDone(Message):
    kind: str
    design_id: str | None
    ok: bool
    error: str = ""
