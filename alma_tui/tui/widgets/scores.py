"""The score view: each design's score by iteration, the best-so-far line, and spend over time.

Plotted with ``textual-plot`` (a native Textual widget, numpy underneath). This module is
imported when the Scores tab is first shown, never before the first frame: numpy and the
plot widget cost ~100 ms of imports that a user who never opens the tab should not pay.
The series themselves (:func:`score_series`) are plain Python, so they are tested without
a terminal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.events import Resize
from textual.widgets import Static
from textual_plot import HiResMode, PlotWidget

from alma_tui.tui.format import C_ACCENT, C_BAD, C_DIM, C_GOOD, C_WARN, fmt_cost, fmt_score, fmt_tokens
from alma_tui.tui.rows import DesignRow


@dataclass
class ScoreSeries:
    """What the plots draw, derived from the archive's rows (in the order designs were created)."""

    iterations: list[float] = field(default_factory=list)  # one point per evaluated design
    scores: list[float] = field(default_factory=list)
    best_x: list[float] = field(default_factory=list)  # best-so-far, a step line by iteration
    best_y: list[float] = field(default_factory=list)
    spend_x: list[float] = field(default_factory=list)  # design number (creation order)
    spend_y: list[float] = field(default_factory=list)  # cumulative USD, or tokens when nothing is priced
    spend_unit: str = "USD"
    rejected: int = 0

    @property
    def empty(self) -> bool:
        return not self.scores


def score_series(designs: Sequence[DesignRow]) -> ScoreSeries:
    """Scores by iteration, the best score reached by each iteration, cumulative spend by design."""
    s = ScoreSeries()
    scored = [d for d in designs if d.score is not None and d.status == "accepted"]
    for d in scored:
        s.iterations.append(float(d.iteration))
        s.scores.append(float(d.score or 0.0))
    best: float | None = None
    for it in sorted({d.iteration for d in scored}):
        top = max(float(d.score or 0.0) for d in scored if d.iteration == it)
        best = top if best is None else max(best, top)
        s.best_x.append(float(it))
        s.best_y.append(best)
    priced = any(d.cost_usd for d in designs)
    s.spend_unit = "USD" if priced else "tokens"
    total = 0.0
    for n, d in enumerate(sorted(designs, key=lambda d: d.seq), start=1):
        total += d.cost_usd if priced else float(d.tokens)
        s.spend_x.append(float(n))
        s.spend_y.append(total)
    s.rejected = sum(1 for d in designs if d.status == "rejected")
    return s


class ScoreView(Vertical):
    """Two plots (score by iteration with best-so-far; cumulative spend) under a one-line summary."""

    DEFAULT_CSS = """
    ScoreView { height: 1fr; }
    ScoreView #scores-summary { height: auto; padding: 0 1; }
    ScoreView PlotWidget { height: 1fr; min-height: 6; }
    """

    def compose(self) -> ComposeResult:
        yield Static(id="scores-summary")
        yield PlotWidget(id="score-plot", allow_pan_and_zoom=False)
        yield PlotWidget(id="spend-plot", allow_pan_and_zoom=False)

    def on_resize(self, event: Resize) -> None:
        """A short pane keeps the score plot readable and drops the spend plot."""
        self.query_one("#spend-plot").display = event.size.height >= 22

    def show(self, designs: Sequence[DesignRow], budget_usd: float | None = None) -> ScoreSeries:
        s = score_series(designs)
        summary = Text(no_wrap=True, overflow="ellipsis")
        if s.empty:
            summary.append("No evaluated design yet: the plots fill in as designs are scored.", style=C_DIM)
        else:
            summary.append("scores ", style=C_DIM)
            summary.append(f"{len(s.scores)} designs", style="bold")
            summary.append(" · best ", style=C_DIM)
            summary.append(fmt_score(s.best_y[-1]), style=f"bold {C_GOOD}")
            if s.rejected:
                summary.append(f" · {s.rejected} rejected", style=C_BAD)
            summary.append(" · spent ", style=C_DIM)
            spent = s.spend_y[-1] if s.spend_y else 0.0
            if budget_usd:  # against a budget the figure is in dollars, even when nothing was priced
                summary.append(fmt_cost(sum(d.cost_usd for d in designs)), style=f"bold {C_WARN}")
                summary.append(f" of {fmt_cost(budget_usd)} budget", style=C_DIM)
            else:
                summary.append(
                    fmt_cost(spent) if s.spend_unit == "USD" else f"{fmt_tokens(int(spent))} tok",
                    style=f"bold {C_WARN}",
                )
            summary.append("   ● ", style=C_ACCENT)  # the key, instead of a legend over the points
            summary.append("a design ", style=C_DIM)
            summary.append("⠒⠒ ", style=C_GOOD)
            summary.append("best so far", style=C_DIM)
        self.query_one("#scores-summary", Static).update(summary)

        plot = self.query_one("#score-plot", PlotWidget)
        plot.clear()
        if not s.empty:
            # the best-so-far as steps (it holds until an iteration beats it), under the points
            step_x = [x for i, x in enumerate(s.best_x) for x in ((x,) if i == 0 else (x, x))]
            step_y = [y for i, y in enumerate(s.best_y) for y in ((y,) if i == 0 else (s.best_y[i - 1], y))]
            step_x.append(step_x[-1] + 0.45)  # the last level reaches past its points, so it is seen
            step_y.append(step_y[-1])
            plot.plot(
                step_x,
                step_y,
                line_style=C_GOOD,
                hires_mode=HiResMode.BRAILLE,
            )
            plot.scatter(s.iterations, s.scores, marker="●", marker_style=C_ACCENT)
            plot.set_xlimits(min(s.iterations) - 0.5, max(s.iterations) + 0.5)
            plot.set_ylimits(0.0, 1.0)
        plot.set_xlabel("iteration")
        plot.set_ylabel("score")

        spend = self.query_one("#spend-plot", PlotWidget)
        spend.clear()
        if s.spend_x:
            spend.plot(s.spend_x, s.spend_y, line_style=C_WARN, hires_mode=HiResMode.BRAILLE)
            if budget_usd and s.spend_unit == "USD":
                spend.plot(
                    [s.spend_x[0], s.spend_x[-1]],
                    [budget_usd, budget_usd],
                    line_style=C_BAD,
                    label="budget",
                )
            spend.set_xlimits(0.5, max(s.spend_x) + 0.5)
            spend.set_ylimits(0.0, None)
        spend.set_xlabel("design (creation order)")
        spend.set_ylabel(f"spent ({s.spend_unit})")
        return s
