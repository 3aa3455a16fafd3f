"""Can the offline meta agent improve on trajectory retrieval? (in-process benchmark)

Starting from the built-in ``trajectory_retrieval`` design, runs a small ALMA
search in-process with the real meta agent (:class:`MetaAgent`) over the
offline meta LLM (:func:`alma_tui.offline.meta.respond`): select a parent (greedy on
score with a visit penalty, so the archive becomes a tree, not only a chain),
analyze its evaluation log, write a child, validate it (repair on error, up
to 3 times), evaluate it with the batched protocol on ``household`` with the
offline acting agent, add it to the archive. Prints every child with its score
against trajectory retrieval and no memory.

    PYTHONPATH=. python benchmarks/offline_meta_quality.py [--iterations 10] [--seeds 0 1 2]
    PYTHONPATH=. python benchmarks/offline_meta_quality.py --sweep   # hand-picked genomes
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from alma_tui.agent.loop import run_episode
from alma_tui.design_api import Episode, MemoryDesign, Query, Services, Step
from alma_tui.domains.household import HouseholdDomain
from alma_tui.engine.meta_agent import MetaAgent, MetaAgentError, ParentInfo
from alma_tui.llm.local_embed import hash_embed
from alma_tui.offline import mechanisms as dm
from alma_tui.offline.meta import respond
from alma_tui.offline.policy import choose_action

ROOT = Path(__file__).resolve().parents[1]
DOMAIN = HouseholdDomain()


def load_design(code: str) -> type[MemoryDesign]:
    """The MemoryDesign subclass defined by ``code`` (exec'd in a fresh namespace)."""
    ns: dict = {"__name__": "design_under_test"}
    exec(compile(code, "<design>", "exec"), ns)
    classes = [v for v in ns.values() if isinstance(v, type) and issubclass(v, MemoryDesign) and v is not MemoryDesign]
    if len(classes) != 1:
        raise ValueError(f"expected one MemoryDesign subclass, found {len(classes)}")
    return classes[0]


@dataclass
class Result:
    score: float
    run_scores: list[float]
    episodes: list[dict] = field(default_factory=list)


def evaluate(code: str, seeds: list[int], n_collect: int = 12, n_deploy: int = 12, runs: int = 3) -> Result:
    """Batched protocol (collection with empty memory, update, deployment x runs),
    averaged over task shuffles ``seeds``; deployment episodes keep their memory."""
    cls = load_design(code)
    run_scores: list[float] = []
    logs: list[dict] = []
    for seed in seeds:
        tasks = DOMAIN.tasks("train", 0, n_collect + n_deploy)
        random.Random(seed).shuffle(tasks)
        collect, deploy = tasks[:n_collect], tasks[n_collect:]
        design = cls(Services(embed=hash_embed))
        eps = []
        for i, t in enumerate(collect):
            ep, _ = run_episode(DOMAIN.make_env(t), t, DOMAIN, "", lambda m, s=seed * 1000 + i: choose_action(m, s))
            eps.append(ep)
        for ep in eps:
            design.update(ep)
        for r in range(runs):
            wins = 0
            for i, t in enumerate(deploy):
                env = DOMAIN.make_env(t)
                obs0 = env.reset()
                mem = design.retrieve(Query(t.goal, obs0, [], 0, DOMAIN.name, t.task_id))
                ps = seed * 1000 + 500 + r * 100 + i
                ep, info = run_episode(env, t, DOMAIN, mem, lambda m, s=ps: choose_action(m, s))
                wins += info["success"]
                logs.append(
                    {
                        "task_id": t.task_id,
                        "goal": t.goal,
                        "success": info["success"],
                        "step_count": info["steps"],
                        "memory": mem,
                        "actions": [s.action for s in ep.steps],
                        "run": r,
                    }
                )
            run_scores.append(wins / max(1, len(deploy)))
    return Result(statistics.mean(run_scores), run_scores, logs)


def validate(code: str) -> None:
    """A short smoke run like the engine's validator: update twice, retrieve thrice."""
    import json

    cls = load_design(code)
    design = cls(Services(embed=hash_embed))
    tasks = DOMAIN.tasks("train", 99, 5)
    for t in tasks[:2]:
        env = DOMAIN.make_env(t)
        obs0 = env.reset()
        ep, _ = run_episode(env, t, DOMAIN, "", lambda m: choose_action(m, 0))
        design.update(Episode.from_dict(ep.to_dict()))
        del obs0
    for t in tasks[2:]:
        design.retrieve(Query(t.goal, DOMAIN.make_env(t).reset(), [Step("", "look")], 0, DOMAIN.name, t.task_id))
    json.dumps(design.snapshot())


@dataclass
class Node:
    design_id: str
    parent: str | None
    title: str
    code: str
    result: Result
    suggestion: str | None = None
    improved: bool | None = None
    visits: int = 0
    repairs: int = 0


def search(iterations: int, seeds: list[int], meta_seed: int = 0, verbose: bool = True) -> list[Node]:
    """A small in-process ALMA search from trajectory retrieval with the offline meta agent."""
    base_code = (ROOT / "alma_tui/designs/trajectory_retrieval.py").read_text()
    nomem_code = (ROOT / "alma_tui/designs/no_memory.py").read_text()
    nomem = evaluate(nomem_code, seeds)
    root = Node("trajectory_retrieval", None, "Trajectory retrieval", base_code, evaluate(base_code, seeds))
    archive = [root]
    if verbose:
        print(f"no_memory {nomem.score:.3f}   trajectory_retrieval {root.result.score:.3f}")
    rng = random.Random(meta_seed)
    for it in range(iterations):
        # Open-ended-ish selection: score minus a visit penalty, softmax sampling.
        prios = [n.result.score - 0.05 * math.log(1 + n.visits) for n in archive]
        weights = [math.exp(p / 0.05) for p in prios]
        parent = rng.choices(archive, weights=weights, k=1)[0]
        parent.visits += 1
        info = ParentInfo(
            design_id=parent.design_id,
            title=parent.title,
            code=parent.code,
            score=parent.result.score,
            run_scores=parent.result.run_scores,
            no_memory_score=nomem.score,
            episodes=parent.result.episodes,
            previous_suggestion=parent.suggestion,
            previous_improved=parent.improved,
            domain_name="household",
            domain_description=DOMAIN.description,
        )
        agent = MetaAgent(lambda msgs, s=meta_seed * 1000 + it: respond(msgs, s), seed=it)
        t0 = time.perf_counter()
        analysis, _ = agent.analyze(info)
        title, code, _ = agent.write(info, analysis)
        repairs = 0
        while True:
            try:
                validate(code)
                break
            except Exception as exc:
                repairs += 1
                if repairs > 3:
                    raise MetaAgentError(f"child of {parent.design_id} never validated: {exc!r}") from exc
                title, code, _ = agent.repair(info, code, f"{type(exc).__name__}: {exc}")
        result = evaluate(code, seeds)
        node = Node(
            f"d{it + 1}",
            parent.design_id,
            title,
            code,
            result,
            suggestion=analysis.top_suggestion(),
            improved=result.score > parent.result.score,
            repairs=repairs,
        )
        archive.append(node)
        if verbose:
            delta = result.score - root.result.score
            print(
                f"{node.design_id:>4} <- {parent.design_id:<20} {result.score:.3f} "
                f"({delta:+.3f} vs traj)  repairs={repairs}  "
                f"{time.perf_counter() - t0:4.1f}s  {title}"
            )
    return archive


def sweep(seeds: list[int]) -> None:
    """Score a few hand-picked genomes: shows the shape of the mechanism space."""
    genomes = {
        "trajectory top1 embed": {},
        "actions success top2": {"store": "actions", "source": "success", "top_k": 2},
        "facts take": {"store": "facts", "format": "counts", "top_k": 3},
        "facts seen": {"store": "facts", "format": "counts", "evidence": "seen", "top_k": 3},
        "facts seen house": {
            "store": "facts",
            "format": "counts",
            "evidence": "seen",
            "context": "house",
            "top_k": 3,
        },
        "facts seen house tools neg": {
            "store": "facts",
            "format": "counts",
            "evidence": "seen",
            "context": "house",
            "tools": True,
            "negatives": True,
            "top_k": 4,
        },
    }
    for name, g in genomes.items():
        code = dm.render({**dm.DEFAULT_GENOME, **g})
        t0 = time.perf_counter()
        r = evaluate(code, seeds)
        print(f"{name:32s} {r.score:.3f}   {time.perf_counter() - t0:.1f}s")


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--meta-seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--sweep", action="store_true")
    args = ap.parse_args()
    if args.sweep:
        sweep(args.seeds)
        return
    for ms in args.meta_seeds:
        print(f"=== meta seed {ms} ===")
        archive = search(args.iterations, args.seeds, ms)
        base = archive[0].result.score
        children = archive[1:]
        better = [n for n in children if n.result.score > base + 0.05]
        best = max(children, key=lambda n: n.result.score)
        print(
            f"children beating trajectory retrieval by > 0.05: {len(better)}/{len(children)}; "
            f"best {best.design_id} {best.result.score:.3f} vs {base:.3f}: {best.title}; "
            f"repairs: {sum(n.repairs for n in children)}"
        )


if __name__ == "__main__":
    main()
