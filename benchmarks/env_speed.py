"""Raw speed of the `household` environment (env steps per second).

Why: the offline search evaluates hundreds of episodes per minute, so the
domain must stay far above 1,000 steps/s. Drives the env with a seeded random
admissible action each step (no agent), resetting when an episode ends.

    PYTHONPATH=. python benchmarks/env_speed.py [--steps 50000]
"""

from __future__ import annotations

import argparse
import random
import time

from alma_tui.domains import get_domain


def measure(n_steps: int, seed: int = 0) -> float:
    domain = get_domain("household")
    tasks = domain.tasks("train", seed, 50)
    rng = random.Random(seed)
    done_steps, t0, i = 0, time.perf_counter(), 0
    while done_steps < n_steps:
        env = domain.make_env(tasks[i % len(tasks)])
        env.reset()
        i += 1
        while done_steps < n_steps:
            res = env.step(rng.choice(env.admissible_actions()))
            done_steps += 1
            if res.done:
                break
    return done_steps / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=50_000)
    args = ap.parse_args()
    print(f"household env: {measure(args.steps):,.0f} steps/s (incl. env construction and admissible_actions)")


if __name__ == "__main__":
    main()
