"""Does memory matter on `household` for the offline agent? (in-process benchmark)

Runs the ALMA batched protocol in-process for no_memory, trajectory_retrieval
and an "oracle-ish" aggregated-facts design written here (counts of object kind
-> receptacle per house kind over everything ever observed), to show that
memory helps and that a search has headroom above trajectory retrieval.

    PYTHONPATH=. python benchmarks/memory_matters.py \
        [--collect 12] [--deploy 12] [--runs 3] [--split train|test] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import time
from collections import defaultdict

from alma_tui.agent.loop import run_episode
from alma_tui.design_api import Episode, MemoryDesign, Query, Services
from alma_tui.designs import load_builtin_class
from alma_tui.domains import get_domain
from alma_tui.llm.local_embed import hash_embed
from alma_tui.offline.policy import choose_action

_HOUSE = re.compile(r"in an? ([a-z]+)\.")
_REC = re.compile(r"(?:arrive at|open the|on the) ([a-z]+ \d+)")
_SEE = re.compile(r"you see (.*?)\.(?:\s|$)")
_OBJ = re.compile(r"\b([a-z]+) \d+\b")
_TOOL = re.compile(r"^(clean|heat|cool) \S+ \d+ with ([a-z]+ \d+)$")


class AggregatedFacts(MemoryDesign):
    """Aggregated facts: where each object kind was seen, per house kind, best first."""

    def __init__(self, services):
        super().__init__(services)
        self.where = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
        self.tools = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))

    def update(self, episode: Episode) -> None:
        m = _HOUSE.search(episode.initial_observation)
        house = m.group(1) if m else "?"
        for step in episode.steps:
            obs = step.observation.lower()
            rec, see = _REC.search(obs), _SEE.search(obs)
            if rec and see:
                for kind in set(_OBJ.findall(see.group(1))):
                    self.where[house][kind][rec.group(1)] += 1
            t = _TOOL.match(step.action)
            if t and obs.startswith("you "):
                self.tools[house][t.group(1)][t.group(2)] += 1

    def retrieve(self, query: Query) -> str:
        m = _HOUSE.search(query.observation)
        house = m.group(1) if m else "?"
        words = set(re.findall(r"[a-z]+", query.goal.lower()))
        lines = []
        for kind, recs in self.where[house].items():
            if kind in words:
                ranked = sorted(recs.items(), key=lambda kv: -kv[1])
                lines.append(f"{kind}: " + ", ".join(f"{r} (x{n})" for r, n in ranked))
        for verb, recs in self.tools[house].items():
            ranked = sorted(recs.items(), key=lambda kv: -kv[1])
            lines.append(f"{verb} with: " + ", ".join(f"{r} (x{n})" for r, n in ranked))
        return "\n".join(lines)


def evaluate(design_cls, domain, tasks, n_collect: int, runs: int, seed: int) -> tuple[float, list[float], float]:
    """Batched protocol; returns (mean success, per-run means, wall seconds)."""
    t0 = time.perf_counter()
    collect, deploy = tasks[:n_collect], tasks[n_collect:]
    design = design_cls(Services(embed=hash_embed))
    episodes = []
    for i, task in enumerate(collect):  # empty memory, policy seed per task
        ep, _ = run_episode(
            domain.make_env(task),
            task,
            domain,
            "",
            lambda m, s=seed * 1000 + i: choose_action(m, s),
        )
        episodes.append(ep)
    for ep in episodes:
        design.update(ep)
    run_means = []
    for r in range(runs):
        wins = 0
        for i, task in enumerate(deploy):
            env = domain.make_env(task)
            obs0 = env.reset()
            mem = design.retrieve(Query(task.goal, obs0, [], 0, domain.name, task.task_id))
            ps = seed * 1000 + 500 + r * 100 + i
            _, info = run_episode(env, task, domain, mem, lambda m, s=ps: choose_action(m, s))
            wins += info["success"]
        run_means.append(wins / max(1, len(deploy)))
    return statistics.mean(run_means), run_means, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--collect", type=int, default=12)
    ap.add_argument("--deploy", type=int, default=12)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seeds", type=int, nargs="+", default=list(range(20)))
    ap.add_argument("--split", default="train")
    args = ap.parse_args()
    domain = get_domain("household")
    designs = {
        "no_memory": load_builtin_class("no_memory"),
        "trajectory_retrieval": load_builtin_class("trajectory_retrieval"),
        "aggregated_facts": AggregatedFacts,
    }
    print(
        f"household, split={args.split}, collect={args.collect}, "
        f"deploy={args.deploy} x {args.runs} runs, "
        f"max_steps={domain.max_steps}, seeds={args.seeds}"
    )
    means: dict[str, float] = {}
    for name, cls in designs.items():
        scores, walls = [], []
        for seed in args.seeds:
            tasks = domain.tasks(args.split, seed, args.collect + args.deploy)
            random.Random(seed).shuffle(tasks)
            mean, _, wall = evaluate(cls, domain, tasks, args.collect, args.runs, seed)
            scores.append(mean)
            walls.append(wall)
        per = " ".join(f"{s:.2f}" for s in scores)
        print(
            f"{name:22s} success {statistics.mean(scores):.3f}  (per seed: {per})  "
            f"{statistics.mean(walls) * 1000:.0f} ms/evaluation"
        )
        means[name] = statistics.mean(scores)
    base, traj = means["no_memory"], means["trajectory_retrieval"]
    print(
        f"trajectory_retrieval - no_memory = {100 * (traj - base):+.1f} points; "
        f"aggregated_facts - trajectory_retrieval = {100 * (means['aggregated_facts'] - traj):+.1f}"
    )


if __name__ == "__main__":
    main()
