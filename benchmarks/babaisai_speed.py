"""Baba Is AI engine speed and BFS solver time per level (targets: >= 20,000 steps/s, < 1 s/level).

Steps/s: random moves on generated levels (a new game when one ends), engine only. Solver:
``solve()`` from scratch on ``--levels`` fresh levels of every family (train and test seeds),
checking each optimal solution replays to a win within the 20-step limit.

    PYTHONPATH=. python benchmarks/babaisai_speed.py [--steps 200000] [--levels 20]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from alma_tui.domains.babaisai.engine import Game
from alma_tui.domains.babaisai.levels import FAMILIES, MAX_STEPS, generate_level
from alma_tui.domains.babaisai.solver import solve


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200_000)
    ap.add_argument("--levels", type=int, default=20, help="levels per family")
    args = ap.parse_args()

    levels = [generate_level(seed).level for seed in range(2 * len(FAMILIES))]
    rng = random.Random(0)
    moves = [rng.choice(("up", "right", "down", "left", "idle")) for _ in range(args.steps)]
    game, k = Game(levels[0]), 0
    t0 = time.perf_counter()
    for move in moves:
        if game.won or game.lost:
            k = (k + 1) % len(levels)
            game = Game(levels[k])
        game.step(move)
    dt = time.perf_counter() - t0
    print(f"engine: {args.steps / dt:,.0f} steps/s ({args.steps:,} random moves over {len(levels)} levels)")

    all_times: list[float] = []
    for family in FAMILIES:
        times, lengths, gen_times = [], [], []
        for i in range(args.levels):
            seed = 100_000 + 2 * i + (i % 2)  # train and test parities
            t0 = time.perf_counter()
            level = generate_level(seed, family).level
            gen_times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            path = solve(level, MAX_STEPS)
            times.append(time.perf_counter() - t0)
            assert path is not None and len(path) <= MAX_STEPS, f"{family} seed {seed} unsolvable"
            replay = Game(level)
            for move in path:
                replay.step(move)
            assert replay.won, f"{family} seed {seed}: the solution does not win"
            lengths.append(len(path))
        all_times += times
        print(
            f"{family:18s} solver mean {1000 * statistics.fmean(times):6.0f} ms, max {1000 * max(times):5.0f} ms; "
            f"optimal length {statistics.fmean(lengths):4.1f} (max {max(lengths)}); "
            f"generation mean {1000 * statistics.fmean(gen_times):4.0f} ms"
        )
    print(
        f"solver over {len(all_times)} levels: mean {1000 * statistics.fmean(all_times):.0f} ms, "
        f"max {1000 * max(all_times):.0f} ms; all solvable within {MAX_STEPS} steps"
    )


if __name__ == "__main__":
    main()
