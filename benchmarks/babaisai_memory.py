"""Baba Is AI with the offline acting agent: random vs no memory vs trajectory retrieval (vs a design file).

Each design is evaluated with the engine's Evaluator (batched protocol, the design in its
sandbox child) on the held-out ``test`` split by default, on several task pools (one per
seed), with the domain's offline policy called directly (no litellm) and the local hashing
embedding. ``random`` is the no-memory design with an agent that picks a uniformly random
admissible action. Scores are the benchmark's reward (1 - 0.9 * steps / 20 on success);
success rates are printed too.

    PYTHONPATH=. python benchmarks/babaisai_memory.py \
        [--collect 21] [--deploy 21] [--runs 3] [--seeds 0 1 2] [--split test] \
        [--designs random no_memory trajectory_retrieval] [--design-file path/to/design.py ...]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from pathlib import Path

from alma_tui.designs import builtin_source
from alma_tui.domains import get_domain
from alma_tui.engine.evaluator import EvalSettings, Evaluator, Hooks
from alma_tui.llm.local_embed import hash_embed
from alma_tui.offline.babaisai_policy import choose_action
from alma_tui.offline.provider import extractive_note


def random_agent(messages: list[dict], seed: int) -> str:
    """A uniformly random admissible action (the floor any acting agent must beat)."""
    last = next(m["content"] for m in reversed(messages) if m.get("role") == "user")
    acts = [ln[2:] for ln in last.splitlines() if ln.startswith("- ")]
    return random.Random(f"{seed}|{len(messages)}").choice(acts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--collect", type=int, default=21)
    ap.add_argument("--deploy", type=int, default=21)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--split", default="test")
    ap.add_argument("--designs", nargs="+", default=["random", "no_memory", "trajectory_retrieval"])
    ap.add_argument("--design-file", nargs="*", default=[], help="extra designs (.py files) to evaluate")
    args = ap.parse_args()
    domain = get_domain("babaisai")
    print(
        f"babaisai, split={args.split}, collect={args.collect}, deploy={args.deploy} x {args.runs} runs, "
        f"seeds={args.seeds}, offline policy + hash_embed"
    )
    entries = [(n, builtin_source("no_memory" if n == "random" else n)) for n in args.designs]
    entries += [(Path(p).stem, Path(p).read_text()) for p in args.design_file]
    for name, code in entries:
        agent = random_agent if name == "random" else choose_action
        evaluator = Evaluator(domain, agent)
        run_scores: list[float] = []
        successes: list[float] = []
        t0 = time.perf_counter()
        for seed in args.seeds:
            settings = EvalSettings(
                n_collection=args.collect, n_deployment=args.deploy, runs=args.runs, split=args.split, seed=seed
            )
            hooks = Hooks(
                design_llm=lambda p, s=None: extractive_note([{"role": "user", "content": p}]),
                design_embed=hash_embed,
            )
            result = evaluator.evaluate(code, settings, hooks)
            run_scores += result.run_scores
            dep = [r for r in result.episodes if r.phase == "deployment"]
            for run in range(args.runs):
                successes.append(statistics.fmean(r.success for r in dep if r.run == run))
        n = len(run_scores)
        se = statistics.stdev(run_scores) / n**0.5 if n > 1 else 0.0
        sse = statistics.stdev(successes) / n**0.5 if n > 1 else 0.0
        print(
            f"{name:22s} score {statistics.fmean(run_scores):.3f} +/- {se:.3f}  "
            f"success {statistics.fmean(successes):.3f} +/- {sse:.3f}  "
            f"({len(args.seeds)} pools x {args.deploy} tasks x {args.runs} runs; s.e. over the {n} runs; "
            f"{time.perf_counter() - t0:.0f} s)",
            flush=True,
        )


if __name__ == "__main__":
    main()
