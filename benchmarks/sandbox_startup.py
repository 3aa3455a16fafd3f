"""Start-up cost of the design sandbox, with and without OS isolation.

Why: every evaluation and validation starts a worker, so the OS isolation
(namespaces, a pivot_root'ed read-only root, uid 65534, a supervisor) must keep
the ~80 ms worker start. Times start() + one retrieve() + close() of a trivial
design, N times each way, and prints median and p90 in ms.

    python benchmarks/sandbox_startup.py [--n 30]
"""

from __future__ import annotations

import argparse
import statistics
import time

from alma_tui.sandbox import SandboxedDesign, SandboxLimits, describe, probe

CODE = (
    "from alma_tui.design_api import MemoryDesign\n"
    "class D(MemoryDesign):\n"
    "    def retrieve(self, query):\n"
    "        return 'ok'\n"
)


def measure(isolate: bool, n: int) -> tuple[list[float], list[float]]:
    starts, rounds = [], []
    for _ in range(n):
        t0 = time.perf_counter()
        with SandboxedDesign(CODE, limits=SandboxLimits(isolate=isolate)) as d:
            t1 = time.perf_counter()
            d.retrieve({"goal": "g", "observation": "o"})
        t2 = time.perf_counter()
        starts.append((t1 - t0) * 1000)
        rounds.append((t2 - t0) * 1000)
    return starts, rounds


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=30)
    n = ap.parse_args().n
    iso = probe()
    print(describe(iso))
    modes = [False, True] if iso.strong else [False]
    for isolate in modes:
        starts, rounds = measure(isolate, n)
        q = statistics.quantiles(starts, n=10)
        print(
            f"isolate={isolate!s:5}  start median {statistics.median(starts):6.1f} ms  p90 {q[-1]:6.1f} ms  "
            f"start+retrieve+close median {statistics.median(rounds):6.1f} ms  (n={n})"
        )


if __name__ == "__main__":
    main()
