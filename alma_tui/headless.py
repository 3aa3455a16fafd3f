"""Rich progress for `alma-tui run --headless`: what a search is doing, line by line.

Milestones (selection, proposals, repairs, scores, commits) are printed as log lines;
a live bar shows the evaluation in flight (iteration, design, episodes done/total,
best so far). Without a terminal (nohup, CI) rich drops the bar and keeps the lines.
"""

from __future__ import annotations

import threading
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from alma_tui.archive_rows import best_id, design_rows
from alma_tui.sanitize import sanitize

SHOWN = {
    "run.status": "bold",
    "run.sandbox": "dim",
    "run.executor": "dim",
    "evaluation.retry": "yellow",
    "domain.prepare": "dim",
    "run.cleanup": "yellow",
    "selection": "cyan",
    "design.proposed": "",
    "design.repair": "yellow",
    "design.rejected": "red",
    "design.resumed": "yellow",
    "evaluation.done": "green",
    "design.accepted": "bold green",
    "hint.used": "magenta",
    "command.applied": "magenta",
    "error": "bold red",
    "lineage.repair": "yellow",
    "lineage.best": "yellow",
    "design.duplicate": "yellow",
    "heldout.done": "cyan",
}


class HeadlessReporter:
    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(highlight=False)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[best]}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        )
        self.tasks: dict[str | None, Any] = {}  # one bar per design under evaluation (children run at once)
        self.done: dict[str | None, int] = {}
        self.search: Any = None
        self._lock = threading.Lock()  # events come from every running child's threads

    def start(self, search: Any) -> None:
        self.search = search
        self.progress.start()

    def stop(self) -> None:
        self.progress.stop()

    def _best(self) -> str:
        p = self.search.progress if self.search else None
        if p is None or p.best_score is None:
            return ""
        return f"best {p.best_id} {p.best_score:.3f}"

    def event(self, kind: str, message: str, design_id: str | None, data: dict[str, Any]) -> None:
        with self._lock:
            self._event(kind, message, design_id, data)

    def _event(self, kind: str, message: str, design_id: str | None, data: dict[str, Any]) -> None:
        if kind == "design.evaluating":
            p = self.search.progress
            desc = f"iter {p.iteration}/{p.iterations} · {design_id} evaluating"
            if design_id in self.tasks:
                self.progress.remove_task(self.tasks.pop(design_id))
            self.tasks[design_id] = self.progress.add_task(desc, total=data.get("total", 0), best=self._best())
            self.done[design_id] = 0
            return
        if kind == "episode.done" and design_id in self.tasks:
            self.done[design_id] += 1
            self.progress.update(self.tasks[design_id], completed=self.done[design_id], best=self._best())
            return
        if kind in ("evaluation.done", "design.accepted", "design.rejected") and design_id in self.tasks:
            self.progress.remove_task(self.tasks.pop(design_id))
        style = SHOWN.get(kind)
        if style is not None:
            # the message holds model- and user-written text: neither markup nor escapes
            text = Text(sanitize(message), style=style or "")
            self.progress.console.print(text, highlight=False, soft_wrap=True)

    def summary(self, search: Any, status: str) -> None:
        rows = design_rows(search.store)
        self.console.print(archive_table(rows))
        run = search.store.get_run()
        from alma_tui.llm.accounting import run_totals

        t = run_totals(search.store)
        calls, tokens = int(t["calls"]), int(t["prompt_tokens"] + t["completion_tokens"])
        cost = f"${t['cost_usd']:.4f}" + (" (partial: some models have no price)" if t["unknown_cost_calls"] else "")
        best = next((r for r in rows if r["id"] == best_id(rows)), None)
        best_text = "no best yet"
        if best is not None:
            held = "" if best.get("test_score") is None else f", held-out test split {best['test_score']:.3f}"
            best_text = f"best {best['id']} search split {best['score']:.3f}{held}"
        if t["cached_tokens"]:
            cost += f" ({t['cache_hit_rate']:.0%} of prompt tokens from the provider's cache)"
        self.console.print(
            f"[bold]{status}[/]: {run.iterations_done}/{run.iterations_target} iterations · "
            f"{best_text} · "
            f"{calls} model calls, {tokens:,} tokens, {cost} · lineage: git -C {search.config.repo} "
            "log --graph --all --oneline"
        )


def archive_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="archive", title_justify="left", expand=True)
    for col, kw in (
        ("id", {"no_wrap": True}),
        ("parent", {"no_wrap": True}),
        ("it", {"justify": "right"}),
        ("title", {"ratio": 1, "no_wrap": True, "overflow": "ellipsis", "min_width": 16}),
        ("search", {"justify": "right", "no_wrap": True}),
        ("test", {"justify": "right", "no_wrap": True}),
        ("status", {"no_wrap": True}),
        ("vis", {"justify": "right"}),
        ("commit", {"no_wrap": True}),
    ):
        table.add_column(col, **kw)
    best = best_id(rows)
    for r in rows:
        # standard errors are in `designs --json` and the app; the table keeps room for titles
        score = "" if r["score"] is None else f"{r['score']:.3f}"
        test = "" if r.get("test_score") is None else f"{r['test_score']:.3f}"
        status = r["status"]
        if status == "rejected" and r.get("duplicate_of"):
            status = f"duplicate of {r['duplicate_of']}"
        flags = "".join(("📌" if r.get("pinned") else "", "⛔" if r.get("vetoed") else ""))
        style = {"accepted": "green", "rejected": "red"}.get(r["status"], "yellow")
        if r["id"] == best:
            status = "best"
            style = "bold green"
        table.add_row(
            r["id"],
            "+".join(r.get("parents") or ([r["parent"]] if r["parent"] else [])) or "-",  # a merge: both
            str(r.get("iteration", "")),
            Text(sanitize(r["title"] or "", newlines=False)),
            score,
            test,
            f"[{style}]{status}[/]{flags}",
            str(r.get("visits", 0)),
            (r["commit"] or "")[:7],
        )
    return table
