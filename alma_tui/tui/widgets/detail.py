"""Right pane: the selected design, in five tabs (diff, code, analysis, evaluation, memory)."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Any

from rich.cells import cell_len
from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import ScrollableContainer, Vertical, VerticalScroll
from textual.widgets import DataTable, Static, TabbedContent, TabPane

from alma_tui.tui.format import (
    C_ACCENT,
    C_BAD,
    C_DIM,
    C_GOOD,
    C_INFO,
    C_WARN,
    code_block,
    diff_stats,
    fmt_cost,
    fmt_delta,
    fmt_score,
    fmt_tokens,
    render_diff,
)
from alma_tui.tui.rows import DesignDetail

MAX_MEMORY_CHARS = 200_000
LABEL_STYLE = {
    "useful": f"bold {C_GOOD}",
    "potentially_useful": C_WARN,
    "irrelevant": C_DIM,
    "empty_or_bad_format": C_BAD,
}
STATUS_BADGE = {
    "accepted": f"bold #1e1e2e on {C_GOOD}",
    "rejected": f"bold #1e1e2e on {C_BAD}",
    "evaluating": f"bold #1e1e2e on {C_WARN}",
}


def _code(code: str, lexer: str = "python") -> Text:
    return code_block(code, lexer)


def render_header(d: DesignDetail) -> Text:
    t = Text(no_wrap=True, overflow="ellipsis")
    t.append(f" {d.id} ", style=f"bold reverse {C_ACCENT}")
    t.append(f" {d.title or 'untitled'}\n", style="bold")
    t.append(f" {d.status.upper()} ", style=STATUS_BADGE.get(d.status, f"bold reverse {C_DIM}"))
    if d.score is not None:
        t.append("  ")
        t.append(fmt_score(d.score), style=f"bold {C_GOOD}")
        if d.score_se is not None:
            t.append(f" ± {d.score_se:.3f}", style=C_DIM)
        delta, dstyle = fmt_delta(d.score, d.parent_score)
        if delta:
            t.append(f"  {delta} vs parent", style=dstyle)
        t.append(" search split", style=C_DIM)
    if d.test_score is not None:  # measured when it became the best
        t.append(f"  held-out test {fmt_score(d.test_score)}", style=f"bold {C_ACCENT}")
    t.append(f"   {d.origin}", style=C_DIM)
    t.append(f" · iter {d.iteration}", style=C_DIM)
    if d.parent_id and d.second_parent_id:
        t.append(" · merge of ", style=C_DIM)
        t.append(d.parent_id, style=f"bold {C_INFO}")
        t.append(" + ", style=C_DIM)
        t.append(d.second_parent_id, style=f"bold {C_INFO}")
    elif d.parent_id:
        t.append(" · parent ", style=C_DIM)
        t.append(d.parent_id, style=f"bold {C_INFO}")
    if d.repairs:
        t.append(f"   {d.repairs} repair{'s' if d.repairs > 1 else ''}", style=C_WARN)
    if d.commit:
        t.append("   commit ", style=C_DIM)
        t.append(d.commit[:8], style=C_WARN)
    if d.tokens or d.cost_usd:
        t.append(f"   {fmt_tokens(d.tokens)} tok {fmt_cost(d.cost_usd)}", style=C_DIM)
    return t


def chosen_line(d: DesignDetail) -> Text:
    """Why the parents were chosen, as the selection event said (score, visits, tasks led)."""
    t = Text()
    for pid in (d.parent_id, d.second_parent_id):
        why = d.chosen_because.get(pid or "")
        if not why:
            continue
        parts = [str(why.get("why", ""))]
        if why.get("tasks_led"):
            parts.append(f"leads {why['tasks_led']} tasks (credit {float(why.get('credit', 0)):.2f})")
        if isinstance(why.get("score"), int | float):
            parts.append(f"score {why['score']:.3f}")
        parts.append(f"visits {why.get('visits', 0)}")
        if isinstance(why.get("p"), int | float):
            parts.append(f"p {why['p']:.2f}")
        t.append(f"{pid} chosen: ", style=C_DIM)
        t.append(", ".join(p for p in parts if p) + "\n", style=C_DIM)
    return t


def render_diff_tab(d: DesignDetail, against: int = 0) -> RenderableType:
    """The diff against the first parent (``against=0``) or a merge design's second (1)."""
    if against == 1 and d.second_parent_code is not None:
        d = replace(
            d,
            parent_id=d.second_parent_id,
            parent_code=d.second_parent_code,
            parent_title=d.second_parent_title,
            parent_score=d.second_parent_score,
            second_parent_id=d.parent_id,
        )
    if d.parent_code is None:
        return Group(
            Text(
                f"{d.id} is a seed design ({d.origin}): it has no parent. Its code:\n",
                style=f"italic {C_DIM}",
            ),
            _code(d.code),
        )
    if not d.code.strip():
        return Text(
            f"{d.id} has no code yet: the meta agent analyses {d.parent_id} and writes it when its "
            "turn comes; the diff appears as soon as the code exists.",
            style=f"italic {C_DIM}",
        )
    added, removed = diff_stats(d.parent_code, d.code)
    # the numbers first, on a line of their own: a narrow pane cuts a long line's end, and the
    # titles (which can be long) are what may be cut, never the change or the score
    head = Text()
    head.append(f"+{added}", style=f"bold {C_GOOD}")
    head.append(f" −{removed}", style=f"bold {C_BAD}")  # noqa: RUF001
    if d.score is not None and d.parent_score is not None:
        delta, dstyle = fmt_delta(d.score, d.parent_score)
        head.append(f"   score {fmt_score(d.parent_score)} → {fmt_score(d.score)} ", style=C_DIM)
        head.append(delta, style=f"bold {dstyle}")
    head.append("\n")
    head.append(f"{d.parent_id}", style=f"bold {C_INFO}")
    head.append(f" {d.parent_title or ''}", style=C_DIM)
    head.append("  →  ", style=C_DIM)
    head.append(f"{d.id}", style=f"bold {C_ACCENT}")
    head.append(f" {d.title}", style=C_DIM)
    head.append("\n")
    if d.second_parent_id:
        head.append(f"merge: diff against {d.parent_id}; ", style=C_INFO)
        head.append("d", style=f"bold {C_ACCENT}")
        head.append(f" diffs against {d.second_parent_id}\n", style=C_INFO)
    head.append_text(chosen_line(d))
    body = render_diff(d.parent_code, d.code, f"{d.parent_id}/design.py", f"{d.id}/design.py")
    return Group(head, body)


def render_code_tab(d: DesignDetail) -> RenderableType:
    parts: list[RenderableType] = []
    if d.error:
        parts.append(
            Panel(
                Text(d.error_detail or d.error, style=C_BAD),
                title=f"rejected after {d.repairs} repairs" if d.repairs else "error",
                border_style=C_BAD,
                title_align="left",
            )
        )
    parts.append(_code(d.code or "# (no code)"))
    return Group(*parts)


def _section(title: str) -> Text:
    return Text(f"\n{title}", style=f"bold {C_ACCENT}")


def render_analysis_tab(d: DesignDetail) -> RenderableType:
    a = d.analysis
    if not a and not d.analysis_raw:
        why = "it is a seed design" if d.origin == "builtin" else "the meta agent left none"
        return Text(f"No analysis: {why}.", style=f"italic {C_DIM}")
    parts: list[RenderableType] = []
    if isinstance(a, dict):
        if a.get("title_hint"):
            parts.append(Text.assemble(("Idea  ", C_DIM), (str(a["title_hint"]), "bold")))
        if a.get("lessons_from_previous"):
            parts.append(_section(f"Lessons from the parent ({d.parent_id or '—'})"))
            parts.append(Padding(Text(str(a["lessons_from_previous"])), (0, 2)))
        changes = a.get("suggested_changes") or []
        if changes:
            parts.append(_section("Suggested changes"))
            tab = Table(box=None, show_header=True, header_style=C_DIM, pad_edge=False, expand=True)
            tab.add_column("#", width=3, style=f"bold {C_WARN}")
            tab.add_column("what", ratio=3)
            tab.add_column("why", ratio=2, style=C_DIM)
            for c in sorted((c for c in changes if isinstance(c, dict)), key=lambda c: c.get("priority", 9)):
                tab.add_row(str(c.get("priority", "")), str(c.get("what", "")), str(c.get("why", "")))
            parts.append(Padding(tab, (0, 2)))
        assess = a.get("trajectory_assessments") or []
        if assess:
            parts.append(_section("How memory did on the parent's trajectories"))
            tab = Table(box=None, show_header=True, header_style=C_DIM, pad_edge=False, expand=True)
            tab.add_column("task", no_wrap=True, style=C_INFO)
            tab.add_column("memory", no_wrap=True)
            tab.add_column("how it could help", ratio=1)
            for x in assess:
                if isinstance(x, dict):
                    label = str(x.get("memory_label", ""))
                    tab.add_row(
                        str(x.get("task_id", "")),
                        Text(label, style=LABEL_STYLE.get(label, "")),
                        str(x.get("how_it_could_help", "")),
                    )
            parts.append(Padding(tab, (0, 2)))
        for key, title in (
            ("content_quality_issues", "Content quality issues"),
            ("structure_issues", "Structure issues"),
        ):
            items = a.get(key) or []
            if items:
                parts.append(_section(title))
                parts.extend(Padding(Text.assemble(("• ", C_WARN), str(i)), (0, 2)) for i in items)
    if d.analysis_raw:
        parts.append(_section("Raw answer"))
        parts.append(Panel(Text(d.analysis_raw, style=C_DIM), border_style="#3b3a40"))
    return Group(*parts)


def render_eval_summary(d: DesignDetail) -> RenderableType:
    t = Text()
    if d.evaluation_status is None:
        if d.status == "rejected":
            t.append("Not evaluated: ", style=f"bold {C_BAD}")
            t.append(d.error or "rejected during validation", style=C_BAD)
        else:
            t.append("No evaluation yet.", style=f"italic {C_DIM}")
        return t
    t.append("fitness ", style=C_DIM)
    t.append(fmt_score(d.score), style=f"bold {C_GOOD}")
    if d.score_se is not None:
        t.append(f" ± {d.score_se:.3f}", style=C_DIM)
    t.append("  (mean deployment success over runs ± standard error)", style=C_DIM)
    if d.no_memory_score is not None and d.score is not None:
        delta, dstyle = fmt_delta(d.score, d.no_memory_score)
        t.append(f"\nno-memory baseline {fmt_score(d.no_memory_score)}  ", style=C_DIM)
        t.append(f"{delta} vs no memory", style=f"bold {dstyle}")
    if d.run_scores:
        t.append("\nper run  ", style=C_DIM)
        for i, s in enumerate(d.run_scores):
            bar = "█" * round(s * 20)
            t.append(f"\n  run {i}  ", style=C_DIM)
            t.append(bar.ljust(20, "·"), style=C_ACCENT)
            t.append(f" {s:.3f}", style="bold")
    status = d.evaluation_status
    t.append(f"\nstatus {status}", style=C_WARN if status == "running" else C_DIM)
    if d.evaluation_wall_s is not None:
        t.append(f" · {d.evaluation_wall_s:.1f}s wall", style=C_DIM)
    col = [e for e in d.episodes if e.phase == "collection"]
    if col:
        ok = sum(e.success for e in col)
        t.append(f" · collection {ok}/{len(col)} successful episodes fed to update()", style=C_DIM)
    if d.evaluation_error:
        t.append(f"\n{d.evaluation_error}", style=C_BAD)
    return t


def fill_eval_table(table: DataTable, d: DesignDetail) -> None:
    table.clear(columns=True)
    dep = [e for e in d.episodes if e.phase == "deployment"]
    if not dep:
        return
    runs = sorted({e.run for e in dep})
    by_task: dict[str, dict[int, Any]] = defaultdict(dict)
    goals: dict[str, str] = {}
    for e in dep:
        by_task[e.task_id][e.run] = e
        goals[e.task_id] = e.goal
    table.add_column("task", key="task")
    table.add_column("goal", key="goal")
    for r in runs:
        table.add_column(f"run {r}", key=f"r{r}")
    table.add_column("success", key="rate")
    table.add_column("retrieved", key="ret")
    table.add_column("note", key="note")
    for task, per_run in by_task.items():
        cells: list[Any] = [Text(task, style=C_INFO), Text(goals[task][:40], style="")]
        for r in runs:
            ep = per_run.get(r)
            if ep is None:
                cells.append(Text("·", style=C_DIM))
            elif ep.success:
                cells.append(Text(f"✓ {ep.steps:>2} st", style=C_GOOD))
            else:
                cells.append(Text(f"✗ {ep.steps:>2} st", style=C_BAD))
        eps = list(per_run.values())
        rate = sum(e.success for e in eps) / len(eps)
        cells.append(Text(f"{rate:.0%}", style=f"bold {C_GOOD if rate >= 0.5 else C_BAD}"))
        avg_ret = sum(e.retrieved_chars for e in eps) // max(1, len(eps))
        cells.append(Text(f"{avg_ret} ch", style=C_DIM))
        errs = sorted({e.error for e in eps if e.error})
        cells.append(Text("; ".join(errs)[:28], style=C_DIM))
        table.add_row(*cells, key=task)


def render_memory_tab(d: DesignDetail) -> RenderableType:
    if d.memory is None:
        if d.memory_raw:
            return Text(d.memory_raw[:MAX_MEMORY_CHARS])
        return Text("No memory snapshot (taken after the collection phase).", style=f"italic {C_DIM}")
    text = json.dumps(d.memory, indent=2, ensure_ascii=False, default=str)
    head = Text(f"snapshot() after collection · {len(text):,} chars\n", style=C_DIM)
    if len(text) > MAX_MEMORY_CHARS:
        text = text[:MAX_MEMORY_CHARS] + "\n… (truncated)"
    return Group(head, _code(text, "json"))


# what each tab shows, rendered when the tab is first shown for a design (then cached)
RENDERERS = {
    "diff": render_diff_tab,
    "code": render_code_tab,
    "analysis": render_analysis_tab,
    "evaluation": render_eval_summary,
    "memory": render_memory_tab,
}
DESIGN_TABS = tuple(RENDERERS)


@dataclass
class DetailViews:
    """One design's detail and the tab contents rendered so far.

    The loader (a worker) renders the header and the tab on screen; every other tab is
    rendered the first time it is shown, so a selection costs one tab's lexing and layout,
    not five (the memory tab alone can be a 200,000-character JSON document).
    """

    detail: DesignDetail
    header: RenderableType
    rendered: dict[str, RenderableType] = field(default_factory=dict)
    diff_against: int = 0  # a merge design's Diff tab: 0 the first parent, 1 the second

    def tab(self, name: str) -> RenderableType:
        if name not in self.rendered:
            if name == "diff":
                self.rendered[name] = render_diff_tab(self.detail, self.diff_against)
            else:
                self.rendered[name] = RENDERERS[name](self.detail)
        return self.rendered[name]

    def switch_diff_parent(self) -> bool:
        """Diff against the other parent of a merge design; False for a one-parent design."""
        if self.detail.second_parent_code is None:
            return False
        self.diff_against = 1 - self.diff_against
        self.rendered.pop("diff", None)
        return True


def _width(content: RenderableType) -> int:
    texts = content.renderables if isinstance(content, Group) else [content]
    width = 20
    for t in texts:
        if isinstance(t, Text):
            width = max(width, max((cell_len(x) for x in t.plain.split("\n")), default=0))
    return width


def build_views(d: DesignDetail, tabs: tuple[str, ...] = ()) -> DetailViews:
    """The header and the ``tabs`` named (off the UI thread); the rest on first view."""
    views = DetailViews(detail=d, header=render_header(d))
    for name in tabs:
        if name in RENDERERS:
            views.tab(name)
    return views


class DetailPane(Vertical):
    """The five design tabs and the run-wide Scores tab, each filled when first shown."""

    ALLOW_MAXIMIZE = True  # z: the whole screen for the pane (the plots want it on 80x24)

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.views: DetailViews | None = None
        self._shown: dict[str, int] = {}  # tab -> id() of the views it shows
        self._score_view_mounted = False
        self.scores_stale = True

    def compose(self) -> ComposeResult:
        yield Static(Text("Select a design", style=C_DIM), id="detail-header")
        with TabbedContent(initial="diff", id="tabs"):
            with TabPane("Diff", id="diff"), ScrollableContainer(classes="wide"):
                yield Static(id="diff-body", classes="content")
            with TabPane("Code", id="code"), ScrollableContainer(classes="wide"):
                yield Static(id="code-body", classes="content")
            with TabPane("Analysis", id="analysis"), VerticalScroll():
                yield Static(id="analysis-body")
            with TabPane("Evaluation", id="evaluation"), Vertical():
                yield Static(id="eval-summary")
                yield DataTable(id="eval-table", zebra_stripes=True, cursor_type="row")
            with TabPane("Memory", id="memory"), ScrollableContainer(classes="wide"):
                yield Static(id="memory-body", classes="content")
            yield TabPane("Scores", id="scores")

    @property
    def active(self) -> str:
        return self.query_one(TabbedContent).active or "diff"

    def show(self, views: DetailViews | None, design_id: str | None = None, error: str = "") -> None:
        if views is None:
            why = error or "not found"
            style = C_BAD if error else C_DIM
            self.query_one("#detail-header", Static).update(Text(f"{design_id or ''}: {why}", style=style))
            return
        self.views = views
        self.query_one("#detail-header", Static).update(views.header)
        self.fill(self.active)

    def fill(self, tab: str) -> None:
        """Put the current design's ``tab`` on screen, rendering it if this is its first view."""
        if tab == "scores":
            self.fill_scores()
            return
        views = self.views
        if views is None or self._shown.get(tab) == id(views):
            return
        self._shown[tab] = id(views)
        content = views.tab(tab)
        if tab == "evaluation":
            self.query_one("#eval-summary", Static).update(content)
            fill_eval_table(self.query_one("#eval-table", DataTable), views.detail)
        elif tab == "analysis":
            self.query_one("#analysis-body", Static).update(content)
        else:
            self._wide(f"#{tab}-body", content)

    def fill_scores(self) -> None:
        """The run-wide score view; its plotting widget is imported and mounted on first view."""
        from alma_tui.tui.widgets.scores import ScoreView

        if not self._score_view_mounted:
            self._score_view_mounted = True
            self.call_later(self._mount_score_view)
            return
        if not self.query(ScoreView):
            return  # still mounting: _mount_score_view fills it
        app: Any = self.app
        run = getattr(app, "run_info", None)
        self.query_one(ScoreView).show(getattr(app, "designs", []), run.budget_usd if run is not None else None)
        self.scores_stale = False

    async def _mount_score_view(self) -> None:
        from alma_tui.tui.widgets.scores import ScoreView

        await self.query_one("#scores", TabPane).mount(ScoreView(id="score-view"))
        self.fill_scores()

    def designs_changed(self) -> None:
        """New rows: redraw the score view now if it is on screen, else when it is next shown."""
        self.scores_stale = True
        if self._score_view_mounted and self.active == "scores":
            self.fill_scores()

    def switch_diff_parent(self) -> str | None:
        """Show the Diff tab against the other parent of a merge design; returns that parent's
        id, or None when the design on screen has one parent."""
        views = self.views
        if views is None or not views.switch_diff_parent():
            return None
        self._shown.pop("diff", None)
        tabs = self.query_one(TabbedContent)
        if tabs.active != "diff":
            tabs.active = "diff"  # its activation fills it
        else:
            self.fill("diff")
        d = views.detail
        return d.second_parent_id if views.diff_against == 1 else d.parent_id

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if event.pane.id:
            self.fill(event.pane.id)

    def _wide(self, selector: str, content: RenderableType) -> None:
        """Fixed width = longest line: scrolls sideways, and layout never re-measures it."""
        static = self.query_one(selector, Static)
        static.styles.width = _width(content) + 2
        static.update(content)
