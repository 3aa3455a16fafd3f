"""MiniHack: a random admissible-action policy vs the offline policy (no memory), per split.

The same deployment tasks `alma-tui eval` uses (split_tasks: seed 0, 12 collection + 12
deployment), 3 runs with different agent seeds; prints mean +/- s.e. over runs, per-family
successes, and environment steps/s (env + rendering + policy, no litellm).

    python benchmarks/minihack_random.py [--split test] [--runs 3]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from alma_tui.agent.loop import run_episode
from alma_tui.domains.minihack import MiniHackDomain
from alma_tui.engine.evaluator import EvalSettings, split_tasks
from alma_tui.offline.provider import offline_answer


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", default="test", choices=["train", "test"])
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    domain = MiniHackDomain()
    _, deployment = split_tasks(domain, EvalSettings(split=args.split, seed=0))
    for name in ("random", "offline policy"):
        means, steps, t0 = [], 0, time.perf_counter()
        for run in range(args.runs):
            wins = 0
            for task in deployment:
                rng = random.Random(f"{run}:{task.task_id}")

                def act(messages: list[dict], rng: random.Random = rng, run: int = run, name: str = name) -> str:
                    if name != "random":
                        # through the provider, as the evaluator reaches it (it unfolds the summary history)
                        return offline_answer("offline/agent", messages, run, MiniHackDomain.offline_policy)
                    last = messages[-1]["content"]
                    return rng.choice([ln[2:] for ln in last.splitlines() if ln.startswith("- ")])

                _, info = run_episode(domain.make_env(task), task, domain, "", act)
                wins += info["success"]
                steps += info["steps"]
            means.append(wins / len(deployment))
        se = statistics.stdev(means) / len(means) ** 0.5 if len(means) > 1 else 0.0
        rate = steps / (time.perf_counter() - t0)
        print(
            f"{name:15} {args.split}: {statistics.mean(means):.3f} +/- {se:.3f} "
            f"({len(deployment)} tasks x {args.runs} runs; {rate:.0f} steps/s)"
        )


if __name__ == "__main__":
    main()
