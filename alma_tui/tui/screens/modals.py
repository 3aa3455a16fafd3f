"""Small modal screens: hint input, confirmation, git log/show."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from alma_tui.tui.format import C_BAD, C_DIM

if TYPE_CHECKING:
    from alma_tui.tui.rows import RunInfo


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


def continue_choice(run: RunInfo, status: str, more: str, budget: str) -> tuple[int, float | None] | str:
    """(total iterations, budget or None) from the dialog's two fields, or why not (one line).

    ``more`` counts iterations beyond what the search already reached; 0 only resumes a
    search stopped before its target. A budget, when given, must exceed the current one:
    a search that stopped on its budget continues only with a larger one.
    """
    try:
        n_more = int(more.strip() or "0")
    except ValueError:
        return f"more iterations: {more.strip()!r} is not a whole number"
    if n_more < 0 or n_more > 100_000:
        return "more iterations: give a number from 0 to 100000"
    new_budget: float | None = None
    if budget.strip():
        try:
            new_budget = float(budget.strip().lstrip("$"))
        except ValueError:
            return f"budget: {budget.strip()!r} is not an amount in USD"
        if new_budget <= 0 or (run.budget_usd is not None and new_budget <= run.budget_usd):
            floor = f"${run.budget_usd:g}" if run.budget_usd is not None else "$0"
            return f"budget: give more than the current {floor}"
    if status == "budget" and new_budget is None:
        return "the search stopped on its budget: give a larger budget to continue"
    reached = max(run.iterations_target, run.iterations_done)
    total = reached + n_more
    if total <= run.iterations_done and new_budget is None:
        return f"the search has done {run.iterations_done} iterations: ask for at least 1 more"
    return total, new_budget


class ContinueScreen(ModalScreen["tuple[int, float | None] | None"]):
    """Continue a finished or stopped search: more iterations, or a larger budget."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, run: RunInfo, status: str) -> None:
        super().__init__(classes="modal")
        self.run = run
        self.status = status

    def compose(self) -> ComposeResult:
        run = self.run
        with Vertical(classes="dialog", id="continue-dialog"):
            yield Label("Continue the search", classes="dialog-title")
            budget = f", budget ${run.budget_usd:g}" if run.budget_usd is not None else ""
            yield Static(
                Text(
                    f"It is {self.status} after {run.iterations_done} of {run.iterations_target} iterations{budget}. "
                    "An engine resumes it in the background with the settings it was created with; "
                    "nothing finished is redone.",
                    style=C_DIM,
                ),
                classes="dialog-help",
            )
            yield Label("More iterations (beyond the current target)")
            more = "0" if run.iterations_done < run.iterations_target else "5"
            yield Input(value=more, id="continue-more", type="integer")
            yield Label("Budget in USD (empty: keep the current one)")
            yield Input(placeholder="e.g. 10", id="continue-budget")
            yield Static("", id="continue-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Continue", variant="primary", id="ok")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#continue-budget" if self.status == "budget" else "#continue-more", Input).focus()

    @on(Input.Submitted)
    @on(Button.Pressed, "#ok")
    def _submit(self) -> None:
        choice = continue_choice(
            self.run,
            self.status,
            self.query_one("#continue-more", Input).value,
            self.query_one("#continue-budget", Input).value,
        )
        if isinstance(choice, str):
            self.query_one("#continue-error", Static).update(Text(choice, style=C_BAD))
            return
        self.dismiss(choice)

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.dismiss(None)
