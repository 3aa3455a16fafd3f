"""Command palette: only the commands that make sense for the current selection and run state."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider

if TYPE_CHECKING:
    from alma_tui.tui.screens.main import MainScreen


class AlmaCommands(Provider):
    def _commands(self) -> list[tuple[str, Callable[[], object], str]]:
        from alma_tui.tui.screens.main import MainScreen

        screen = self.screen
        if not isinstance(screen, MainScreen):
            return []
        main: MainScreen = screen
        app = main.app
        out: list[tuple[str, Callable[[], object], str]] = []
        d = main.selected_row()
        if d is not None:
            out.append(
                (
                    f"{'Unpin' if d.pinned else 'Pin'} {d.id}",
                    main.action_toggle_pin,
                    "pinned designs are always among the parents",
                )
            )
            out.append(
                (
                    f"{'Unveto' if d.vetoed else 'Veto'} {d.id}",
                    main.action_toggle_veto,
                    "vetoed designs are never chosen as parents",
                )
            )
            if d.commit:
                out.append((f"Git log of {d.id}", main.action_git, f"commit {d.commit[:8]}"))
        run = app.run_info
        if run is not None and run.status in ("running", "paused", "stopping"):
            if run.status == "paused":
                out.append(
                    (
                        "Resume the search",
                        main.action_toggle_pause,
                        "continue at the next selection",
                    )
                )
            else:
                out.append(("Pause the search", main.action_toggle_pause, "pause at the next selection"))
            out.append(("Add a hint for the meta agent", main.action_hint, "goes into the next analysis"))
            out.append(("Stop once the evaluations in progress finish", main.action_stop, "the run stays resumable"))
        if main.why_not("continue_search") is None:
            out.append(
                (
                    "Continue the search: more iterations or a larger budget",
                    main.action_continue_search,
                    f"it is {main.status()}; an engine resumes it",
                )
            )
        out.append(("Jump to the best design", main.action_best, ""))
        out.append(("Follow the newest design", main.action_follow, ""))
        scope = main.log_panel.scope
        out.append(
            (
                f"Log: show {'all designs' if scope == 'design' else 'the selected design only'}",
                main.action_toggle_scope,
                "",
            )
        )
        for tab in ("diff", "code", "analysis", "evaluation", "memory", "scores"):
            out.append((f"Show the {tab} tab", partial(main.action_tab, tab), ""))
        if app.engine is not None:
            out.append(
                (
                    "Detach: quit the UI, keep the engine running",
                    app.action_detach,
                    f"re-attach with alma-tui watch --repo {app.repo}",
                )
            )
        for row in app.designs:
            out.append(
                (
                    f"Go to {row.id} {row.title}",
                    partial(main.go_to_design, row.id),
                    f"{row.status}" + (f" {row.score:.3f}" if row.score is not None else ""),
                )
            )
        return out

    async def discover(self) -> Hits:
        for name, cb, help_text in self._commands():
            if name.startswith("Go to "):
                continue
            yield DiscoveryHit(name, cb, help=help_text or None)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, cb, help_text in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), cb, help=help_text or None)
