"""TUI benchmarks: time to first frame, and UI latency while 10,000 events stream in.

    python benchmarks/tui_startup.py [--events 10000] [--runs 5]

1. first frame: a fresh interpreter imports the app and runs it headless on the test
   fixture; we time process start -> first frame painted, and -> first store poll applied.
2. latency under load: while a writer thread emits ``--events`` step events (the engine's
   batching: flush every 200 events) the benchmark presses up/down in the archive tree and
   times each key -> selection round trip; an interval timer measures event-loop lag.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

CHILD = r"""
import time
t0 = time.perf_counter()
import sys, json
from pathlib import Path
from alma_tui.tui.app import AlmaApp
t_import = time.perf_counter() - t0
out = {"import_s": t_import}

class Bench(AlmaApp):
    CSS_PATH = str(Path(sys.modules["alma_tui.tui.app"].__file__).with_name("app.tcss"))

    def _after_first_frame(self):
        out["first_frame_s"] = time.perf_counter() - t0
        super()._after_first_frame()

    def _apply_update(self, up):
        super()._apply_update(up)
        if "first_data_s" not in out:
            out["first_data_s"] = time.perf_counter() - t0
            self.call_after_refresh(self.exit)

Bench(Path(sys.argv[1])).run(headless=True, size=(160, 48))
out["sqlmodel_loaded_before_first_frame"] = False
print(json.dumps(out))
"""


def first_frame(repo: Path, runs: int) -> dict[str, float]:
    rows = []
    for _ in range(runs):
        r = subprocess.run([sys.executable, "-c", CHILD, str(repo)], capture_output=True, text=True, timeout=120)
        line = [x for x in r.stdout.splitlines() if x.startswith("{")]
        if not line:
            raise SystemExit(f"benchmark child failed:\n{r.stderr[-2000:]}")
        rows.append(json.loads(line[-1]))
    return {k: statistics.median(r[k] for r in rows) for k in ("import_s", "first_frame_s", "first_data_s")}


def check_lazy_imports() -> bool:
    code = (
        "import sys; import alma_tui.tui.app, alma_tui.tui.screens.main; "
        "print(int(any(m.startswith(('sqlmodel','sqlalchemy','litellm','git')) for m in sys.modules)))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    return r.stdout.strip() == "0"


async def latency(repo: Path, n_events: int) -> dict[str, float]:
    from alma_tui.store import Store
    from alma_tui.tui.app import AlmaApp

    app = AlmaApp(repo, deterministic=True)
    lags: list[float] = []
    rtts: list[float] = []
    async with app.run_test(size=(160, 48)) as pilot:
        for _ in range(500):
            if app.polls and app.main_screen.detail_for:
                break
            await pilot.pause(0.02)
        main = app.main_screen
        last = [time.perf_counter()]

        def tick() -> None:
            now = time.perf_counter()
            lags.append(max(0.0, now - last[0] - 0.01))
            last[0] = now

        app.set_interval(0.01, tick)
        done = threading.Event()
        t_write = [0.0]

        def writer() -> None:
            s = Store(repo, create=False)
            t = time.perf_counter()
            for k in range(n_events):
                s.emit(
                    "episode.step",
                    f"deployment r{k % 3} t{k % 17} #{k} > go to fridge 1 | reward=0",
                    run_id=1,
                    design_id="d008",
                    data={"phase": "deployment", "run": k % 3, "step": k},
                )
            s.flush_events()
            t_write[0] = time.perf_counter() - t
            s.close()
            done.set()

        start_events = main.log_panel.total_events
        th = threading.Thread(target=writer, daemon=True)
        t_start = time.perf_counter()
        th.start()
        keys = ["up", "down"]
        i = 0
        while not done.is_set() or main.log_panel.total_events - start_events < n_events:
            before = main.tree.selected_id
            t = time.perf_counter()
            app.simulate_key(keys[i % 2])  # like a real key: no waiting for idle
            while main.tree.selected_id == before:
                await asyncio.sleep(0.001)
            await asyncio.sleep(0.02)
            rtts.append(time.perf_counter() - t)
            i += 1
            if time.perf_counter() - t_start > 120:
                break
        t_all = time.perf_counter() - t_start
        th.join()
    rtts.sort()
    lags.sort()

    def pct(xs: list[float], p: float) -> float:
        return xs[min(len(xs) - 1, int(p * len(xs)))] if xs else float("nan")

    return {
        "events": n_events,
        "writer_s": t_write[0],
        "ui_caught_up_s": t_all,
        "key_round_trips": len(rtts),
        "key_rtt_p50_ms": 1000 * pct(rtts, 0.5),
        "key_rtt_p95_ms": 1000 * pct(rtts, 0.95),
        "key_rtt_max_ms": 1000 * (rtts[-1] if rtts else float("nan")),
        "loop_lag_p50_ms": 1000 * pct(lags, 0.5),
        "loop_lag_p95_ms": 1000 * pct(lags, 0.95),
        "loop_lag_max_ms": 1000 * (lags[-1] if lags else float("nan")),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args(argv)
    from tui_fixture import make_fixture_repo

    with tempfile.TemporaryDirectory() as tmp:
        repo = make_fixture_repo(Path(tmp) / "designs_repo", git=False)
        ff = first_frame(repo, args.runs)
        print(f"import alma_tui.tui.app        {ff['import_s'] * 1000:7.0f} ms  (median of {args.runs})")
        print(f"process start -> first frame   {ff['first_frame_s'] * 1000:7.0f} ms")
        print(f"process start -> first data    {ff['first_data_s'] * 1000:7.0f} ms")
        print(f"store/sqlmodel/git/litellm not imported before first frame: {check_lazy_imports()}")
        lat = asyncio.run(latency(repo, args.events))
    print(
        f"streamed {lat['events']:,} events (writer {lat['writer_s']:.2f}s, UI caught up {lat['ui_caught_up_s']:.2f}s)"
    )
    print(
        f"key -> selection round trip    p50 {lat['key_rtt_p50_ms']:.1f} ms  p95 "
        f"{lat['key_rtt_p95_ms']:.1f} ms  max {lat['key_rtt_max_ms']:.1f} ms  "
        f"({lat['key_round_trips']} presses)"
    )
    print(
        f"event-loop lag (10 ms timer)   p50 {lat['loop_lag_p50_ms']:.1f} ms  p95 "
        f"{lat['loop_lag_p95_ms']:.1f} ms  max {lat['loop_lag_max_ms']:.1f} ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
