"""Success of the offline acting agent under each chat-history policy (``--agent-history``).

The history policy changes what the agent sees, so before a policy becomes the default its
success must stay within noise of the old 20-exchange window. This evaluates built-in designs
on the held-out test split with the offline models, for several seeds (each seed draws other
tasks), through `alma-tui eval`, and prints the mean score per policy and design:

    python benchmarks/agent_history.py                       # 20 / summary:1 / summary / summary:4
    python benchmarks/agent_history.py --policies 20 summary --seeds 0 1 2 3 4 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--policies", nargs="+", default=["20", "summary:1", "summary", "summary:4"])
    ap.add_argument("--designs", nargs="+", default=["no_memory", "trajectory_retrieval"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3])
    args = ap.parse_args()
    rows = {}
    for policy in args.policies:
        for design in args.designs:
            scores = []
            for seed in args.seeds:
                out = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "alma_tui",
                        "eval",
                        design,
                        "--json",
                        "--seed",
                        str(seed),
                        "--agent-history",
                        policy,
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
                scores.append(json.loads(out)["score"])
            rows[(policy, design)] = scores
            se = statistics.stdev(scores) / len(scores) ** 0.5 if len(scores) > 1 else 0.0
            mean = statistics.fmean(scores)
            print(f"{policy:10} {design:22} mean {mean:.3f} ± {se:.3f}  {[round(s, 3) for s in scores]}")
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
