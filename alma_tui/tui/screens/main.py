"""The main screen: header, archive tree | design detail, event log, footer; steering actions."""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Input, Static, TabbedContent

from alma_tui.tui.bindings import MAIN_KEYS, WIDE_ONLY, to_bindings
from alma_tui.tui.format import C_BAD, C_DIM, best_design, best_history
from alma_tui.tui.messages import CommandDone, DetailLoaded, EngineExited, StoreMissing
from alma_tui.tui.rows import DesignRow, heartbeat_age
from alma_tui.tui.screens.modals import ConfirmScreen, ContinueScreen, GitScreen, HintScreen
from alma_tui.tui.widgets.archive_tree import ArchiveTree
from alma_tui.tui.widgets.detail import DetailPane
from alma_tui.tui.widgets.event_log import EventLogPanel
from alma_tui.tui.widgets.status_bar import RunHeader, effective_status

if TYPE_CHECKING:
    from alma_tui.tui.app import AlmaApp
    from alma_tui.tui.rows import Update

DETAIL_DEBOUNCE_S = 0.06
TABS = ("diff", "code", "analysis", "evaluation", "memory", "scores")
DESIGN_ACTIONS = {"toggle_pin", "toggle_veto", "git"}
RUN_ACTIONS = {"pause", "resume", "stop", "hint"}
LIVE = ("running", "paused", "stopping")
OVER = ("done", "stopped", "budget", "interrupted", "error")
NARROW_COLUMNS = 100  # at or below: compact header, archive and detail share the width
SHORT_ROWS = 30  # at or below: a shorter log, so the archive keeps its rows

NOTES = {
    "pin": "pinned: always among the parents from the next selection",
    "unpin": "unpinned",
    "veto": "vetoed: never chosen as a parent (stays visible)",
    "unveto": "unvetoed",
    "pause": "pause requested: the engine pauses at the next selection",
    "resume": "resume requested",
    "hint": "hint queued for the next analysis",
    "stop": "stop requested: the engine stops once the evaluations in progress finish",
}


class MainScreen(Screen):
    BINDINGS = to_bindings(MAIN_KEYS)
    app: AlmaApp

    def __init__(self) -> None:
        super().__init__()
        self.detail_for: str | None = None  # design whose detail is on screen
        self._pending: list[str] = []
        self._pause_requested: bool | None = None
        self._detail_timer: Timer | None = None
        self._merge_selected = False  # is the selected design a merge (its footer shows `d`)
        self._had_selection = False

    def compose(self) -> ComposeResult:
        yield RunHeader(self.app.repo, id="header")
        yield Static("", id="banner")
        with Horizontal(id="body"):
            with Vertical(id="archive"):
                yield ArchiveTree(id="tree")
            yield DetailPane(id="detail")
        yield EventLogPanel(id="log-panel")
        yield Footer(id="footer")

    def on_resize(self, event: events.Resize) -> None:
        """Layout by classes (app.tcss): ``narrow`` at <= 100 columns, ``short`` at <= 30 rows."""
        narrow = event.size.width <= NARROW_COLUMNS
        self.set_class(narrow, "narrow")
        self.set_class(event.size.height <= SHORT_ROWS, "short")
        self.query_one(RunHeader).set_compact(narrow)
        footer = self.query_one(Footer)
        if footer.compact != narrow:
            footer.compact = narrow
            self.refresh_bindings()

    @property
    def active_bindings(self):
        """What the footer lists: at <= 100 columns only the keys that matter most."""
        bindings = super().active_bindings
        if not self.has_class("narrow"):
            return bindings
        return {k: b for k, b in bindings.items() if b.binding.id not in WIDE_ONLY}

    def on_mount(self) -> None:
        self.app.store_updated.subscribe(self, self.on_store_update)
        self.query_one("#archive").border_title = "ARCHIVE"
        self.query_one("#detail").border_title = "DESIGN"
        self.archive_tree.focus()
        if self.app.deterministic:
            self.query_one("#log-filter", Input).cursor_blink = False
        self._refresh_header()
        # heartbeat staleness is a function of time: re-check it every 2 s
        self.set_interval(2.0, self._refresh_header)

    # -- handy accessors --------------------------------------------------------------------
    @property
    def archive_tree(self) -> ArchiveTree:
        return self.query_one(ArchiveTree)

    @property
    def log_panel(self) -> EventLogPanel:
        return self.query_one(EventLogPanel)

    @property
    def detail(self) -> DetailPane:
        return self.query_one(DetailPane)

    def selected_row(self) -> DesignRow | None:
        return self.archive_tree.row(self.archive_tree.selected_id)

    # -- store updates ----------------------------------------------------------------------
    def on_store_update(self, up: Update) -> None:
        tree = self.archive_tree
        if up.designs is not None:
            prev_sel = tree.row(tree.selected_id)
            no_mem = self.app.run_info.no_memory_score if self.app.run_info else None
            tree.sync(up.designs, no_mem)
            n = len(up.designs)
            self.query_one("#archive").border_title = f"ARCHIVE · {n} design{'s' if n != 1 else ''}"
            cur = tree.row(tree.selected_id)
            if cur is not None and prev_sel is not None and cur != prev_sel:
                changed = (cur.status, cur.score, cur.commit) != (
                    prev_sel.status,
                    prev_sel.score,
                    prev_sel.commit,
                )
                if changed:
                    self.app.load_detail(cur.id, (self.detail.active,))
            self.detail.designs_changed()
        if up.events:
            self.log_panel.add_events(up.events)
        run = self.app.run_info
        if (
            run is not None
            and self._pause_requested is not None
            and (
                (self._pause_requested and run.status == "paused")
                or (not self._pause_requested and run.status != "paused")
            )
        ):
            self._pause_requested = None
        if up.first and not self.app.designs:
            self.app.open_store()  # nothing to show in detail: warm up the write side now
        if up.run_changed or up.first:
            self.refresh_bindings()  # footer: run actions enabled or not
        if up.first or up.run_changed or up.designs is not None or up.totals is not None:
            self._refresh_header()

    def _refresh_header(self) -> None:
        app = self.app
        run = app.run_info
        age = heartbeat_age(run, app.now())
        status = effective_status(run, age, app.engine_exit, app.repo, app.now())
        if app.reader is None and run is None:
            status = "waiting"
        pending = list(self._pending)
        if self._pause_requested is True:
            pending.append("pause")
        elif self._pause_requested is False:
            pending.append("resume")
        designs = app.designs
        self.query_one(RunHeader).show(
            run,
            status,
            designs,
            best_design(designs),
            best_history(designs),
            app.totals,
            pending,
            age,
        )

    # -- selection --------------------------------------------------------------------------
    @on(ArchiveTree.DesignHighlighted)
    def _design_highlighted(self, event: ArchiveTree.DesignHighlighted) -> None:
        # debounce: holding a cursor key must not load every design on the way
        if self._detail_timer is not None:
            self._detail_timer.stop()
        first = self._had_selection is False
        self._had_selection = True
        if first:
            self._load_selected(event.design_id)
        else:
            self._detail_timer = self.set_timer(DETAIL_DEBOUNCE_S, partial(self._load_selected, event.design_id))
        # the footer's design keys follow the selection (d: merge designs only); refreshing the
        # footer on every cursor move cost ~50 ms a key in a large archive, so only on a change
        row = self.archive_tree.row(event.design_id)
        merge = row is not None and row.second_parent_id is not None
        if first or merge != self._merge_selected:
            self._merge_selected = merge
            self.refresh_bindings()

    def _load_selected(self, design_id: str) -> None:
        self._detail_timer = None
        if design_id != self.archive_tree.selected_id:
            return
        self.app.load_detail(design_id, (self.detail.active,))
        self.log_panel.set_design(design_id)

    def on_detail_loaded(self, message: DetailLoaded) -> None:
        if message.design_id != self.archive_tree.selected_id:
            return
        self.detail.show(message.views, message.design_id, message.error)
        self.detail_for = message.design_id
        if self.app.store is None:
            self.app.open_store()  # warm up the write side now that the screen is complete

    @on(EventLogPanel.WantDesignHistory)
    def _want_history(self, message: EventLogPanel.WantDesignHistory) -> None:
        self.app.load_design_history(message.design_id, self.log_panel.set_design_history)

    # -- engine / store conditions ----------------------------------------------------------
    def engine_started(self) -> None:
        """A new engine (continue): clear the last one's failure banner."""
        banner = self.query_one("#banner", Static)
        banner.update("")
        banner.remove_class("shown")
        self.refresh_bindings()

    def on_engine_exited(self, message: EngineExited) -> None:
        banner = self.query_one("#banner", Static)
        self.refresh_bindings()
        if message.returncode == 0:
            self.notify("The engine finished.", title="engine", timeout=6)
            return
        t = Text()
        t.append(f" ✗ the engine exited with code {message.returncode} ", style=f"bold reverse {C_BAD}")
        t.append(f"  last lines of {self.app.repo.name}/.alma/engine.log:\n", style=C_DIM)
        t.append(message.log_tail or "(empty)", style=C_BAD)
        banner.update(t)
        banner.add_class("shown")
        self.notify(
            f"The engine exited with code {message.returncode}; see .alma/engine.log",
            severity="error",
            timeout=10,
        )
        self._refresh_header()

    def on_store_missing(self, message: StoreMissing) -> None:
        self._refresh_header()

    def on_command_done(self, message: CommandDone) -> None:
        label = f"{message.kind} {message.design_id or ''}".strip()
        if label in self._pending:
            self._pending.remove(label)
        if not message.ok:
            self.notify(f"{label} failed: {message.error}", severity="error", title="steering")
            if message.kind in ("pause", "resume"):
                self._pause_requested = None
        self._refresh_header()

    # -- actions ----------------------------------------------------------------------------
    def status(self) -> str:
        """The run's status as the header shows it (a dead engine's run is ``interrupted``)."""
        app = self.app
        run = app.run_info
        if run is None:
            return "waiting"
        return effective_status(run, heartbeat_age(run, app.now()), app.engine_exit, app.repo, app.now())

    def _paused(self) -> bool:
        run = self.app.run_info
        if self._pause_requested is not None:
            return self._pause_requested
        return run is not None and run.status == "paused"

    def why_not(self, action: str) -> str | None:
        """Why ``action`` cannot act now (one line for a toast), or None when it can."""
        status = self.status()
        row = self.selected_row()
        if action in DESIGN_ACTIONS and row is None:
            return "Select a design first."
        if action == "toggle_veto" and row is not None and row.pinned and not row.vetoed:
            return f"{row.id} is pinned (always a parent): unpin it with p before vetoing it."
        if action == "toggle_pin" and row is not None and row.vetoed and not row.pinned:
            return f"{row.id} is vetoed (never a parent): unveto it with v before pinning it."
        if action in RUN_ACTIONS:
            if status == "waiting":
                return "No search yet: the engine has not created the store."
            if status not in LIVE:
                return f"The search is {status}: nothing to steer. Press c to continue it."
            if action == "pause" and self._paused():
                return "Already paused: space resumes."
            if action == "resume" and not self._paused():
                return "Not paused."
            if status == "stopping" and action != "resume":
                return "The search is stopping once the evaluations in progress finish."
        if action == "continue_search":
            if status in LIVE:
                return f"The search is {status}; continue it once it has stopped (s stops it)."
            if status == "waiting":
                return "No search to continue yet."
        return None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Footer state: what cannot act is dimmed (None) or, where another key takes its
        place, hidden (False); a key pressed anyway says why (``on_key``)."""
        live = self.status() in LIVE
        if action in ("pause", "resume"):
            if not live:
                return False  # a finished search shows "c Continue" instead
            return (action == "resume") == self._paused()  # one key: the binding that fits is shown
        if action in RUN_ACTIONS:
            return (self.why_not(action) is None or None) if live else False
        if action == "continue_search":
            return not live and (self.why_not(action) is None or None)
        if action in DESIGN_ACTIONS and self.selected_row() is None:
            return None
        if action == "diff_parent":  # in the footer only while a merge design is selected
            row = self.selected_row()
            return row is not None and row.second_parent_id is not None
        return True

    def on_key(self, event: events.Key) -> None:
        """A key none of whose actions can act now says why instead of doing nothing."""
        bindings = self._bindings.key_to_bindings.get(event.key, ())
        reasons = [self.why_not(b.action) for b in bindings]
        if reasons and all(reasons):
            self.notify(str(reasons[0]), severity="warning", timeout=4)
            event.stop()

    def _steer(self, kind: str, design_id: str | None = None, text: str = "") -> None:
        label = f"{kind} {design_id or ''}".strip()
        self._pending.append(label)
        note = NOTES.get(kind, kind)
        self.notify(note, title=label if kind != "hint" else "hint", timeout=4)
        self.app.send_command(kind, design_id, text)
        self._refresh_header()

    def _optimistic(self, row: DesignRow, **changes: Any) -> None:
        self.archive_tree.refresh_design_label(row.id, replace(row, **changes))

    def action_toggle_pin(self) -> None:
        d = self.selected_row()
        if d is None:
            return
        if reason := self.why_not("toggle_pin"):
            self.notify(reason, severity="warning", timeout=4)
            return
        kind = "unpin" if d.pinned else "pin"
        self._optimistic(d, pinned=not d.pinned)
        self._steer(kind, d.id)

    def action_toggle_veto(self) -> None:
        d = self.selected_row()
        if d is None:
            return
        if reason := self.why_not("toggle_veto"):
            self.notify(reason, severity="warning", timeout=4)
            return
        kind = "unveto" if d.vetoed else "veto"
        self._optimistic(d, vetoed=not d.vetoed)
        self._steer(kind, d.id)

    def action_pause(self) -> None:
        if self.why_not("pause") is None:
            self._pause_requested = True
            self._steer("pause")
            self.refresh_bindings()

    def action_resume(self) -> None:
        if self.why_not("resume") is None:
            self._pause_requested = False
            self._steer("resume")
            self.refresh_bindings()

    def action_toggle_pause(self) -> None:
        """The palette's one entry: resume when paused, pause otherwise."""
        if self._paused():
            self.action_resume()
        else:
            self.action_pause()

    def action_continue_search(self) -> None:
        """More iterations (or a larger budget) for a finished, stopped or interrupted search."""
        reason = self.why_not("continue_search")
        if reason:
            self.notify(reason, severity="warning", timeout=4)
            return
        run = self.app.run_info
        if run is None:
            return
        status = self.status()

        def done(choice: tuple[int, float | None] | None) -> None:
            if choice is not None:
                self.app.continue_search(*choice)
                self.refresh_bindings()
                self._refresh_header()

        self.app.push_screen(ContinueScreen(run, status), done)

    def action_hint(self) -> None:
        d = self.selected_row()
        ctx = f"Selected: {d.id} {d.title}." if d else ""

        def done(text: str | None) -> None:
            if text:
                self._steer("hint", None, text)

        self.app.push_screen(HintScreen(ctx), done)

    def action_stop(self) -> None:
        def done(ok: bool | None) -> None:
            if ok:
                self._steer("stop")

        self.app.push_screen(
            ConfirmScreen(
                "Stop the search?",
                "The engine stops once the evaluations in progress finish. "
                "Everything is kept; running `alma-tui run` again resumes.",
            ),
            done,
        )

    def action_git(self) -> None:
        d = self.selected_row()
        if d is None:
            return
        self.app.push_screen(GitScreen(self.app.repo, d.id, d.commit))

    def action_best(self) -> None:
        best = best_design(self.app.designs)
        if best is None:
            self.notify("No accepted design yet.", severity="warning")
            return
        self.archive_tree.go_to(best.id)
        self.archive_tree.focus()

    def action_follow(self) -> None:
        tree = self.archive_tree
        tree.follow = True
        newest = tree.newest_id()
        if newest:
            tree.go_to(newest, auto=True)
        self.notify("Following the newest design.", timeout=2)

    def go_to_design(self, design_id: str) -> None:
        self.archive_tree.go_to(design_id)
        self.archive_tree.focus()

    def action_toggle_scope(self) -> None:
        panel = self.log_panel
        panel.set_design(self.archive_tree.selected_id)
        panel.scope = "all" if panel.scope == "design" else "design"

    def action_zoom(self) -> None:
        """Maximize the detail pane (the Scores tab wants the room), or restore the layout."""
        if self.maximized is not None:
            self.minimize()
        else:
            self.maximize(self.detail, container=False)

    def action_focus_filter(self) -> None:
        self.query_one("#log-filter", Input).focus()

    def action_diff_parent(self) -> None:
        """A merge design's Diff tab: switch between its two parents."""
        other = self.detail.switch_diff_parent()
        if other is None:
            self.notify("Only a merge design (two parents) has another parent to diff against.", timeout=3)
        else:
            self.notify(f"Diff against {other}", timeout=2)

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab

    def action_next_tab(self) -> None:
        self._cycle_tab(1)

    def action_prev_tab(self) -> None:
        self._cycle_tab(-1)

    def _cycle_tab(self, step: int) -> None:
        tabs = self.query_one(TabbedContent)
        i = TABS.index(tabs.active) if tabs.active in TABS else 0
        tabs.active = TABS[(i + step) % len(TABS)]

    @on(Input.Submitted, "#log-filter")
    def _back_to_tree(self) -> None:
        self.archive_tree.focus()

    def key_escape(self) -> None:
        """Escape in the filter clears it (the whole log again) and goes back to the tree."""
        if self.focused is not None and self.focused.id == "log-filter":
            self.query_one("#log-filter", Input).value = ""
            self.archive_tree.focus()
