"""The Ray executor's cost on this machine, and a projection to a cluster (issue 15).

Measures, in order:

1. the same short offline search (same seed) with ``--executor local`` and ``--executor ray``
   (a local Ray), each a fresh ``alma-tui run --headless`` subprocess: wall time of the
   command, time to open the executor (Ray start + node probe), and that both archives agree;
2. per-task overhead: N no-op Ray tasks (after warm-up), M model calls relayed through the
   gateway from one task to the engine side and answered, and N tiny evaluations (1 + 1
   episode) through the local evaluator vs the Ray executor;
3. from the local search's store: episodes, agent calls and tokens per episode, and the
   per-episode wall time, which feed a projection of a 20-iteration real-model search on a
   10-node cluster (its assumptions are flags and are printed).

    PYTHONPATH=. python benchmarks/ray_executor.py --iterations 2 --json out.json
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

SIZES = ["--collection", "4", "--deployment", "4", "--runs", "2", "--concurrency", "4"]


def run_search(repo: Path, executor: str, iterations: int) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "alma_tui", "run", "--headless", "--repo", str(repo)]
    cmd += ["--iterations", str(iterations), "--executor", executor, *SIZES]
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    t0 = time.perf_counter()
    cp = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
    wall = time.perf_counter() - t0
    if cp.returncode != 0:
        raise SystemExit(f"{executor} search failed: {cp.stdout[-2000:]}{cp.stderr[-2000:]}")
    con = sqlite3.connect(repo / ".alma" / "alma.db")
    ts = {k: v for k, v in con.execute("SELECT kind, min(ts) FROM event GROUP BY kind")}
    _first, last = con.execute("SELECT min(ts), max(ts) FROM event").fetchone()
    archive = [list(r) for r in con.execute("SELECT id, parent_id, score, status FROM design ORDER BY seq")]
    episodes = con.execute("SELECT count(*), avg(wall_s), avg(steps) FROM episode").fetchone()
    calls = con.execute(
        "SELECT count(*), sum(prompt_tokens + completion_tokens) FROM llmcall WHERE role = 'agent'"
    ).fetchone()
    all_calls = con.execute("SELECT count(*), sum(prompt_tokens + completion_tokens) FROM llmcall").fetchone()
    con.close()

    def at(s: str) -> float:
        return time.mktime(time.strptime(s.split(".")[0], "%Y-%m-%d %H:%M:%S")) + float("0." + s.split(".")[1])

    opened = at(ts["run.status"]) - at(ts["run.sandbox"]) if "run.sandbox" in ts else math.nan
    return {
        "executor": executor,
        "wall_s": round(wall, 2),
        "executor_open_s": round(opened, 2),
        "search_s": round(at(last) - at(ts["run.status"]), 2),
        "archive": archive,
        "episodes": episodes[0],
        "episode_wall_s": round(episodes[1] or 0.0, 3),
        "steps_per_episode": round(episodes[2] or 0.0, 2),
        "agent_calls": calls[0],
        "agent_tokens": calls[1],
        "calls": all_calls[0],
        "tokens": all_calls[1],
    }


def overhead(n_tasks: int, n_calls: int, n_evals: int) -> dict[str, Any]:
    import ray

    from alma_tui import offline
    from alma_tui.designs import builtin_source
    from alma_tui.domains import get_domain
    from alma_tui.engine.config import SearchConfig
    from alma_tui.engine.evaluator import EvalSettings, Evaluator, Hooks
    from alma_tui.engine.ray_executor import RayExecutor, start_ray
    from alma_tui.llm.client import LLMClient
    from alma_tui.sandbox import SandboxLimits, require

    offline.install()
    start_ray(None, num_cpus=2)

    @ray.remote
    def noop() -> int:
        return 1

    ray.get([noop.remote() for _ in range(20)])  # warm workers
    t0 = time.perf_counter()
    ray.get([noop.remote() for _ in range(n_tasks)])
    per_task = (time.perf_counter() - t0) / n_tasks

    cfg = SearchConfig(executor="ray")
    ctx = SimpleNamespace(config=cfg, emit=lambda *a, **k: None, log_error=lambda text: None)
    limits = SandboxLimits(isolate=require(True).strong)
    ex = RayExecutor(ctx, limits, owns_ray=False)  # type: ignore[arg-type]

    @ray.remote
    def relay_calls(gateway: Any, key: str, m: int) -> float:
        from alma_tui.engine.ray_tasks import Relay

        relay = Relay(gateway, key, "bench")
        t = time.perf_counter()
        for i in range(m):
            relay.call("llm", (f"echo {i}", None))
        return (time.perf_counter() - t) / m

    key = "bench"
    ex._live[key] = Hooks(design_llm=lambda p, s: p)  # answered on the engine side, no model
    per_call = ray.get(relay_calls.remote(ex.gateway, key, n_calls))
    ex._live.pop(key)

    llm = LLMClient()
    hooks = Hooks(agent=lambda m, s: llm.complete(m, model="offline/agent", role="agent", seed=s))
    domain = get_domain("household")
    tiny = EvalSettings(n_collection=1, n_deployment=1, runs=1)
    code = builtin_source("no_memory")
    local = Evaluator(domain, hooks.agent, limits=limits)
    remote = ex.bind(local)
    remote.evaluate(code, tiny, hooks)  # warm
    t0 = time.perf_counter()
    for _ in range(n_evals):
        local.evaluate(code, tiny, hooks)
    local_eval = (time.perf_counter() - t0) / n_evals
    t0 = time.perf_counter()
    for _ in range(n_evals):
        remote.evaluate(code, tiny, hooks)
    ray_eval = (time.perf_counter() - t0) / n_evals
    ex.close()
    ray.shutdown()
    return {
        "noop_task_ms": round(per_task * 1000, 2),
        "relayed_call_ms": round(per_call * 1000, 2),
        "tiny_eval_local_s": round(local_eval, 3),
        "tiny_eval_ray_s": round(ray_eval, 3),
        "ray_overhead_per_eval_s": round(ray_eval - local_eval, 3),
        "n_tasks": n_tasks,
        "n_calls": n_calls,
        "n_evals": n_evals,
    }


def project(m: dict[str, Any], a: argparse.Namespace) -> dict[str, Any]:
    """A real-model search, as three bounds on its wall time (the largest wins):

    - latency: the critical path. An iteration is the meta agent (``--meta-s``) then its
      children's evaluations at once; an evaluation is a collection phase then ``runs``
      deployment phases, one after another; a phase is ``ceil(tasks / at_once)`` rounds of
      an episode (``steps x call latency``). Locally ``at_once`` is ``--concurrency``; on
      Ray every batch of a phase runs at once (as many episodes as the cluster has cores
      for), plus the measured Ray cost per evaluation and per relayed call. A new best adds a
      held-out evaluation.
    - model calls: every agent call goes through the driver's per-model limit
      (``--max-concurrent-llm``), on both executors.
    - CPU: the environments' steps over the cores (the driver's, or the cluster's)."""
    steps = m["steps_per_episode"]
    episodes_per_eval = a.collection + a.deployment * a.runs
    evals = a.proj_iterations * a.parents * (1 + a.heldout_share)
    episodes = evals * episodes_per_eval
    agent_calls = episodes * steps
    cpu_s = agent_calls * a.env_step_cpu_s

    def latency(at_once: int, overhead_s: float, per_call_s: float = 0.0) -> float:
        episode_s = steps * (a.call_latency_s + per_call_s)
        phase = lambda n: math.ceil(n / max(1, min(at_once, n))) * episode_s  # noqa: E731
        evaluation = phase(a.collection) + a.runs * phase(a.deployment) + overhead_s
        return a.proj_iterations * (a.meta_s + evaluation * (1 + a.heldout_share))

    cluster_cores = a.nodes * a.cpus_per_node
    ray_at_once = max(1, cluster_cores // a.parents)

    def scenario(lat_s: float, limit: int, cores: int) -> dict[str, float]:
        calls_s = agent_calls * a.call_latency_s / limit
        bounds = {"latency_h": lat_s / 3600, "model_calls_h": calls_s / 3600, "cpu_h": cpu_s / cores / 3600}
        return {k: round(v, 2) for k, v in bounds.items()} | {"wall_h": round(max(bounds.values()), 2)}

    return {
        "episodes": round(episodes),
        "agent_calls": round(agent_calls),
        "agent_tokens": round(episodes * m["agent_tokens"] / max(1, m["episodes"])),
        "local": scenario(latency(a.concurrency, 0.0), a.max_concurrent_llm, a.local_cores),
        "ray": scenario(latency(ray_at_once, a.ray_overhead_s, a.relay_s), a.max_concurrent_llm, cluster_cores),
        f"ray_max_concurrent_llm_{a.raised_limit}": scenario(
            latency(ray_at_once, a.ray_overhead_s, a.relay_s), a.raised_limit, cluster_cores
        ),
        f"local_max_concurrent_llm_{a.raised_limit}_concurrency_{a.deployment}": scenario(
            latency(a.deployment, 0.0), a.raised_limit, a.local_cores
        ),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--iterations", type=int, default=2)
    p.add_argument("--tasks", type=int, default=200, help="no-op tasks timed")
    p.add_argument("--calls", type=int, default=200, help="gateway round trips timed")
    p.add_argument("--evals", type=int, default=5, help="tiny evaluations timed per executor")
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--from-json", type=Path, help="measurements of an earlier run: only recompute the projection")
    g = p.add_argument_group("projection (assumptions)")
    g.add_argument("--proj-iterations", type=int, default=20)
    g.add_argument("--parents", type=int, default=2)
    g.add_argument("--collection", type=int, default=12)
    g.add_argument("--deployment", type=int, default=12)
    g.add_argument("--runs", type=int, default=3)
    g.add_argument("--heldout-share", type=float, default=0.25, help="extra held-out evaluations per child")
    g.add_argument("--call-latency-s", type=float, default=2.0, help="one agent call to a hosted model")
    g.add_argument("--max-concurrent-llm", type=int, default=8)
    g.add_argument("--raised-limit", type=int, default=64, help="a provider limit that allows more calls at once")
    g.add_argument("--concurrency", type=int, default=4, help="episodes at once per phase, locally")
    g.add_argument("--env-step-cpu-s", type=float, default=0.05, help="CPU per step (TextWorld-like)")
    g.add_argument("--meta-s", type=float, default=60.0, help="meta agent per iteration (analysis + code)")
    g.add_argument("--nodes", type=int, default=10)
    g.add_argument("--cpus-per-node", type=int, default=8)
    g.add_argument("--local-cores", type=int, default=2)
    g.add_argument("--ray-overhead-s", type=float, default=None, help="default: the measured per-evaluation cost")
    g.add_argument("--relay-s", type=float, default=None, help="default: the measured gateway round trip per call")
    a = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if a.from_json:  # recompute the projection from earlier measurements
        out = json.loads(a.from_json.read_text())
    else:
        out = {"load_average": os.getloadavg()[0]}
        with tempfile.TemporaryDirectory() as tmp:
            out["local"] = run_search(Path(tmp) / "local", "local", a.iterations)
            out["ray"] = run_search(Path(tmp) / "ray", "ray", a.iterations)
        out["same_archive"] = out["local"].pop("archive") == out["ray"].pop("archive")
        out["same_calls_and_tokens"] = (out["local"]["calls"], out["local"]["tokens"]) == (
            out["ray"]["calls"],
            out["ray"]["tokens"],
        )
        out["overhead"] = overhead(a.tasks, a.calls, a.evals)
        out["load_average_end"] = os.getloadavg()[0]
    if a.ray_overhead_s is None:
        a.ray_overhead_s = max(0.0, out["overhead"]["ray_overhead_per_eval_s"])
    if a.relay_s is None:
        a.relay_s = out["overhead"]["relayed_call_ms"] / 1000
    assumed = {k: v for k, v in vars(a).items() if k not in ("json", "from_json")}
    out["projection"] = {"assumptions": assumed} | project(out["local"], a)
    print(json.dumps(out, indent=2, default=str))
    if a.json:
        a.json.write_text(json.dumps(out, indent=2, default=str))


if __name__ == "__main__":
    main()
