"""A one-renderable widget whose updates never trigger a layout pass."""

from __future__ import annotations

from rich.console import RenderableType
from rich.text import Text
from textual.widget import Widget


class Line(Widget):
    """Like ``Static`` for fixed-size cells: ``show()`` repaints, it does not re-layout.

    ``Static.update`` always asks for a layout pass, which re-measures every widget
    on screen; for cells that change several times a second (log title, header
    counters) a repaint is all that is needed.
    """

    DEFAULT_CSS = "Line { height: 1; }"

    def __init__(self, content: RenderableType = "", **kw) -> None:
        super().__init__(**kw)
        self._content: RenderableType = content

    def show(self, content: RenderableType) -> None:
        if isinstance(content, Text) and content == self._content:
            return
        self._content = content
        self.refresh()

    def render(self) -> RenderableType:
        return self._content
