"""All built-in baselines on `household` with the offline models (real Evaluator, sandboxed).

Evaluates every built-in design (no memory, trajectory retrieval, ReasoningBank,
Dynamic Cheatsheet, G-Memory) with the engine's Evaluator (batched protocol, the
design running in its sandbox child) on several task pools, with the offline
acting agent called directly (no litellm) and the offline model as the designs'
own llm (its extractive answers) plus the local hashing embedding.

    PYTHONPATH=. python benchmarks/baselines.py \
        [--collect 12] [--deploy 12] [--runs 3] [--seeds 0 1 2 3 4] [--split train]
"""

from __future__ import annotations

import argparse
import statistics
import time

from alma_tui.designs import BUILTIN, builtin_source
from alma_tui.domains import get_domain
from alma_tui.engine.evaluator import EvalSettings, Evaluator, Hooks
from alma_tui.llm.local_embed import hash_embed
from alma_tui.offline.policy import choose_action
from alma_tui.offline.provider import offline_answer

ORDER = ["no_memory", "trajectory_retrieval", "reasoning_bank", "dynamic_cheatsheet", "g_memory"]


def design_llm(prompt: str, system: str | None = None) -> str:
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    return offline_answer("offline/agent", messages, 0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--collect", type=int, default=12)
    ap.add_argument("--deploy", type=int, default=12)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seeds", type=int, nargs="+", default=list(range(5)))
    ap.add_argument("--split", default="train")
    ap.add_argument("--designs", nargs="+", default=[n for n in ORDER if n in BUILTIN])
    args = ap.parse_args()
    domain = get_domain("household")
    evaluator = Evaluator(domain, lambda m, s: choose_action(m, s))
    print(
        f"household, split={args.split}, collect={args.collect}, deploy={args.deploy} x {args.runs} runs, "
        f"seeds={args.seeds}, offline agent + offline design llm + hash_embed"
    )
    means: dict[str, float] = {}
    for name in args.designs:
        code = builtin_source(name)
        scores, walls, llm_calls = [], [], []
        for seed in args.seeds:
            calls = [0]

            def counted(p: str, s: str | None = None, calls: list[int] = calls) -> str:
                calls[0] += 1
                return design_llm(p, s)

            settings = EvalSettings(
                n_collection=args.collect, n_deployment=args.deploy, runs=args.runs, split=args.split, seed=seed
            )
            t0 = time.perf_counter()
            result = evaluator.evaluate(code, settings, Hooks(design_llm=counted, design_embed=hash_embed))
            walls.append(time.perf_counter() - t0)
            scores.append(result.score)
            llm_calls.append(calls[0])
        means[name] = statistics.mean(scores)
        per = " ".join(f"{s:.2f}" for s in scores)
        print(
            f"{name:22s} success {means[name]:.3f}  (per seed: {per})  "
            f"{statistics.mean(walls):.1f} s/evaluation, {statistics.mean(llm_calls):.0f} design llm calls"
        )
    if "no_memory" in means:
        base = means["no_memory"]
        diffs = [f"{n} {100 * (m - base):+.1f}" for n, m in means.items() if n != "no_memory"]
        print("vs no_memory: " + ", ".join(diffs))


if __name__ == "__main__":
    main()
