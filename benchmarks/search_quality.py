"""Which parent selection finds better designs, and do merges help? (issue 14)

Runs offline searches on `household` for open-ended, greedy and pareto selection, each
without merging (``--merge-rate 0``) and with it (``--merge-rate 0.2``), over ``--seeds`` x
``--iterations``, as a user would (``alma-tui run --headless --selection S --merge-rate R
--seed N``), ``--jobs`` at a time; a finished search is reused. Then it

1. tabulates per strategy the best-so-far search-split fitness (mean over seeds) after
   every few iterations, the final best's held-out test score (the engine measures it for
   every new best: the test split, the searches' collection/deployment sizes and runs), and
   how many designs were accepted;
2. counts the merge children and how often one beat both of its parents: on the search
   split (the archive's scores), and on the held-out test split, where each merge child and
   its two parents are evaluated again here (the real Evaluator, designs sandboxed, the
   offline agent called directly; ``--heldout-runs`` runs on task pool = the search's seed);
3. writes the table as markdown (``--out``) and the best-so-far curves as a PNG (``--png``;
   a small dependency-free writer: matplotlib is not a dependency) and an SVG (``--svg``).

    python -m benchmarks.search_quality [--seeds 0 1 2 3 4] [--iterations 20] [--jobs 2]
        [--runs-dir /tmp/alma-search-quality] [--out docs/search_quality.md]
        [--png docs/search_quality.png] [--svg docs/search_quality.svg]
    python -m benchmarks.search_quality --quick     # a few seconds: 1 seed, 2 iterations, tiny tasks
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import struct
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

STRATEGIES = ("open-ended", "greedy", "pareto")
MERGE_RATE = 0.2  # "with merge": the default rate of open-ended and pareto, asked for explicitly in greedy
COLORS = {
    "open-ended": (0x1F, 0x77, 0xB4),
    "greedy": (0xD6, 0x27, 0x28),
    "pareto": (0x2C, 0xA0, 0x2C),
}


@dataclass(frozen=True)
class Config:
    selection: str
    merge: bool
    rate: float = MERGE_RATE

    @property
    def name(self) -> str:
        return f"{self.selection}{' + merge' if self.merge else ''}"

    @property
    def slug(self) -> str:
        return f"{self.selection}-{'merge' if self.merge else 'nomerge'}"

    def flags(self) -> list[str]:
        return ["--selection", self.selection, "--merge-rate", str(self.rate if self.merge else 0.0)]


@dataclass
class Result:
    config: Config
    curves: dict[int, list[float]] = field(default_factory=dict)  # seed -> best-so-far per iteration
    final_test: dict[int, float | None] = field(default_factory=dict)  # seed -> held-out of the final best
    accepted: dict[int, int] = field(default_factory=dict)
    merges: list[dict] = field(default_factory=list)  # one per merge child (accepted or not)
    walls: dict[int, float] = field(default_factory=dict)


# -- running searches ---------------------------------------------------------------------------------
def repo_of(runs_dir: Path, cfg: Config, seed: int) -> Path:
    return runs_dir / cfg.slug / f"seed{seed}"


def iterations_done(repo: Path) -> int:
    """How far the search in ``repo`` got (0 when there is none yet)."""
    if not (repo / ".alma" / "alma.db").exists():
        return 0
    from alma_tui.store import Store

    store = Store(repo, create=False)
    try:
        run = store.get_run()
        return run.iterations_done if run is not None else 0
    finally:
        store.close()


def run_searches(
    jobs_list: list[tuple[Config, int]], runs_dir: Path, iterations: int, jobs: int, extra: list[str]
) -> dict:
    """Every (config, seed) search, ``jobs`` at a time; a search that already reached ``iterations``
    is resumed to a no-op by the engine itself. Returns wall seconds per search run here."""
    # a search that got at least this far is read up to ``iterations`` (the engine refuses a lower target)
    jobs_list = [(c, s) for c, s in jobs_list if iterations_done(repo_of(runs_dir, c, s)) < iterations]
    if jobs == 0:  # in this process, one after another (--quick: no interpreter start per search)
        from alma_tui.cli import main as cli

        out: dict[tuple[Config, int], float] = {}
        for cfg, seed in jobs_list:
            repo = repo_of(runs_dir, cfg, seed)
            repo.parent.mkdir(parents=True, exist_ok=True)
            t0 = time.perf_counter()
            cmd = ["run", "--headless", "--repo", str(repo), "--iterations", str(iterations), "--seed", str(seed)]
            with open(repo.parent / f"seed{seed}.log", "a") as log, contextlib.redirect_stdout(log):
                rc = cli([*cmd, *cfg.flags(), *extra])
            if rc != 0:
                raise SystemExit(f"search {cfg.name} seed {seed} failed; see {repo.parent}/seed{seed}.log")
            out[(cfg, seed)] = time.perf_counter() - t0
        return out
    pending = list(jobs_list)
    procs: dict[tuple[Config, int], tuple[subprocess.Popen[bytes], float]] = {}
    walls: dict[tuple[Config, int], float] = {}
    while pending or procs:
        while pending and len(procs) < jobs:
            cfg, seed = pending.pop(0)
            repo = repo_of(runs_dir, cfg, seed)
            repo.parent.mkdir(parents=True, exist_ok=True)
            cmd = [sys.executable, "-m", "alma_tui", "run", "--headless", "--repo", str(repo)]
            cmd += ["--iterations", str(iterations), "--seed", str(seed), *cfg.flags(), *extra]
            log = open(repo.parent / f"seed{seed}.log", "ab")  # noqa: SIM115 - closed with the process
            procs[(cfg, seed)] = (subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT), time.perf_counter())
        for key, (p, t0) in list(procs.items()):
            if p.poll() is not None:
                if p.returncode != 0:
                    log_path = repo_of(runs_dir, *key).parent / f"seed{key[1]}.log"
                    raise SystemExit(f"search {key[0].name} seed {key[1]} failed (exit {p.returncode}); see {log_path}")
                walls[key] = time.perf_counter() - t0
                del procs[key]
        time.sleep(0.3)
    return walls


def best_id(rows: list[dict]) -> str | None:
    from alma_tui.archive_rows import best_id as pick

    return pick(rows)


def archive(repo: Path) -> list[dict]:
    """The rows `alma-tui designs --json` prints, read in this process."""
    from alma_tui.archive_rows import design_rows
    from alma_tui.store import Store

    store = Store(repo, create=False)
    try:
        return design_rows(store)
    finally:
        store.close()


def best_so_far(rows: list[dict], iterations: int) -> list[float]:
    """Best accepted search-split score among designs of iteration <= i, for i = 0..iterations."""
    curve = []
    for i in range(iterations + 1):
        scores = [r["score"] for r in rows if r["status"] == "accepted" and r["iteration"] <= i]
        curve.append(max(scores) if scores else 0.0)
    return curve


def code_of(repo: Path, design_id: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "show", f"design/{design_id}:design.py"], check=True, capture_output=True, text=True
    ).stdout


# -- held-out evaluation of merges --------------------------------------------------------------------
class HeldOut:
    """Designs evaluated on the test split, as `household_learning.py` does (cached by code)."""

    def __init__(self, n_col: int, n_dep: int, runs: int) -> None:
        from alma_tui.domains import get_domain
        from alma_tui.engine.evaluator import Evaluator
        from alma_tui.offline.policy import choose_action

        self.evaluator = Evaluator(get_domain("household"), lambda m, s: choose_action(m, s))
        self.n_col, self.n_dep, self.runs = n_col, n_dep, runs
        self.cache: dict[tuple[str, int], float] = {}

    def score(self, code: str, pool: int) -> float:
        from alma_tui.engine.evaluator import EvalSettings, Hooks
        from alma_tui.llm.local_embed import hash_embed
        from alma_tui.offline.provider import offline_answer

        def design_llm(prompt: str, system: str | None = None) -> str:
            messages = ([{"role": "system", "content": system}] if system else []) + [
                {"role": "user", "content": prompt}
            ]
            return offline_answer("offline/agent", messages, 0)

        key = (code, pool)
        if key not in self.cache:
            settings = EvalSettings(
                n_collection=self.n_col, n_deployment=self.n_dep, runs=self.runs, split="test", seed=pool
            )
            hooks = Hooks(design_llm=design_llm, design_embed=hash_embed)
            self.cache[key] = self.evaluator.evaluate(code, settings, hooks).score
        return self.cache[key]


def merge_children(repo: Path, rows: list[dict], seed: int, held: HeldOut | None, iterations: int) -> list[dict]:
    by_id = {r["id"]: r for r in rows}
    out = []
    for r in rows:
        if r["iteration"] > iterations:
            continue
        parents = r.get("parents") or []
        if len(parents) != 2:
            continue
        a, b = by_id[parents[0]], by_id[parents[1]]
        m = {
            "id": r["id"],
            "parents": parents,
            "status": r["status"],
            "search_beats_both": None,
            "test_beats_both": None,
        }
        if r["status"] == "accepted" and r["score"] is not None:
            m["search_beats_both"] = r["score"] > max(a["score"] or 0.0, b["score"] or 0.0)
            if held is not None:
                ts = [held.score(code_of(repo, d), seed) for d in (r["id"], *parents)]
                m["test"] = ts
                m["test_beats_both"] = ts[0] > max(ts[1], ts[2])
        out.append(m)
    return out


# -- reporting ------------------------------------------------------------------------------------------
def _mean(xs: list[float]) -> float:
    return statistics.fmean(xs) if xs else float("nan")


def _se(xs: list[float]) -> float:
    return statistics.stdev(xs) / len(xs) ** 0.5 if len(xs) > 1 else 0.0


def markdown(results: list[Result], iterations: int, header: str) -> str:
    marks = sorted({0, *range(5, iterations + 1, 5), iterations})
    lines = [header, ""]
    cols = ["strategy", *[f"best @{i}" for i in marks], "final held-out", "accepted", "merges", "beat both (search)"]
    cols.append("beat both (held-out)")
    lines.append("| " + " | ".join(cols) + " |")
    lines.append("|" + "---|" * len(cols))
    for r in results:
        seeds = sorted(r.curves)
        cells = [r.config.name]
        for i in marks:
            xs = [r.curves[s][i] for s in seeds]
            cells.append(f"{_mean(xs):.3f} ± {_se(xs):.3f}")
        tests = [v for v in r.final_test.values() if v is not None]
        cells.append(f"{_mean(tests):.3f} ± {_se(tests):.3f}" if tests else "-")
        cells.append(f"{_mean([float(v) for v in r.accepted.values()]):.1f}")
        acc = [m for m in r.merges if m["status"] == "accepted"]
        cells.append(f"{len(r.merges)} ({len(acc)} accepted)" if r.config.merge else "-")
        sb = [m for m in acc if m["search_beats_both"]]
        tb = [m for m in acc if m["test_beats_both"]]
        tested = [m for m in acc if m["test_beats_both"] is not None]
        cells.append(f"{len(sb)}/{len(acc)}" if r.config.merge else "-")
        cells.append(f"{len(tb)}/{len(tested)}" if r.config.merge and tested else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def mean_curves(results: list[Result]) -> dict[str, list[float]]:
    out = {}
    for r in results:
        seeds = sorted(r.curves)
        n = len(r.curves[seeds[0]])
        out[r.config.name] = [_mean([r.curves[s][i] for s in seeds]) for i in range(n)]
    return out


# -- pictures: a tiny PNG writer (no plotting dependency) and the same plot as SVG -----------------------
# 3x5 glyphs, rows top to bottom, 3 bits each (the characters the plot's labels use)
_FONT = {
    "0": [7, 5, 5, 5, 7],
    "1": [2, 6, 2, 2, 7],
    "2": [7, 1, 7, 4, 7],
    "3": [7, 1, 3, 1, 7],
    "4": [5, 5, 7, 1, 1],
    "5": [7, 4, 7, 1, 7],
    "6": [7, 4, 7, 5, 7],
    "7": [7, 1, 1, 2, 2],
    "8": [7, 5, 7, 5, 7],
    "9": [7, 5, 7, 1, 7],
    ".": [0, 0, 0, 0, 2],
    "-": [0, 0, 7, 0, 0],
    "+": [0, 2, 7, 2, 0],
    " ": [0, 0, 0, 0, 0],
    "A": [2, 5, 7, 5, 5],
    "B": [6, 5, 6, 5, 6],
    "C": [7, 4, 4, 4, 7],
    "D": [6, 5, 5, 5, 6],
    "E": [7, 4, 6, 4, 7],
    "G": [7, 4, 5, 5, 7],
    "H": [5, 5, 7, 5, 5],
    "I": [7, 2, 2, 2, 7],
    "L": [4, 4, 4, 4, 7],
    "M": [5, 7, 7, 5, 5],
    "N": [6, 5, 5, 5, 5],
    "O": [7, 5, 5, 5, 7],
    "P": [7, 5, 7, 4, 4],
    "R": [6, 5, 6, 5, 5],
    "S": [7, 4, 7, 1, 7],
    "T": [7, 2, 2, 2, 2],
    "U": [5, 5, 5, 5, 7],
    "Y": [5, 5, 2, 2, 2],
}


class Canvas:
    def __init__(self, w: int, h: int) -> None:
        self.w, self.h = w, h
        self.px = bytearray(b"\xff" * (w * h * 3))

    def dot(self, x: int, y: int, c: tuple[int, int, int]) -> None:
        if 0 <= x < self.w and 0 <= y < self.h:
            i = (y * self.w + x) * 3
            self.px[i : i + 3] = bytes(c)

    def line(
        self, x0: float, y0: float, x1: float, y1: float, c: tuple[int, int, int], width: int = 1, dash: int = 0
    ) -> None:
        n = int(max(abs(x1 - x0), abs(y1 - y0))) + 1
        for k in range(n + 1):
            if dash and (k // dash) % 2:
                continue
            x = round(x0 + (x1 - x0) * k / n)
            y = round(y0 + (y1 - y0) * k / n)
            for dx in range(-(width // 2), width - width // 2):
                for dy in range(-(width // 2), width - width // 2):
                    self.dot(x + dx, y + dy, c)

    def text(self, x: int, y: int, s: str, c: tuple[int, int, int] = (0, 0, 0), scale: int = 2) -> None:
        for ch in s.upper():
            rows = _FONT.get(ch, _FONT[" "])
            for ry, bits in enumerate(rows):
                for rx in range(3):
                    if bits & (4 >> rx):
                        for sx in range(scale):
                            for sy in range(scale):
                                self.dot(x + rx * scale + sx, y + ry * scale + sy, c)
            x += 4 * scale

    def png(self) -> bytes:
        raw = b"".join(b"\x00" + bytes(self.px[y * self.w * 3 : (y + 1) * self.w * 3]) for y in range(self.h))

        def chunk(kind: bytes, data: bytes) -> bytes:
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

        head = struct.pack(">IIBBBBB", self.w, self.h, 8, 2, 0, 0, 0)
        return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", head) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def _axes(curves: dict[str, list[float]]) -> tuple[float, float, int]:
    vals = [v for c in curves.values() for v in c]
    lo = max(0.0, (int(min(vals) * 10) / 10) if vals else 0.0)
    hi = min(1.0, (int(max(vals) * 10) + 1) / 10 if vals else 1.0)
    n = max(len(c) for c in curves.values()) - 1
    return lo, max(hi, lo + 0.1), max(1, n)


def write_png(curves: dict[str, list[float]], path: Path) -> None:
    """Best-so-far mean curves: colour = strategy, dashed = with merge."""
    w, h, left, right, top, bottom = 720, 420, 60, 200, 20, 40
    cv = Canvas(w, h)
    lo, hi, n = _axes(curves)

    def x(i: float) -> float:
        return left + (w - left - right) * i / n

    def y(v: float) -> float:
        return top + (h - top - bottom) * (1 - (v - lo) / (hi - lo))

    steps = round((hi - lo) * 10)
    for k in range(steps + 1):
        v = lo + k / 10
        cv.line(left, y(v), w - right, y(v), (0xDD, 0xDD, 0xDD))
        cv.text(left - 36, round(y(v)) - 5, f"{v:.1f}")
    for i in range(0, n + 1, max(1, n // 10)):
        cv.text(round(x(i)) - 4, h - bottom + 8, str(i))
    cv.text((left + w - right) // 2 - 36, h - 14, "ITERATION")
    cv.line(left, top, left, h - bottom, (0, 0, 0))
    cv.line(left, h - bottom, w - right, h - bottom, (0, 0, 0))
    for k, (name, curve) in enumerate(curves.items()):
        sel = name.split(" ")[0]
        color = COLORS.get(sel, (0, 0, 0))
        dash = 6 if "merge" in name else 0
        for i in range(len(curve) - 1):
            cv.line(x(i), y(curve[i]), x(i + 1), y(curve[i + 1]), color, width=2, dash=dash)
        ly = top + 10 + 22 * k
        cv.line(w - right + 12, ly + 4, w - right + 40, ly + 4, color, width=2, dash=dash and 4)
        cv.text(w - right + 46, ly, name.replace(" + ", "+"), color)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(cv.png())


def write_svg(curves: dict[str, list[float]], path: Path, title: str) -> None:
    w, h, left, right, top, bottom = 720, 420, 56, 190, 40, 44
    lo, hi, n = _axes(curves)

    def x(i: float) -> float:
        return left + (w - left - right) * i / n

    def y(v: float) -> float:
        return top + (h - top - bottom) * (1 - (v - lo) / (hi - lo))

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
        f'<rect width="{w}" height="{h}" fill="white"/>',
        f'<text x="{left}" y="16" font-size="13">{title}</text>',
        f'<text x="{left}" y="30" font-size="10" fill="#555">mean best-so-far search-split fitness over seeds; '
        "dashed: with merge</text>",
    ]
    for k in range(round((hi - lo) * 10) + 1):
        v = lo + k / 10
        parts.append(f'<line x1="{left}" x2="{w - right}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{left - 8}" y="{y(v) + 4:.1f}" text-anchor="end">{v:.1f}</text>')
    for i in range(0, n + 1, max(1, n // 10)):
        parts.append(f'<text x="{x(i):.1f}" y="{h - bottom + 16}" text-anchor="middle">{i}</text>')
    parts.append(f'<text x="{(left + w - right) / 2:.0f}" y="{h - 8}" text-anchor="middle">iteration</text>')
    for k, (name, curve) in enumerate(curves.items()):
        color = "#{:02x}{:02x}{:02x}".format(*COLORS.get(name.split(" ")[0], (0, 0, 0)))
        dash = ' stroke-dasharray="6,4"' if "merge" in name else ""
        pts = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(curve))
        parts.append(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="2"{dash}/>')
        ly = top + 10 + 20 * k
        legend = f'x1="{w - right + 12}" x2="{w - right + 40}" y1="{ly}" y2="{ly}"'
        parts.append(f'<line {legend} stroke="{color}" stroke-width="2"{dash}/>')
        parts.append(f'<text x="{w - right + 46}" y="{ly + 4}" fill="{color}">{name}</text>')
    parts.append("</svg>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts) + "\n")


# -- main ---------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--strategies", nargs="+", choices=STRATEGIES, default=list(STRATEGIES))
    ap.add_argument("--jobs", type=int, default=2, help="searches at once")
    ap.add_argument("--collection", type=int, default=12, help="the searches' collection tasks")
    ap.add_argument("--deployment", type=int, default=12, help="the searches' deployment tasks")
    ap.add_argument("--runs", type=int, default=3, help="the searches' deployment runs")
    ap.add_argument("--heldout-runs", type=int, default=1, help="runs of the held-out evaluation of merges (0: skip)")
    ap.add_argument("--runs-dir", type=Path, default=Path("/tmp/alma-search-quality"))
    ap.add_argument("--out", type=Path, default=None, help="write the markdown table here")
    ap.add_argument("--png", type=Path, default=None, help="write the best-so-far picture (PNG) here")
    ap.add_argument("--svg", type=Path, default=None, help="and as SVG")
    ap.add_argument(
        "--quick",
        action="store_true",
        help="CI: 1 seed, 1 iteration of 1 child, 2+2 tasks x 1 run, merge rate 1, searches in this process",
    )
    args = ap.parse_args(argv)
    rate = MERGE_RATE
    extra = ["--collection", str(args.collection), "--deployment", str(args.deployment), "--runs", str(args.runs)]
    if args.quick:
        args.seeds, args.iterations, args.jobs, rate = [0], 1, 0, 1.0
        extra = ["--collection", "2", "--deployment", "2", "--runs", "1", "--parents", "1", "--concurrency", "2"]
        args.collection, args.deployment, args.runs = 2, 2, 1
    configs = [Config(s, m, rate) for s in args.strategies for m in (False, True)]
    t0 = time.perf_counter()
    walls = run_searches(
        [(c, s) for c in configs for s in args.seeds], args.runs_dir, args.iterations, args.jobs, extra
    )
    held = HeldOut(args.collection, args.deployment, args.heldout_runs) if args.heldout_runs > 0 else None
    results = []
    for cfg in configs:
        r = Result(cfg)
        for seed in args.seeds:
            repo = repo_of(args.runs_dir, cfg, seed)
            rows = archive(repo)
            r.curves[seed] = best_so_far(rows, args.iterations)
            # the best after --iterations (a longer search in --runs-dir is read up to it): it was
            # the best when it was accepted, so the engine measured its held-out score then
            upto = [x for x in rows if x["iteration"] <= args.iterations]
            bid = best_id(upto)
            r.final_test[seed] = next((x.get("test_score") for x in upto if x["id"] == bid), None)
            r.accepted[seed] = sum(1 for x in upto if x["status"] == "accepted")
            r.merges += merge_children(repo, rows, seed, held, args.iterations) if cfg.merge else []
            if (cfg, seed) in walls:
                r.walls[seed] = walls[(cfg, seed)]
        results.append(r)
    size = (
        f"household, offline, seeds {args.seeds} x {args.iterations} iterations; search split "
        f"{args.collection}+{args.deployment} tasks x {args.runs} runs; held-out: the final best's test score "
        "(the engine's, same sizes)"
        + (f"; merges re-evaluated on the test split ({args.heldout_runs} run, pool = seed)" if held else "")
    )
    header = f"Search quality by parent selection ({size}). Mean ± s.e. over seeds."
    table = markdown(results, args.iterations, header)
    print(table)
    for r in results:
        if r.walls:
            print(
                f"{r.config.name}: search wall " + ", ".join(f"seed {s} {w:.0f}s" for s, w in sorted(r.walls.items()))
            )
    print(f"total wall {time.perf_counter() - t0:.0f} s")
    curves = mean_curves(results)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table)
    if args.png:
        write_png(curves, args.png)
        print(f"picture written to {args.png}")
    if args.svg:
        write_svg(curves, args.svg, "household: best-so-far fitness by parent selection")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
