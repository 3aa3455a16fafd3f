"""Calls, tokens and cost per design of a search over HTTP (the real model path).

By default it starts the scripted OpenAI-compatible stub server of the tests on
loopback (the agent's answers come from the offline policy, the meta agent's from
a fixed analysis and design) so the numbers measure our protocol's call pattern
with litellm over real HTTP, with no key and no network. Point it at a real
provider to measure a real run (this spends money):

    python benchmarks/real_protocol.py                      # stub server, default protocol sizes
    python benchmarks/real_protocol.py --agent-history 20   # the 20-exchange window of earlier releases
    python benchmarks/real_protocol.py --meta-model openai/gpt-5 --agent-model openai/gpt-5-nano \
        --iterations 1 --budget-usd 2
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--meta-model", default=None)
    ap.add_argument("--agent-model", default=None)
    ap.add_argument("--api-base", default=None)
    ap.add_argument("--iterations", type=int, default=1)
    ap.add_argument("--parents", type=int, default=2)
    ap.add_argument("--collection", type=int, default=12)
    ap.add_argument("--deployment", type=int, default=12)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--budget-usd", type=float, default=None)
    ap.add_argument("--agent-history", default=None, help="N | summary | summary:N (default: the run's default)")
    ap.add_argument("--parallel-children", type=int, default=None)
    ap.add_argument("--repo", type=Path, default=None)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    from alma_tui.cli import main as cli
    from alma_tui.llm.accounting import design_totals, role_totals
    from alma_tui.store import Store

    stub = None
    if args.meta_model is None and args.agent_model is None:
        from alma_tui.llm.client import litellm_module
        from tests.openai_stub import StubServer

        os.environ.setdefault("OPENAI_API_KEY", "sk-benchmark-dummy")
        litellm_module().register_model(
            {  # gpt-5 / gpt-5-nano list prices, for scale
                "openai/stub-meta": {
                    "input_cost_per_token": 1.25e-6,
                    "output_cost_per_token": 1e-5,
                    "cache_read_input_token_cost": 1.25e-7,
                    "litellm_provider": "openai",
                    "mode": "chat",
                },
                "openai/stub-agent": {
                    "input_cost_per_token": 5e-8,
                    "output_cost_per_token": 4e-7,
                    "cache_read_input_token_cost": 5e-9,
                    "litellm_provider": "openai",
                    "mode": "chat",
                },
            }
        )
        stub = StubServer(reasoning_tokens=0).__enter__()
        args.meta_model, args.agent_model, args.api_base = "openai/stub-meta", "openai/stub-agent", stub.base_url
    repo = args.repo or Path(tempfile.mkdtemp(prefix="alma-real-")) / "repo"
    argv = [
        "run",
        "--headless",
        "--repo",
        str(repo),
        "--meta-model",
        args.meta_model or "offline/meta",
        "--agent-model",
        args.agent_model or "offline/agent",
        "--iterations",
        str(args.iterations),
        "--parents",
        str(args.parents),
        "--collection",
        str(args.collection),
        "--deployment",
        str(args.deployment),
        "--runs",
        str(args.runs),
    ]
    if args.api_base:
        argv += ["--api-base", args.api_base]
    if args.budget_usd is not None:
        argv += ["--budget-usd", str(args.budget_usd)]
    if args.agent_history is not None:
        argv += ["--agent-history", args.agent_history]
    if args.parallel_children is not None:
        argv += ["--parallel-children", str(args.parallel_children)]
    started = time.perf_counter()
    rc = cli(argv)
    wall = time.perf_counter() - started
    if stub is not None:
        stub.__exit__(None, None, None)
    store = Store(repo, create=False)
    designs = {d.id: d for d in store.designs()}
    per = design_totals(store)
    out = {
        "rc": rc,
        "status": store.get_run().status,
        "wall_s": round(wall, 1),
        "roles": role_totals(store),
        "designs": {
            did: {
                "status": designs[did].status,
                "origin": designs[did].origin,
                "score": designs[did].score,
                **{k: v for k, v in t.items() if k != "by_role"},
                "by_role": t["by_role"],
            }
            for did, t in sorted(per.items())
            if did in designs
        },
    }
    finished = [t for t in out["designs"].values() if t["status"] in ("accepted", "rejected")]
    if finished:
        n = len(finished)
        out["per_design"] = {
            "designs": n,
            "tokens": round(sum(t["tokens"] for t in finished) / n),
            "prompt_tokens": round(sum(t["prompt_tokens"] for t in finished) / n),
            "cached_tokens": round(sum(t["cached_tokens"] for t in finished) / n),
            "cost_usd": sum(t["cost_usd"] for t in finished) / n,
            "calls": round(sum(t["calls"] for t in finished) / n),
        }
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"\nstatus {out['status']} in {out['wall_s']}s; repo {repo}")
    print(
        f"{'design':7} {'origin':8} {'status':9} {'calls':>6} {'tokens':>9} {'cached':>9} {'reason':>7} {'cost $':>8}"
        "  by role"
    )
    for did, t in out["designs"].items():
        roles = ", ".join(f"{r} {v['calls']}c/{v['tokens']}t" for r, v in sorted(t["by_role"].items()))
        print(
            f"{did:7} {t['origin']:8} {t['status']:9} {t['calls']:6d} {t['tokens']:9,d} {t['cached_tokens']:9,d} "
            f"{t['reasoning_tokens']:7d} {t['cost_usd']:8.4f}  {roles}"
        )
    if "per_design" in out:
        p = out["per_design"]
        print(
            f"per finished design ({p['designs']}): {p['calls']} calls, {p['tokens']:,} tokens "
            f"({p['cached_tokens']:,} of {p['prompt_tokens']:,} prompt tokens cached), ${p['cost_usd']:.4f}"
        )
    for role, t in sorted(out["roles"].items()):
        print(
            f"role {role:7} {t['calls']:6d} calls {t['tokens']:10,d} tokens ${t['cost_usd']:.4f} "
            f"cache hit {t['cache_hit_rate']:.0%} retries {t['retries']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
