"""Two-line run header: what runs where, how far, how well, at what cost."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import Sparkline

from alma_tui.tui.format import (
    C_ACCENT,
    C_BAD,
    C_DIM,
    C_GOOD,
    C_WARN,
    STATUS_STYLE,
    fmt_cost,
    fmt_score,
    fmt_tokens,
    is_offline,
)
from alma_tui.tui.widgets.line import Line

if TYPE_CHECKING:
    from alma_tui.tui.rows import DesignRow, RunInfo, Totals

STATUS_ICON = {
    "running": "▶",
    "paused": "⏸",
    "stopping": "◼",
    "done": "✓",
    "stopped": "◼",
    "budget": "$",
    "error": "✗",
    "interrupted": "⚠",
    "waiting": "…",
}


def effective_status(
    run: RunInfo | None,
    hb_age: float | None,
    engine_exit: int | None,
    repo: Path | None = None,
    now: datetime | None = None,
) -> str:
    """What the header shows: the stored status, or ``interrupted`` for a dead engine
    (:func:`alma_tui.runstate.effective_status`, the same answer `alma-tui designs` gives)."""
    from alma_tui.runstate import LIVE_STATUSES
    from alma_tui.runstate import effective_status as real_status

    if run is None:
        return "waiting"
    if engine_exit not in (None, 0):
        return "error" if run.status in LIVE_STATUSES else run.status
    if now is None and hb_age is not None and run.heartbeat_at is not None:
        now = run.heartbeat_at + timedelta(seconds=hb_age)
    return real_status(run.status, repo=repo, pid=run.pid, heartbeat_at=run.heartbeat_at, now=now)


def _model(label: str, model: str) -> Text:
    t = Text()
    t.append(f"{label} ", style=C_DIM)
    t.append(model, style="bold")
    if is_offline(model):
        t.append(" offline", style=f"italic {C_WARN}")
    return t


def spend_text(totals: Totals | None, run: RunInfo | None) -> Text:
    """Tokens and cost, against the run's budget when it has one ("$0.42 / $5.00 (8%)")."""
    cost = Text(no_wrap=True)
    if totals is None:
        return cost
    budget_usd = run.budget_usd if run is not None else None
    budget_tokens = run.budget_tokens if run is not None else None
    cost.append(f"{fmt_tokens(totals.tokens)}", style="bold")
    if budget_tokens:
        cost.append(f"/{fmt_tokens(budget_tokens)}", style=C_DIM)
    cost.append(" tok", style=C_DIM)
    cost.append(" · ", style=C_DIM)
    cost.append(fmt_cost(totals.cost_usd), style=f"bold {C_GOOD}")
    if budget_usd:
        share = totals.cost_usd / budget_usd
        cost.append(f" / {fmt_cost(budget_usd)}", style=C_DIM)
        cost.append(f" ({share:.0%})", style=f"bold {C_BAD if share >= 0.9 else C_WARN if share >= 0.6 else C_DIM}")
    if totals.unknown_cost_calls:
        cost.append(f" (+{totals.unknown_cost_calls} unpriced)", style=C_WARN)
    return cost


class RunHeader(Widget):
    """Two lines. At 100 columns or fewer (class ``compact``) it keeps the essentials: status,
    iteration, best score and spend on the first line; counts and models on the second;
    no sparkline. The screen sets the class from its width (``MainScreen.on_resize``)."""

    DEFAULT_CSS = """
    RunHeader { height: 2; dock: top; }
    RunHeader Horizontal { height: 1; }
    RunHeader #hdr-top { width: 1fr; }
    RunHeader #hdr-left { width: 100; padding: 0 1; }
    RunHeader #hdr-spark { width: 16; margin: 0 1 0 0; }
    RunHeader #hdr-right { width: 1fr; padding: 0 1; }
    RunHeader.compact #hdr-left { width: 1fr; }
    RunHeader.compact #hdr-spark { display: none; }
    RunHeader.compact #hdr-right { display: none; }
    """

    def __init__(self, repo: Path, **kw) -> None:
        super().__init__(**kw)
        self.repo = repo
        self._last: tuple | None = None

    def set_compact(self, compact: bool) -> None:
        if compact != self.has_class("compact"):
            self.set_class(compact, "compact")
            if self._last is not None:
                self.show(*self._last)

    def compose(self) -> ComposeResult:
        yield Line(id="hdr-top")
        with Horizontal(id="hdr-bottom"):
            yield Line(id="hdr-left")
            yield Sparkline([], id="hdr-spark")
            yield Line(id="hdr-right")

    def _brand(self) -> Text:
        t = Text()
        t.append(" ◆ ALMA ", style=f"bold #1e1e2e on {C_ACCENT}")
        t.append(f" {self.repo.name}", style="bold")
        return t

    def show(
        self,
        run: RunInfo | None,
        status: str,
        designs: Sequence[DesignRow],
        best: DesignRow | None,
        history: list[float],
        totals: Totals | None,
        pending: list[str],
        hb_age: float | None,
    ) -> None:
        self._last = (run, status, designs, best, history, totals, pending, hb_age)
        compact = self.has_class("compact")
        st = Text()
        st.append(
            f" {STATUS_ICON.get(status, '•')} {status.upper()} ",
            style=f"reverse {STATUS_STYLE.get(status, 'bold')}",
        )
        detail = Text()
        if status == "interrupted" and hb_age is not None:
            detail.append(f" the engine is gone (last heartbeat {hb_age:.0f}s ago)", style=C_BAD)
        elif status == "waiting":
            detail.append(" waiting for the engine to create the store…", style=C_DIM)
        if run is not None and run.status_detail and status not in ("running",):
            detail.append(f" {run.status_detail}", style=C_DIM)
        if not compact:
            st.append_text(detail)

        info = Text()
        if run is not None:
            info.append(run.domain, style=f"bold {C_ACCENT}")
            info.append("  ")
            info.append_text(_model("meta", run.meta_model))
            info.append("  ")
            info.append_text(_model("agent", run.agent_model))
            info.append("  ")
            info.append(run.selection, style=C_DIM)
            if run.sandbox_strong is False:  # designs run without OS isolation (--allow-weak-sandbox)
                info.append("  ")
                info.append(" WEAK SANDBOX ", style=f"bold reverse {C_BAD}")
            elif run.sandbox_strong:
                info.append("  ")
                info.append("sandboxed", style=C_DIM)

        pend = Text()
        if pending:
            pend.append("queued: ", style=C_DIM)
            pend.append(", ".join(pending[-4:]), style=f"bold {C_WARN}")
        top = Text(no_wrap=True, overflow="ellipsis")
        top.append_text(self._brand())
        top.append("  ")
        top.append_text(st)
        if not compact:
            top.append("  ")
            top.append_text(info)
            if pend:
                top.append("   ")
                top.append_text(pend)

        it = Text()
        if run is not None:
            n, total = run.iterations_done, run.iterations_target
            # while a search works, show the iteration in progress; the bar shows those done
            active = run.status in ("running", "paused", "stopping") and (not total or n < total)
            it.append("iter ", style=C_DIM)
            it.append(f"{n + 1 if active else n}/{total or '∞'}", style="bold")
            if total and not compact:
                filled = round(10 * min(1.0, n / total))
                it.append(" " + "━" * filled, style=C_ACCENT)
                it.append("━" * (10 - filled), style="#3b3a40")

        acc = sum(1 for d in designs if d.status == "accepted")
        rej = sum(1 for d in designs if d.status == "rejected")
        # children left "proposed" by a stopped search are not in flight: nothing works on them
        live = status in ("running", "paused", "stopping")
        inflight = sum(1 for d in designs if d.status in ("proposed", "validating", "evaluating")) if live else 0
        counts = Text()
        counts.append(f"{len(designs)} designs  ", style=C_DIM)
        counts.append(f"✓ {acc}", style=f"bold {C_GOOD}")
        counts.append("  ")
        counts.append(f"✗ {rej}", style=f"bold {C_BAD}")
        if inflight:
            counts.append(f"  ◔ {inflight}", style=f"bold {C_WARN}")

        bt = Text()
        bt.append("best ", style=C_DIM)
        if best is not None:
            bt.append(fmt_score(best.score), style=f"bold {C_GOOD}")
            bt.append(f" {best.id}", style="bold")
            if run is not None and run.no_memory_score is not None and best.score is not None and not compact:
                bt.append(f"  (no memory {fmt_score(run.no_memory_score)})", style=C_DIM)
        else:
            bt.append("—", style=C_DIM)
        left = Text(no_wrap=True, overflow="ellipsis")
        if compact:
            # line 1: the essentials; line 2: what and where, then anything queued or wrong
            for part in (it, bt, spend_text(totals, run)):
                if part.plain:
                    top.append("  ")
                    top.append_text(part)
            if run is not None:
                left.append(run.domain, style=f"bold {C_ACCENT}")
                left.append("  ")
                offline = is_offline(run.meta_model) and is_offline(run.agent_model)
                left.append("offline models" if offline else f"{run.meta_model} / {run.agent_model}", style=C_DIM)
                if run.sandbox_strong is False:
                    left.append("  ")
                    left.append(" WEAK SANDBOX ", style=f"bold reverse {C_BAD}")
                left.append("  ")
            left.append_text(counts)
            if pend:
                left.append("  ")
                left.append_text(pend)
            left.append_text(detail)
        else:
            for part in (it, counts, bt):
                if part.plain:
                    left.append_text(part)
                    left.append("   ")
        self.query_one("#hdr-top", Line).show(top)
        self.query_one("#hdr-left", Line).show(left)
        spark = self.query_one("#hdr-spark", Sparkline)
        data = history[-48:] if len(history) > 1 else [*history, *history]
        if list(spark.data or []) != data:
            spark.data = data

        cost = spend_text(totals, run)
        if totals is not None:
            cost = Text.assemble((f"{totals.calls} calls · ", C_DIM), cost, no_wrap=True)
        cost.justify = "right"
        self.query_one("#hdr-right", Line).show(cost)
