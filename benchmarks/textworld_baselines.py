"""TextWorld held-out: random admissible actions vs the generic offline agent with no memory and
with trajectory retrieval (real Evaluator, designs sandboxed, the generic policy called directly, with
the default ``--agent-history summary`` unfolded as the offline provider unfolds it: the policy called
on the folded chat would not see its earlier actions, and measured a weaker agent than `eval` runs).

The random policy picks a seeded random admissible action each step; it is the floor the
generic agent must clear. Games come from the user cache (generated on first use, with
progress on stderr).

    PYTHONPATH=. python benchmarks/textworld_baselines.py [--collect 32] [--deploy 32] [--runs 3] [--split test]
"""

from __future__ import annotations

import argparse
import random
import time

from alma_tui.designs import builtin_source
from alma_tui.domains import get_domain
from alma_tui.engine.evaluator import EvalSettings, Evaluator
from alma_tui.offline.generic_policy import _split_user, choose_action
from alma_tui.offline.provider import expand_history


def random_action(messages: list[dict], seed: int) -> str:
    _, actions = _split_user(str(messages[-1]["content"]))
    return random.Random(f"{seed}|{len(messages)}").choice(actions or ("look",))


def generic_agent(messages: list[dict], seed: int) -> str:
    """The generic agent as the offline provider calls it: the folded ``summary`` history unfolded."""
    return choose_action(expand_history(messages), seed)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--collect", type=int, default=32)
    ap.add_argument("--deploy", type=int, default=32)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--split", default="test")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--worlds", type=int, default=None, help="worlds per split (default: the domain's)")
    ap.add_argument("--rooms", type=int, default=None)
    ap.add_argument("--objects", type=int, default=None)
    args = ap.parse_args()
    options = {k: v for k in ("worlds", "rooms", "objects") if (v := getattr(args, k)) is not None}
    domain = get_domain("textworld", **options)
    t0 = time.perf_counter()
    domain.prepare(lambda line: print(line, flush=True))
    print(f"games ready in {time.perf_counter() - t0:.1f}s")
    settings = EvalSettings(args.collect, args.deploy, args.runs, args.split, args.seed)
    for label, policy, design in (
        ("random admissible", random_action, "no_memory"),
        ("no_memory", generic_agent, "no_memory"),
        ("trajectory_retrieval", generic_agent, "trajectory_retrieval"),
    ):
        steps = 0

        def on_step(*_: object) -> None:
            nonlocal steps
            steps += 1

        from alma_tui.engine.evaluator import Hooks

        t0 = time.perf_counter()
        r = Evaluator(domain, policy).evaluate(builtin_source(design), settings, Hooks(on_step=on_step))
        wall = time.perf_counter() - t0
        print(
            f"{label:22} {r.score:.3f} +/- {r.score_se:.3f} (runs {', '.join(f'{x:.3f}' for x in r.run_scores)}; "
            f"{args.split}, {args.collect}+{args.deploy} tasks x {args.runs} runs) "
            f"{steps} steps in {wall:.0f}s ({1000 * wall / max(steps, 1):.1f} ms/step incl. agent)"
        )


if __name__ == "__main__":
    main()
