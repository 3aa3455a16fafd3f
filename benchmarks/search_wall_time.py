"""Wall time and quality of the default offline search (the README's first command).

Runs `alma-tui run --headless` for N iterations in a fresh temp repo (a subprocess,
as a user would) and prints: wall time, no-memory vs trajectory-retrieval vs best
found, and model calls. Target (issue 2): 5 iterations on `household` < 3 min on 2 cores.

    python benchmarks/search_wall_time.py [--iterations 5] [--seed 0] [--keep]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iterations", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="alma-bench-"))
    repo = tmp / "designs_repo"
    t0 = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "alma_tui",
            "run",
            "--headless",
            "--repo",
            str(repo),
            "--iterations",
            str(args.iterations),
            "--seed",
            str(args.seed),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - t0
    rows = json.loads(
        subprocess.run(
            [sys.executable, "-m", "alma_tui", "designs", "--repo", str(repo), "--json"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    by_id = {r["id"]: r for r in rows}
    accepted = [r for r in rows if r["status"] == "accepted"]
    best = max(accepted, key=lambda r: r["score"])
    print(f"iterations        {args.iterations} (seed {args.seed})")
    print(f"wall time         {wall:.1f} s")
    print(f"no_memory         {by_id['d001']['score']:.3f} ± {by_id['d001']['score_se']:.3f}")
    print(f"trajectory_retr.  {by_id['d002']['score']:.3f} ± {by_id['d002']['score_se']:.3f}")
    print(f"best found        {best['score']:.3f} ± {best['score_se']:.3f}  {best['id']}: {best['title']}")
    print(
        f"designs           {len(accepted)} accepted, {len(rows) - len(accepted)} rejected, "
        f"{sum(r['repairs'] for r in rows)} repairs"
    )
    if args.keep:
        print(f"repo kept at      {repo}")
    else:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
