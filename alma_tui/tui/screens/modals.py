"""Small modal screens: hint input, confirmation, git log/show."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from alma_tui.tui.format import C_DIM


class HintScreen(ModalScreen[str | None]):
    """Free text that goes into the next analysis prompt."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, context: str = "") -> None:
        super().__init__(classes="modal")
        self.context = context

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Hint for the meta agent", classes="dialog-title")
            yield Static(
                Text(
                    "Goes into the next analysis prompt (applied at the next selection). " + self.context,
                    style=C_DIM,
                ),
                classes="dialog-help",
            )
            yield Input(
                placeholder="e.g. aggregate counts instead of storing raw trajectories",
                id="hint-input",
            )
            with Horizontal(classes="dialog-buttons"):
                yield Button("Send hint", variant="primary", id="ok")
                yield Button("Cancel", id="cancel")

    @on(Input.Submitted)
    @on(Button.Pressed, "#ok")
    def _submit(self) -> None:
        value = self.query_one("#hint-input", Input).value.strip()
        self.dismiss(value or None)

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.dismiss(None)


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS = [
        Binding("escape,n", "dismiss(False)", "No"),
        Binding("y,enter", "dismiss(True)", "Yes"),
    ]

    def __init__(self, title: str, body: str) -> None:
        super().__init__(classes="modal")
        self.title_text = title
        self.body = body

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title")
            yield Static(Text(self.body, style=C_DIM), classes="dialog-help")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Yes (y)", variant="error", id="yes")
                yield Button("No (n)", id="no")

    @on(Button.Pressed, "#yes")
    def _yes(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#no")
    def _no(self) -> None:
        self.dismiss(False)


class GitScreen(ModalScreen[None]):
    """``git log --graph`` up to the design and ``git show --stat`` of its commit."""

    BINDINGS = [Binding("escape,q,g", "dismiss(None)", "Close")]

    def __init__(self, repo: Path, design_id: str, commit: str | None) -> None:
        super().__init__(classes="modal")
        self.repo = repo
        self.design_id = design_id
        self.commit = commit

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide-dialog"):
            yield Label(f"git · {self.design_id}", classes="dialog-title")
            with VerticalScroll(id="git-scroll"):
                yield Static(Text("loading…", style=C_DIM), id="git-body")
            yield Static(Text("esc / g close", style=C_DIM), classes="dialog-help")

    def on_mount(self) -> None:
        self._load()

    @work(thread=True, exclusive=True, group="git")
    def _load(self) -> None:
        from alma_tui.tui.data import git_history

        log, show = git_history(self.repo, self.design_id, self.commit)
        body = Text()
        if log:
            body.append("git log --graph (ancestry of this design)\n", style=f"bold {C_DIM}")
            body.append_text(Text.from_ansi(log))
            body.append("\n\n")
        body.append_text(Text.from_ansi(show))
        self.app.call_from_thread(self.query_one("#git-body", Static).update, body)
