"""The event log: every event of the run (or of one design), filtered, capped, fast.

Lines live in a bounded deque; the visible widget is Textual's line-API ``Log``
(one string per line, rendered on demand) with a column-aware highlighter, so a
burst of 10,000 step events costs one ``write_lines`` call, not 10,000 widgets.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Self

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Input, Log

from alma_tui.tui.format import C_ACCENT, C_DIM, LogHighlighter, event_lines
from alma_tui.tui.rows import EventRow
from alma_tui.tui.widgets.line import Line

BUFFER_LINES = 20_000
VISIBLE_LINES = 10_000


@dataclass(slots=True)
class LogLine:
    event_id: int
    design_id: str | None
    text: str


class _Chunker:
    """Joins streamed ``meta.chunk`` text into whole lines per design."""

    def __init__(self) -> None:
        self.partial: dict[str | None, str] = {}

    def feed(self, ev: EventRow) -> list[str]:
        text = self.partial.pop(ev.design_id, "") + str(ev.data().get("text", ev.message))
        *done, rest = text.split("\n")
        if len(rest) > 160:  # a very long line without newline: show it anyway
            done.append(rest)
            rest = ""
        if rest:
            self.partial[ev.design_id] = rest
        return [d for d in done if d.strip()]


def to_lines(events: Iterable[EventRow], chunker: _Chunker) -> list[LogLine]:
    out: list[LogLine] = []
    for ev in events:
        if ev.kind == "meta.chunk":
            for part in chunker.feed(ev):
                row = EventRow(ev.id, ev.ts, ev.design_id, "meta", part, "{}")
                out.extend(LogLine(ev.id, ev.design_id, t) for t in event_lines(row))
        else:
            out.extend(LogLine(ev.id, ev.design_id, t) for t in event_lines(ev))
    return out


class EventLog(Log):
    """A ``Log`` that follows the newest line for as long as the user has not scrolled up.

    Textual's ``Log.write_lines`` decides to scroll from ``is_vertical_scroll_end`` read
    before the write, and once ``max_lines`` is reached it trims the head but refreshes the
    lines at their pre-trim indices (off screen): the view neither moves nor repaints, and
    from then on it is stuck. Here "following" is state (``following``), set from where the
    user scrolls to, and every write that trims repaints and keeps the view on its lines.
    """

    DEFAULT_CSS = """
    EventLog { background: $surface; scrollbar-size-vertical: 1; }
    """

    def __init__(self, *, max_lines: int = VISIBLE_LINES, **kw) -> None:
        super().__init__(highlight=True, max_lines=max_lines, **kw)
        self.highlighter = LogHighlighter()
        self.following = True
        self._moving = False  # our own scrolls do not change ``following``

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if not self._moving and self.max_scroll_y > 0:
            # the user scrolled: up stops following, back to the bottom follows again
            self.following = round(new_value) >= self.max_scroll_y

    def write_lines(self, lines: Iterable[str], scroll_end: bool | None = None) -> Self:
        new = [part for line in lines for part in line.splitlines()]
        follow = self.following if scroll_end is None else scroll_end
        before, y = len(self._lines), self.scroll_y
        super().write_lines(new, scroll_end=False)  # no scroll of its own; repaints in full
        trimmed = before + len(new) - len(self._lines)
        self._moving = True
        try:
            if follow and not self.is_vertical_scrollbar_grabbed:
                self.scroll_end(animate=False, immediate=True, x_axis=False)
            elif trimmed > 0:  # keep the lines the user is reading in place
                self.scroll_to(y=max(0.0, y - trimmed), animate=False, immediate=True)
        finally:
            self._moving = False
        return self

    def clear(self) -> Self:
        super().clear()
        self._moving = True
        try:
            self.scroll_to(0, 0, animate=False, immediate=True)
        finally:
            self._moving = False
        return self


class EventLogPanel(Vertical):
    """Header (scope, counts, filter) over the log."""

    scope: reactive[str] = reactive("all")  # all | design
    filter_text: reactive[str] = reactive("")

    @dataclass
    class WantDesignHistory(Message):
        design_id: str

    def __init__(self, *, buffer_lines: int = BUFFER_LINES, visible_lines: int = VISIBLE_LINES, **kw) -> None:
        super().__init__(**kw)
        self.visible_lines = visible_lines
        self._all: deque[LogLine] = deque(maxlen=buffer_lines)
        self._design: deque[LogLine] = deque(maxlen=visible_lines)
        self._design_id: str | None = None
        self._design_ready = False
        self._chunker = _Chunker()
        self.total_events = 0

    def compose(self) -> ComposeResult:
        with Horizontal(id="log-head"):
            yield Line(id="log-title")
            yield Input(placeholder="/ filter the log", id="log-filter", compact=True)
        yield EventLog(id="log", max_lines=self.visible_lines)

    def on_mount(self) -> None:
        self._update_title()

    @property
    def log_widget(self) -> EventLog:
        return self.query_one(EventLog)

    # -- feeding ----------------------------------------------------------------------------
    def add_events(self, events: list[EventRow]) -> None:
        self.total_events += len(events)
        lines = to_lines(events, self._chunker)
        self._all.extend(lines)
        if self.scope == "design":
            if not self._design_ready:
                return
            lines = [x for x in lines if x.design_id == self._design_id]
            self._design.extend(lines)
        self._write([x.text for x in lines if self._match(x.text)])
        self._update_title()

    def _write(self, texts: list[str]) -> None:
        if not texts:
            return
        self.log_widget.write_lines(texts[-self.visible_lines :])

    def _match(self, text: str) -> bool:
        f = self.filter_text
        return not f or f in text.lower()

    def _rerender(self) -> None:
        log = self.log_widget
        following = log.following  # a new filter or scope keeps the tail in view if it was
        log.clear()
        log.following = following
        source = self._design if self.scope == "design" else self._all
        texts = [x.text for x in source if self._match(x.text)]
        if texts:
            log.write_lines(texts[-self.visible_lines :])
        self._update_title()

    # -- scope ------------------------------------------------------------------------------
    def set_design(self, design_id: str | None) -> None:
        if design_id == self._design_id:
            return
        self._design_id = design_id
        if self.scope == "design":
            self._request_history()

    def _request_history(self) -> None:
        self._design.clear()
        self._design_ready = False
        self._rerender()
        if self._design_id is not None:
            self.post_message(self.WantDesignHistory(self._design_id))

    def set_design_history(self, design_id: str, events: list[EventRow]) -> None:
        if design_id != self._design_id or self.scope != "design":
            return
        lines = to_lines(events, _Chunker())
        last = events[-1].id if events else 0
        # events that arrived live while the history was loading
        lines += [x for x in self._all if x.event_id > last and x.design_id == design_id]
        self._design.clear()
        self._design.extend(lines)
        self._design_ready = True
        self._rerender()

    def watch_scope(self, scope: str) -> None:
        if not self.is_mounted:
            return
        if scope == "design":
            self._request_history()
        else:
            self._rerender()

    def watch_filter_text(self, _value: str) -> None:
        if self.is_mounted:
            self._rerender()

    @on(Input.Changed, "#log-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.filter_text = event.value.strip().lower()

    def _update_title(self) -> None:
        t = Text()
        t.append(" LOG ", style=f"bold reverse {C_ACCENT}")
        if self.scope == "design":
            t.append(f" design {self._design_id or '—'}", style="bold")
            if not self._design_ready:
                t.append(" loading…", style=C_DIM)
        else:
            t.append(" all designs", style="bold")
        n = self.log_widget.line_count if self.is_mounted else 0
        t.append(f"  {n:,} lines", style=C_DIM)
        if self.filter_text:
            t.append(f"  matching “{self.filter_text}”", style=C_DIM)
        t.append("   l scope · / filter", style=C_DIM)
        self.query_one("#log-title", Line).show(t)
