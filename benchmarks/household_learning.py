"""Does the offline search learn on `household`? Held-out table and best-so-far curve (issue 11).

1. Runs (or reuses) ``--seeds`` offline searches of ``--iterations`` iterations each, as a
   user would (`alma-tui run --headless --seed S --collection 48 --deployment 24`: fewer
   collection tasks hold too little evidence, spread over five house kinds and two seasons,
   for the per-house and per-season mechanisms to beat pooled counts on the search split;
   with 24 the median curve is flat after iteration 5), ``--jobs`` at a time.
2. Prints the best-so-far search-split fitness after each iteration, per seed and the median,
   and writes that curve as an SVG picture (``--svg``).
3. Evaluates on the held-out test split (``--pools`` task pools of ``--collect`` + ``--deploy``
   tasks x ``--runs`` runs, the real Evaluator with the design sandboxed, the offline agent and
   the offline design llm called directly): the five built-in baselines, the oracle (handed the
   domain's true regularities; a fixture, never in an archive), and per seed the best design
   after 3 iterations and the final best. Then checks the issue's targets and prints each
   one's verdict.

    PYTHONPATH=. python benchmarks/household_learning.py [--seeds 0 1 2 3 4] [--iterations 20]
        [--runs-dir /tmp/alma-curve] [--jobs 5] [--svg docs/learning_curve.svg]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import itertools

from oracle_design import oracle_source

from alma_tui.archive_rows import best_id
from alma_tui.designs import builtin_source
from alma_tui.domains import get_domain
from alma_tui.engine.evaluator import EvalSettings, Evaluator, Hooks
from alma_tui.llm.local_embed import hash_embed
from alma_tui.offline.policy import choose_action
from alma_tui.offline.provider import offline_answer

BASELINES = ["no_memory", "trajectory_retrieval", "reasoning_bank", "dynamic_cheatsheet", "g_memory"]


def design_llm(prompt: str, system: str | None = None) -> str:
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    return offline_answer("offline/agent", messages, 0)


def run_searches(runs_dir: Path, seeds: list[int], iterations: int, jobs: int, extra: list[str]) -> dict[int, float]:
    """Each seed's search (skipped when its repo already reached ``iterations``); wall seconds."""
    runs_dir.mkdir(parents=True, exist_ok=True)
    pending = list(seeds)
    procs: dict[int, tuple[subprocess.Popen[bytes], float]] = {}
    walls: dict[int, float] = {}
    while pending or procs:
        while pending and len(procs) < jobs:
            s = pending.pop(0)
            cmd = [sys.executable, "-m", "alma_tui", "run", "--headless", "--repo", str(runs_dir / f"seed{s}")]
            cmd += ["--iterations", str(iterations), "--seed", str(s), *extra]
            log = open(runs_dir / f"seed{s}.log", "ab")  # noqa: SIM115 - closed with the process
            procs[s] = (subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT), time.perf_counter())
        for s, (p, t0) in list(procs.items()):
            if p.poll() is not None:
                if p.returncode != 0:
                    raise SystemExit(f"search seed {s} failed (exit {p.returncode}); see {runs_dir}/seed{s}.log")
                walls[s] = time.perf_counter() - t0
                del procs[s]
        time.sleep(0.5)
    return walls


def archive(repo: Path) -> list[dict]:
    out = subprocess.run(
        [sys.executable, "-m", "alma_tui", "designs", "--repo", str(repo), "--json"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out)


def best_so_far(rows: list[dict], iterations: int) -> list[float]:
    """Best accepted search-split score among designs of iteration <= i, for i = 0..iterations."""
    curve = []
    for i in range(iterations + 1):
        scores = [r["score"] for r in rows if r["status"] == "accepted" and r["iteration"] <= i]
        curve.append(max(scores) if scores else 0.0)
    return curve


def best_until(rows: list[dict], iteration: int) -> dict:
    bid = best_id([r for r in rows if r["iteration"] <= iteration])
    return next(r for r in rows if r["id"] == bid)


def code_of(repo: Path, design_id: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "show", f"design/{design_id}:design.py"], check=True, capture_output=True, text=True
    ).stdout


def heldout(evaluator: Evaluator, code: str, pools: list[int], n_col: int, n_dep: int, runs: int) -> list[float]:
    out = []
    for pool in pools:
        settings = EvalSettings(n_collection=n_col, n_deployment=n_dep, runs=runs, split="test", seed=pool)
        out.append(evaluator.evaluate(code, settings, Hooks(design_llm=design_llm, design_embed=hash_embed)).score)
    return out


def svg_curve(
    curves: dict[int, list[float]], median: list[float], path: Path, oracle: float | None, proto: str
) -> None:
    """The best-so-far curves as a small standalone SVG (no plotting dependency)."""
    w, h, left, right, top, bottom = 640, 360, 56, 16, 40, 44
    n = len(median) - 1
    lo = 0.0
    hi = 1.0

    def x(i: float) -> float:
        return left + (w - left - right) * i / max(1, n)

    def y(v: float) -> float:
        return top + (h - top - bottom) * (1 - (v - lo) / (hi - lo))

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
        f'<rect width="{w}" height="{h}" fill="white"/>',
        f'<text x="{left}" y="16" font-size="13">household: best-so-far fitness of '
        f"{len(curves)} offline searches</text>",
        f'<text x="{left}" y="30" font-size="10" fill="#555">search split {proto}; thin: each seed, '
        "thick: median, dashed: oracle (test split)</text>",
    ]
    for k in range(0, 11, 2):
        v = k / 10
        parts.append(f'<line x1="{left}" x2="{w - right}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{left - 8}" y="{y(v) + 4:.1f}" text-anchor="end">{v:.1f}</text>')
    for i in range(0, n + 1, max(1, n // 10)):
        parts.append(f'<text x="{x(i):.1f}" y="{h - bottom + 16}" text-anchor="middle">{i}</text>')
    parts.append(f'<text x="{(left + w) / 2:.0f}" y="{h - 8}" text-anchor="middle">iteration</text>')
    if oracle is not None:
        parts.append(
            f'<line x1="{left}" x2="{w - right}" y1="{y(oracle):.1f}" y2="{y(oracle):.1f}" '
            'stroke="#2a7" stroke-dasharray="5,4"/>'
        )
        parts.append(f'<text x="{w - right - 4}" y="{y(oracle) - 5:.1f}" text-anchor="end" fill="#2a7">oracle</text>')
    for curve in curves.values():
        pts = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(curve))
        parts.append(f'<polyline points="{pts}" fill="none" stroke="#9ab" stroke-width="1"/>')
    pts = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(median))
    parts.append(f'<polyline points="{pts}" fill="none" stroke="#c33" stroke-width="2.5"/>')
    parts.append(f'<text x="{x(n) - 4:.1f}" y="{y(median[-1]) + 16:.1f}" text-anchor="end" fill="#c33">median</text>')
    parts.append("</svg>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--runs-dir", type=Path, default=Path("/tmp/alma-curve"))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--pools", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--collect", type=int, default=24)
    ap.add_argument("--deploy", type=int, default=24)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--svg", type=Path, default=None)
    ap.add_argument("--search-collect", type=int, default=48, help="the searches' collection tasks")
    ap.add_argument("--search-deploy", type=int, default=24, help="the searches' deployment tasks")
    args = ap.parse_args()

    extra = ["--collection", str(args.search_collect), "--deployment", str(args.search_deploy)]
    walls = run_searches(args.runs_dir, args.seeds, args.iterations, args.jobs, extra)
    proto = f"{args.search_collect}+{args.search_deploy} x 3, train split"
    rows = {s: archive(args.runs_dir / f"seed{s}") for s in args.seeds}
    curves = {s: best_so_far(r, args.iterations) for s, r in rows.items()}
    median = [statistics.median(c[i] for c in curves.values()) for i in range(args.iterations + 1)]
    print(f"best-so-far search-split fitness ({proto}), seeds {args.seeds}, {args.iterations} iterations")
    print("iteration  " + " ".join(f"{i:>5d}" for i in range(args.iterations + 1)))
    for s, c in curves.items():
        print(f"seed {s:<5d} " + " ".join(f"{v:5.3f}" for v in c))
    print("median     " + " ".join(f"{v:5.3f}" for v in median))
    if walls:
        print("search wall time: " + ", ".join(f"seed {s} {w:.0f} s" for s, w in sorted(walls.items())))

    evaluator = Evaluator(get_domain("household"), lambda m, s: choose_action(m, s))
    size = f"test split, pools {args.pools} of {args.collect}+{args.deploy} tasks x {args.runs} runs"
    print(f"\nheld-out scores ({size})")
    table: dict[str, float] = {}
    for name in BASELINES:
        sc = heldout(evaluator, builtin_source(name), args.pools, args.collect, args.deploy, args.runs)
        table[name] = statistics.mean(sc)
        print(f"{name:28s} {table[name]:.3f}  (per pool: {' '.join(f'{v:.3f}' for v in sc)})")
    sc = heldout(evaluator, oracle_source(), args.pools, args.collect, args.deploy, args.runs)
    table["oracle"] = statistics.mean(sc)
    print(f"{'oracle (fixture)':28s} {table['oracle']:.3f}  (per pool: {' '.join(f'{v:.3f}' for v in sc)})")
    at3, final = [], []
    for s, r in rows.items():
        repo = args.runs_dir / f"seed{s}"
        b3, bf = best_until(r, 3), best_until(r, args.iterations)
        s3 = statistics.mean(
            heldout(evaluator, code_of(repo, b3["id"]), args.pools, args.collect, args.deploy, args.runs)
        )
        sf = statistics.mean(
            heldout(evaluator, code_of(repo, bf["id"]), args.pools, args.collect, args.deploy, args.runs)
        )
        at3.append(s3)
        final.append(sf)
        print(f"seed {s}: best after 3 iterations {b3['id']} {s3:.3f}; final best {bf['id']} {sf:.3f}  ({bf['title']})")
    m3, mf = statistics.median(at3), statistics.median(final)
    print(f"{'learned best after 3 (median)':28s} {m3:.3f}")
    print(f"{'learned best final (median)':28s} {mf:.3f}")

    best_baseline = max(table[n] for n in BASELINES)
    llm_baselines = [table[n] for n in ("reasoning_bank", "dynamic_cheatsheet", "g_memory")]
    after3 = median[3:]
    checks = [
        ("no_memory <= 0.35", table["no_memory"] <= 0.35),
        (
            "no_memory < trajectory_retrieval < every LLM baseline",
            table["no_memory"] < table["trajectory_retrieval"] < min(llm_baselines),
        ),
        ("oracle >= 0.95", table["oracle"] >= 0.95),
        ("best after 3 iterations >= 15 points below the oracle", table["oracle"] - m3 >= 0.15),
        (
            "median best-so-far keeps climbing after iteration 3",
            after3[-1] > after3[0] and sum(b > a for a, b in itertools.pairwise(after3)) >= 2,
        ),
        ("learned best >= best baseline + 10 points", mf - best_baseline >= 0.10),
    ]
    print("\ntargets (issue 11)")
    for text, ok in checks:
        print(f"  [{'met' if ok else 'NOT MET'}] {text}")
    if args.svg:
        svg_curve(curves, median, args.svg, table["oracle"], proto)
        print(f"curve written to {args.svg}")


if __name__ == "__main__":
    main()
