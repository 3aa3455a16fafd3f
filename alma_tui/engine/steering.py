"""Steering commands (pause, resume, stop, hint; pin and veto act through the design flags).

Commands take effect at the next selection or between designs, and each is logged.
"""

from __future__ import annotations

from alma_tui.engine.context import RunContext
from alma_tui.store.db import Store

RUN_COMMANDS = ("pause", "resume", "stop")


def drop_stale_commands(store: Store) -> None:
    """Pause/resume/stop issued while no engine ran mean nothing to a new engine."""
    store.mark_applied([c.id for c in store.pending_commands() if c.kind in RUN_COMMANDS])


class Steering:
    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.hints: list[str] = []
        self._hint_cmd_ids: list[int | None] = []

    def apply(self) -> bool:
        """Apply pending commands; wait while paused. False when the user asked to stop."""
        ctx = self.ctx
        paused = ctx.run_row.status == "paused"
        while True:
            applied: list[int | None] = []
            for cmd in ctx.store.pending_commands():
                if cmd.kind == "hint":
                    if cmd.id not in self._hint_cmd_ids:
                        self.hints.append(cmd.text)
                        self._hint_cmd_ids.append(cmd.id)  # marked applied once an analysis used it
                    continue
                applied.append(cmd.id)
                if cmd.kind == "pause":
                    paused = True
                elif cmd.kind == "resume":
                    paused = False
                elif cmd.kind == "stop":
                    ctx.store.mark_applied(applied)
                    return False
                ctx.emit(
                    "command.applied",
                    f"applied {cmd.kind} {cmd.design_id or ''}".strip(),
                    cmd.design_id,
                    command=cmd.kind,
                )
            ctx.store.mark_applied(applied)
            if not paused:
                if ctx.run_row.status == "paused":
                    ctx.set_status("running", "resumed")
                return True
            if ctx.run_row.status != "paused":
                ctx.set_status("paused", "paused by the user")
            if ctx.cancel.wait(0.5):
                return True

    def hints_used(self, design_id: str) -> None:
        """The pending hints went into an analysis: mark them applied and say so."""
        if not self._hint_cmd_ids:
            return
        self.ctx.store.mark_applied(self._hint_cmd_ids)
        self.ctx.emit("hint.used", f"{design_id}: hints used in analysis: {'; '.join(self.hints)}", design_id)
        self.hints, self._hint_cmd_ids = [], []
