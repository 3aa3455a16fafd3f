"""Pure rendering helpers (rich only, no Textual, no store): labels, diffs, log lines.

Kept free of I/O so they are cheap to unit-test and safe to call from workers.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from rich.color import Color
from rich.highlighter import Highlighter
from rich.style import Style
from rich.text import Text

from alma_tui.archive_rows import best_id as pick_best_id

if TYPE_CHECKING:
    from alma_tui.tui.rows import DesignRow, EventRow

# -- symbols and colours (one place) --------------------------------------------------------

MARK_ACCEPTED = "●"
MARK_EVALUATING = "◔"
MARK_PENDING = "○"
MARK_REJECTED = "✗"
MARK_PINNED = "⚑"
MARK_VETOED = "⊘"
MARK_BEST = "★"
MARK_MERGE = "⊕"  # a design written from two parents; the second parent's id follows

C_GOOD = "#7bd88f"
C_BAD = "#fc618d"
C_WARN = "#fce566"
C_INFO = "#5ad4e6"
C_ACCENT = "#948ae3"
C_DIM = "#8b888f"
C_PIN = "#5ad4e6"
C_VETO = "#fd9353"
C_BEST = "#fce566"

STATUS_STYLE = {
    "running": f"bold {C_GOOD}",
    "paused": f"bold {C_WARN}",
    "stopping": f"bold {C_VETO}",
    "done": f"bold {C_INFO}",
    "stopped": f"bold {C_DIM}",
    "budget": f"bold {C_VETO}",
    "error": f"bold {C_BAD}",
    "interrupted": f"bold {C_BAD}",
    "waiting": f"bold {C_DIM}",
}


def is_offline(model: str) -> bool:
    return model.startswith("offline/")


def fmt_score(x: float | None, digits: int = 3) -> str:
    return "  —  " if x is None else f"{x:.{digits}f}"


def fmt_delta(x: float | None, parent: float | None) -> tuple[str, str]:
    if x is None or parent is None:
        return "", C_DIM
    d = x - parent
    if abs(d) < 5e-4:
        return "=0", C_DIM  # no change ("±0" read like a standard error next to the score)
    return (f"{d:+.3f}", C_GOOD if d > 0 else C_BAD)


def fmt_tokens(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1_000_000:.2f}M"
    if n >= 10_000:
        return f"{n / 1000:.0f}k"
    if n >= 1000:
        return f"{n / 1000:.1f}k"
    return str(n)


def fmt_cost(c: float) -> str:
    if c == 0:
        return "$0"
    return f"${c:.4f}" if c < 1 else f"${c:.2f}"


def score_color(score: float | None, lo: float, hi: float) -> str:
    """Red (at or below ``lo``) through amber to green (at ``hi``)."""
    if score is None:
        return C_DIM
    t = 0.5 if hi - lo < 1e-9 else max(0.0, min(1.0, (score - lo) / (hi - lo)))
    bad, mid, good = Color.parse(C_BAD), Color.parse(C_WARN), Color.parse(C_GOOD)
    rgb = _blend(bad, mid, t * 2) if t < 0.5 else _blend(mid, good, (t - 0.5) * 2)
    return rgb


def _blend(a: Color, b: Color, t: float) -> str:
    ra, ga, ba = a.get_truecolor()
    rb, gb, bb = b.get_truecolor()
    return f"#{int(ra + (rb - ra) * t):02x}{int(ga + (gb - ga) * t):02x}{int(ba + (bb - ba) * t):02x}"


def truncate(s: str, n: int) -> str:
    s = " ".join(s.split())
    return s if len(s) <= n else s[: max(0, n - 1)] + "…"


# -- archive tree labels --------------------------------------------------------------------


def design_label(
    d: DesignRow,
    *,
    parent_score: float | None,
    best_id: str | None,
    lo: float,
    hi: float,
    title_width: int = 26,
) -> Text:
    t = Text(no_wrap=True, overflow="ellipsis")
    if d.status == "accepted":
        mark, mstyle = MARK_ACCEPTED, score_color(d.score, lo, hi)
    elif d.status == "rejected":
        mark, mstyle = MARK_REJECTED, C_BAD
    elif d.status == "evaluating":
        mark, mstyle = MARK_EVALUATING, C_WARN
    else:
        mark, mstyle = MARK_PENDING, C_DIM
    if d.id == best_id:
        mark, mstyle = MARK_BEST, f"bold {C_BEST}"
    t.append(mark, style=mstyle)
    t.append(" ")
    id_style = "bold" if d.status != "rejected" else f"{C_DIM}"
    if d.vetoed:
        id_style += " strike"
    t.append(d.id, style=id_style)
    t.append(" ")
    if d.second_parent_id:  # shown under its first parent; the mark names the other one
        merge = f"{MARK_MERGE}{d.second_parent_id} "
        t.append(merge, style=f"bold {C_INFO}")
        title_width = max(4, title_width - len(merge))
    title_style = "" if d.status != "rejected" else f"{C_DIM} italic"
    if d.origin == "builtin":
        title_style = f"{title_style} {C_ACCENT}".strip()
    t.append(truncate(d.title or "untitled", title_width).ljust(title_width), style=title_style)
    t.append(" ")
    if d.status == "accepted" or d.score is not None:
        t.append(fmt_score(d.score), style=f"bold {score_color(d.score, lo, hi)}")
        delta, dstyle = fmt_delta(d.score, parent_score)
        t.append(f" {delta:>6}" if delta else "       ", style=dstyle)
    elif d.status == "rejected":
        t.append("rejected".ljust(12), style=C_BAD)
    elif d.status == "evaluating":
        t.append("evaluating…".ljust(12), style=C_WARN)
    else:
        t.append(f"{d.status}…".ljust(12), style=C_DIM)
    if d.visits:
        t.append(f" ×{d.visits}", style=C_DIM)  # noqa: RUF001
    if d.pinned:
        t.append(f" {MARK_PINNED}", style=f"bold {C_PIN}")
    if d.vetoed:
        t.append(f" {MARK_VETOED}", style=f"bold {C_VETO}")
    return t


def best_design(designs: Iterable[DesignRow]) -> DesignRow | None:
    """The one best design, by the rule the CLI and the lineage use (ties: s.e., then age)."""
    rows = list(designs)
    bid = pick_best_id(rows)
    return next((d for d in rows if d.id == bid), None)


def best_history(designs: Sequence[DesignRow]) -> list[float]:
    """Best accepted score after each iteration (seeds are iteration 0)."""
    by_iter: dict[int, float] = {}
    for d in designs:
        if d.status == "accepted" and d.score is not None:
            by_iter[d.iteration] = max(by_iter.get(d.iteration, d.score), d.score)
    out: list[float] = []
    best = None
    for it in range(0, (max(by_iter) if by_iter else -1) + 1):
        if it in by_iter:
            best = by_iter[it] if best is None else max(best, by_iter[it])
        if best is not None:
            out.append(best)
    return out


# -- diff -----------------------------------------------------------------------------------

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@(.*)$")
ADD_BG = "#1c3b25"
DEL_BG = "#47202b"


def _highlighted_lines(code: str, lexer: str = "python") -> list[Text]:
    from rich.syntax import Syntax
    from rich.text import Span

    syntax = Syntax("", lexer, theme="monokai")
    text = syntax.highlight(code)
    text.rstrip()
    # keep the token colours, drop the theme background (the +/- rows set their own)
    text.style = ""
    text.spans = [Span(sp.start, sp.end, _no_bg(sp.style)) for sp in text.spans]
    return list(text.split("\n", allow_blank=True))


def code_block(code: str, lexer: str = "python") -> Text:
    """Syntax-highlighted code with a line-number gutter, as one Text.

    Built once (in a worker thread) so the UI thread never runs the lexer.
    """
    lines = _highlighted_lines(code, lexer)
    width = len(str(len(lines)))
    out = Text(no_wrap=True)
    for i, line in enumerate(lines, start=1):
        out.append(f"{i:>{width}} ", style=C_DIM)
        out.append("│ ", style="#3b3a40")
        out.append_text(line)
        out.append("\n")
    out.rstrip()
    return out


def _no_bg(style: str | Style) -> Style:
    st = Style.parse(style) if isinstance(style, str) else style
    return Style(color=st.color, bold=st.bold, italic=st.italic, underline=st.underline)


def diff_stats(old: str, new: str) -> tuple[int, int]:
    added = removed = 0
    for line in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0):
        if line.startswith("+") and not line.startswith("+++"):
            added += 1
        elif line.startswith("-") and not line.startswith("---"):
            removed += 1
    return added, removed


def render_diff(old: str, new: str, old_name: str, new_name: str, context: int = 3) -> Text:
    """A unified diff with line-number gutters, syntax colours and +/- backgrounds."""
    old_lines = old.splitlines()
    new_lines = new.splitlines()
    diff = list(difflib.unified_diff(old_lines, new_lines, old_name, new_name, n=context, lineterm=""))
    out = Text(no_wrap=True)
    if not diff:
        out.append("No changes: the code is identical to its parent.", style=C_DIM)
        return out
    old_hl = _highlighted_lines(old)
    new_hl = _highlighted_lines(new)
    width = max((len(x) for x in old_lines + new_lines), default=40) + 2
    o = n = 0
    for line in diff:
        if line.startswith("---"):
            out.append(f"{line}\n", style=f"bold {C_BAD}")
            continue
        if line.startswith("+++"):
            out.append(f"{line}\n", style=f"bold {C_GOOD}")
            continue
        m = _HUNK.match(line)
        if m:
            o, n = int(m.group(1)), int(m.group(3))
            out.append("\n" if out.plain.count("\n") > 2 else "")
            out.append(f"{'':>9} ", style=C_DIM)
            out.append(
                f"@@ -{m.group(1)},{m.group(2) or 1} +{m.group(3)},{m.group(4) or 1} @@",
                style=f"bold {C_INFO}",
            )
            out.append(f"{m.group(5)}\n", style=f"italic {C_DIM}")
            continue
        tag, body = line[:1], line[1:]
        if tag == "+":
            src = new_hl[n - 1] if 0 < n <= len(new_hl) else Text(body)
            out.append(f"{'':>4} {n:>4} ", style=f"{C_DIM} on {ADD_BG}")
            out.append("+ ", style=f"bold {C_GOOD} on {ADD_BG}")
            seg = src.copy()
            seg.pad_right(width - len(seg.plain))
            seg.stylize(Style(bgcolor=ADD_BG))
            out.append_text(seg)
            n += 1
        elif tag == "-":
            src = old_hl[o - 1] if 0 < o <= len(old_hl) else Text(body)
            out.append(f"{o:>4} {'':>4} ", style=f"{C_DIM} on {DEL_BG}")
            out.append("- ", style=f"bold {C_BAD} on {DEL_BG}")
            seg = src.copy()
            seg.pad_right(width - len(seg.plain))
            seg.stylize(Style(bgcolor=DEL_BG))
            out.append_text(seg)
            o += 1
        else:
            src = new_hl[n - 1] if 0 < n <= len(new_hl) else Text(body)
            out.append(f"{o:>4} {n:>4}   ", style=C_DIM)
            out.append_text(src.copy())
            o += 1
            n += 1
        out.append("\n")
    out.rstrip()
    return out


# -- log lines ------------------------------------------------------------------------------

KIND_WIDTH = 18
KIND_STYLE = {
    "run.status": f"bold {C_ACCENT}",
    "iteration.started": "bold",
    "selection": C_INFO,
    "design.proposed": C_INFO,
    "design.repair": C_WARN,
    "design.rejected": f"bold {C_BAD}",
    "design.evaluating": C_WARN,
    "episode.step": C_DIM,
    "episode.done": "",
    "evaluation.done": f"bold {C_GOOD}",
    "design.accepted": f"bold {C_GOOD}",
    "design.log": C_ACCENT,
    "meta.chunk": f"italic {C_ACCENT}",
    "meta": f"italic {C_ACCENT}",
    "command": f"bold {C_WARN}",
    "error": f"bold {C_BAD}",
    "engine": f"bold {C_BAD}",
}


def _synth_message(ev: EventRow) -> str:
    data = ev.data()
    k = ev.kind
    if k == "episode.step":
        obs = truncate(str(data.get("observation", "")), 90)
        return (
            f"{data.get('phase', '')[:3]} r{data.get('run', 0)} {data.get('task_id', '')} "
            f"#{data.get('step', '')} > {data.get('action', '')}  | {obs}"
            f"  reward={data.get('reward', 0)}"
        )
    if k == "episode.done":
        return (
            f"{data.get('phase', '')} r{data.get('run', 0)} {data.get('task_id', '')} "
            f"{'success' if data.get('success') else 'failure'} in {data.get('steps', '?')} steps"
        )
    if k == "evaluation.done":
        return f"score {fmt_score(data.get('score'))} ± {fmt_score(data.get('score_se'))}"
    if k == "selection":
        probs = data.get("probabilities") or {}
        top = ", ".join(f"{i} {p:.2f}" for i, p in sorted(probs.items(), key=lambda x: -x[1])[:5])
        return f"parents {', '.join(data.get('parents', []))}  (p: {top})"
    if data:
        return " ".join(f"{k}={v}" for k, v in list(data.items())[:6])
    return ""


def event_lines(ev: EventRow) -> list[str]:
    """One or more log lines for an event (multi-line messages are split)."""
    msg = ev.message or _synth_message(ev)
    if ev.kind == "episode.done":
        ok = ev.data().get("success")
        msg = f"{'✓' if ok else '✗'} {msg}"
    ts = ev.ts.strftime("%H:%M:%S") if isinstance(ev.ts, datetime) else "--:--:--"
    did = (ev.design_id or "-").ljust(5)[:5]
    kind = ev.kind.ljust(KIND_WIDTH)[:KIND_WIDTH]
    parts = msg.splitlines() or [""]
    head = f"{ts} {did} {kind} "
    pad = " " * len(head)
    return [head + parts[0]] + [pad + p for p in parts[1:]]


_LOG_PREFIX = 8 + 1 + 5 + 1  # "HH:MM:SS d000 "


class LogHighlighter(Highlighter):
    """Colours a log line by its fixed columns (time, design, kind) and a few words."""

    _good = re.compile(r"✓|\bsuccess\b|\baccepted\b|reward=1(\.0)?\b")
    _bad = re.compile(r"✗|\bfailure\b|\brejected\b|\berror\b|Traceback|Error\b")
    _num = re.compile(r"(?<![\w.])[-+]?\d+\.\d+")

    def highlight(self, text: Text) -> None:
        plain = text.plain
        if len(plain) < _LOG_PREFIX or plain[2:3] != ":":
            return
        text.stylize(C_DIM, 0, 8)
        text.stylize(f"bold {C_INFO}", 9, 14)
        kind = plain[15 : 15 + KIND_WIDTH].strip()
        style = KIND_STYLE.get(kind, "")
        if style:
            text.stylize(style, 15, 15 + KIND_WIDTH)
        body_start = 15 + KIND_WIDTH
        if kind == "episode.step":
            text.stylize(C_DIM, body_start, len(plain))
            return
        if kind in ("meta.chunk", "meta", "design.log"):
            text.stylize(style, body_start, len(plain))
            return
        if kind in ("error", "engine", "design.rejected"):
            text.stylize(C_BAD, body_start, len(plain))
            return
        for m in self._good.finditer(plain, body_start):
            text.stylize(f"bold {C_GOOD}", m.start(), m.end())
        for m in self._bad.finditer(plain, body_start):
            text.stylize(f"bold {C_BAD}", m.start(), m.end())
        for m in self._num.finditer(plain, body_start):
            text.stylize(C_WARN, m.start(), m.end())
