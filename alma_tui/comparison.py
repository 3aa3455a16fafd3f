"""How `alma-tui compare` shows its rows: a rich table, a paper-style Markdown table, JSON,
and a progress bar of designs x runs while it evaluates.

The rows come ranked from :func:`alma_tui.engine.compare.run_compare`; this module only
draws them, and states the protocol and the noise test under every table, because a score
without its split, sizes and test cannot be read.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from alma_tui.engine.compare import NOISE_TEST, CompareRow
from alma_tui.engine.compare import Progress as CompareProgress
from alma_tui.engine.designref import DesignRef
from alma_tui.sanitize import sanitize

__all__ = ["CompareBar", "Protocol", "json_rows", "markdown_table", "rich_table"]

#: the mark of a row whose difference from the top row is within noise
NOISE_MARK = "≈"


@dataclass(frozen=True)
class Protocol:
    """What every row of one compare shares (printed with each table)."""

    domain: str
    agent_model: str
    split: str  # test | search
    runs: int
    n_collection: int  # tasks actually drawn (a small domain may give fewer than asked)
    n_deployment: int
    seed: int
    stored_in: str  # the store holding the rows

    def line(self) -> str:
        return (
            f"{self.domain}, {self.split} split, {self.n_collection} collection + {self.n_deployment} deployment "
            f"tasks x {self.runs} runs, seed {self.seed}, agent {self.agent_model}"
        )


def _label(row: CompareRow) -> str:
    return sanitize(row.label, newlines=False)


def _score(row: CompareRow) -> str:
    return f"{row.score:.3f} ± {row.score_se:.3f}"


def _runs(row: CompareRow) -> str:
    return " ".join(f"{x:.2f}" for x in row.run_scores)


def _cost(row: CompareRow) -> str:
    """Dollars per episode to 3 significant digits (the offline models cost $0)."""
    x = row.cost_per_episode
    return "$0" if x == 0 else f"${x:.3g}"


def _noise(row: CompareRow, top: bool) -> str:
    if top:
        return "top"
    if row.p_value is None:
        return ""
    return f"{NOISE_MARK} {row.p_value:.2f}" if row.within_noise else f"{row.p_value:.3f}"


def notes(rows: list[CompareRow], proto: Protocol) -> list[str]:
    """The lines under a table: protocol, the noise test, reuse, failures."""
    out = [proto.line() + "."]
    out.append(f"{NOISE_MARK}: {NOISE_TEST}.")
    out.append(
        "tokens and cost per episode: the acting agent's and the design's model calls over all "
        "collection and deployment episodes; wall: each design's evaluation (designs run at once)."
    )
    out.append(reuse_line(rows, proto))
    out += [f"{_label(r)} failed: {sanitize(r.error or '', newlines=False)}" for r in rows if not r.ok]
    out += [
        f"{_label(r)}: {r.episode_errors} of {r.episodes} episodes crashed (counted as 0; see --json); "
        "not stored, so the next compare measures it again"
        for r in rows
        if r.ok and r.episode_errors
    ]
    return out


def reuse_line(rows: list[CompareRow], proto: Protocol) -> str:
    reused = sum(1 for r in rows if r.reused)
    return (
        f"reused {reused} of {len(rows)} rows (wall marked *: measured when first evaluated), evaluated "
        f"{len(rows) - reused}; results stored in {proto.stored_in}"
    )


def rich_table(rows: list[CompareRow], proto: Protocol) -> Table:
    t = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=0)
    t.add_column("design", no_wrap=True, overflow="ellipsis", max_width=24)
    t.add_column("success ± s.e.", justify="right", no_wrap=True)
    t.add_column("vs top", no_wrap=True)
    t.add_column("runs", no_wrap=True)
    t.add_column("tok/ep", justify="right", no_wrap=True)
    t.add_column("$/ep", justify="right", no_wrap=True)
    t.add_column("wall", justify="right", no_wrap=True)
    for i, r in enumerate(rows):
        if not r.ok:
            t.add_row(_label(r), "failed", "", "", "", "", "", style="red")
            continue
        t.add_row(
            _label(r),
            _score(r),
            _noise(r, i == 0),
            _runs(r),
            f"{r.tokens_per_episode:.0f}",
            _cost(r),
            f"{r.wall_s:.1f}s" + ("*" if r.reused else ""),
            style="bold" if i == 0 else ("dim" if r.within_noise is False else None),
        )
    return t


def markdown_table(rows: list[CompareRow], proto: Protocol) -> str:
    """The paper's table: design | success ± s.e. | runs | tokens/episode | cost/episode | wall."""
    lines = [
        "| Design | Success ± s.e. | Runs | Tokens/episode | Cost/episode | Wall |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for i, r in enumerate(rows):
        name = _label(r).replace("|", "\\|")
        if not r.ok:
            lines.append(f"| {name} | failed | | | | |")
            continue
        score = f"**{_score(r)}**" if i == 0 else _score(r) + (f" {NOISE_MARK}" if r.within_noise else "")
        lines.append(
            f"| {name} | {score} | {_runs(r)} | {r.tokens_per_episode:,.0f} | {_cost(r)} | {r.wall_s:.1f} s"
            + ("*" if r.reused else "")
            + " |"
        )
    return "\n".join(lines)


def json_rows(rows: list[CompareRow], proto: Protocol) -> list[dict[str, Any]]:
    """One object per row, ranked; each carries the protocol it was measured under."""
    shared = {
        "domain": proto.domain,
        "agent_model": proto.agent_model,
        "split": proto.split,
        "runs": proto.runs,
        "n_collection": proto.n_collection,
        "n_deployment": proto.n_deployment,
        "seed": proto.seed,
        "noise_test": NOISE_TEST,
    }
    out = []
    for i, r in enumerate(rows):
        d = r.as_json()
        d.pop("key", None)
        out.append({"rank": i + 1 if r.ok else None, **d, **shared})
    return out


class CompareBar:
    """A rich progress bar per design (its deployment runs) and one for all designs x runs,
    on stderr so that `--json` and `--markdown` output stays clean."""

    def __init__(self, console: Console, runs: int, total_designs: int) -> None:
        self.runs = runs
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[note]}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.total = self.progress.add_task("designs x runs", total=runs * total_designs, note="")
        self.tasks: dict[str, Any] = {}
        self.done: dict[str, int] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> CompareBar:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def hooks(self) -> CompareProgress:
        return CompareProgress(
            reused=self._reused, started=self._started, run_done=self._run_done, finished=self._finished
        )

    def _reused(self, row: CompareRow) -> None:
        with self._lock:
            self.progress.advance(self.total, self.runs)

    def _started(self, design: DesignRef) -> None:
        with self._lock:
            self.tasks[design.label] = self.progress.add_task(
                sanitize(design.label, newlines=False), total=self.runs, note="evaluating"
            )

    def _run_done(self, design: DesignRef, run: int) -> None:
        with self._lock:
            self.progress.advance(self.tasks[design.label], 1)
            self.done[design.label] = self.done.get(design.label, 0) + 1
            self.progress.advance(self.total, 1)

    def _finished(self, row: CompareRow) -> None:
        with self._lock:
            task = self.tasks.get(row.label)
            if task is None:
                return
            left = self.runs - self.done.get(row.label, 0)
            self.progress.advance(self.total, max(0, left))  # a failed design ends its runs early
            self.progress.update(task, note="failed" if not row.ok else f"{row.score:.3f}", visible=False)
