"""TUI benchmarks: time to first frame, and UI latency while log lines stream in.

    python benchmarks/tui_startup.py [--runs 5] [--designs 1000] [--events 50000] [--rate 5000]

1. first frame: a fresh interpreter imports the app and runs it headless on the test
   fixture; we time process start -> first frame painted, and -> first store poll applied.
   In the same run a bare Textual app (one Static) is timed the same way: the ratio of the
   two is what the app adds to Textual's own floor on this machine.
2. latency under load: an archive of ``--designs`` designs; a writer thread emits
   ``--events`` step events (one log line each) at ``--rate`` per second, flushed in the
   engine's batches, while the benchmark presses up/down in the archive tree and times each
   key -> selection round trip; an interval timer measures event-loop lag.
3. following the tail: every 10 ms during that stream, is the log's view at its newest line?
   (the share of samples, and the longest stretch away from it).
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


BARE = r"""
import time
t0 = time.perf_counter()
import json
from textual.app import App
from textual.widgets import Static
t_import = time.perf_counter() - t0
out = {"import_s": t_import}

class Bare(App):
    def compose(self):
        yield Static("bare")

    def on_mount(self):
        self.call_after_refresh(self.done)

    def done(self):
        out["first_frame_s"] = out["first_data_s"] = time.perf_counter() - t0
        self.exit()

Bare().run(headless=True, size=(160, 48))
print(json.dumps(out))
"""


def first_frame(repo: Path, runs: int, child: str = CHILD) -> dict[str, float]:
    rows = []
    for _ in range(runs):
        r = subprocess.run([sys.executable, "-c", child, str(repo)], capture_output=True, text=True, timeout=120)
        line = [x for x in r.stdout.splitlines() if x.startswith("{")]
        if not line:
            raise SystemExit(f"benchmark child failed:\n{r.stderr[-2000:]}")
        rows.append(json.loads(line[-1]))
    return {k: statistics.median(r[k] for r in rows) for k in ("import_s", "first_frame_s", "first_data_s")}


def check_lazy_imports() -> bool:
    code = (
        "import sys; import alma_tui.tui.app, alma_tui.tui.screens.main; "
        "print(int(any(m.startswith(('sqlmodel','sqlalchemy','litellm','git','numpy','textual_plot')) "
        "for m in sys.modules)))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    return r.stdout.strip() == "0"


WRITER = r"""
import sys, time
from pathlib import Path
from alma_tui.store import Store
repo, n, rate = Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
s = Store(repo, create=False)
batch = 200  # the engine's flush size
t = time.perf_counter()
for k in range(n):
    s.emit(
        "episode.step",
        f"deployment r{k % 3} t{k % 17} #{k} > go to fridge 1 | reward=0",
        run_id=1,
        design_id="d008",
        data={"phase": "deployment", "run": k % 3, "step": k},
    )
    if (k + 1) % batch == 0:
        s.flush_events()
        if rate:  # hold the stream to `rate` events per second
            ahead = (k + 1) / rate - (time.perf_counter() - t)
            if ahead > 0:
                time.sleep(ahead)
s.flush_events()
s.close()
"""


def big_archive(path: Path, n_designs: int) -> Path:
    """The fixture archive grown to ``n_designs`` designs (bulk inserts)."""
    from sqlalchemy import insert
    from tui_fixture import make_fixture_repo

    from alma_tui.store import Store
    from alma_tui.store.models import Design

    make_fixture_repo(path, git=False)
    s = Store(path, create=False)
    rows = []
    for i in range(9, n_designs + 1):
        parent = f"d{max(1, (i * 7) % (i - 1) or 1):03d}" if i > 9 else "d006"
        accepted = bool(i % 5)
        rows.append(
            dict(
                id=f"d{i:03d}",
                run_id=1,
                seq=i,
                parent_id=parent,
                iteration=3 + i // 10,
                title=f"variant {i} of location priors",
                code=f"x = {i}\n",
                status="accepted" if accepted else "rejected",
                score=(0.3 + (i % 37) / 100) if accepted else None,
                visits=i % 4,
            )
        )
    with s.session() as ses:
        ses.execute(insert(Design), rows)
        ses.commit()
    s.close()
    return path


async def latency(repo: Path, n_events: int, rate: float = 0.0) -> dict[str, float]:
    from alma_tui.tui.app import AlmaApp

    app = AlmaApp(repo, deterministic=True)
    lags: list[float] = []
    rtts: list[float] = []
    at_tail: list[tuple[float, bool]] = []
    async with app.run_test(size=(160, 48)) as pilot:
        for _ in range(500):
            if app.polls and app.main_screen.detail_for:
                break
            await pilot.pause(0.02)
        main = app.main_screen
        last = [time.perf_counter()]

        log = main.log_panel.log_widget

        def tick() -> None:
            now = time.perf_counter()
            lags.append(max(0.0, now - last[0] - 0.01))
            last[0] = now
            if streaming[0]:
                at_tail.append((now, round(log.scroll_y) >= log.max_scroll_y))

        streaming = [False]
        app.set_interval(0.01, tick)
        done = threading.Event()
        t_write = [0.0]

        def writer() -> None:
            # the engine is another process: so is the writer (a thread would share the UI's GIL)
            streaming[0] = True
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", WRITER, str(repo), str(n_events), str(rate)], check=True)
            t_write[0] = time.perf_counter() - t
            done.set()

        start_events = main.log_panel.total_events
        th = threading.Thread(target=writer, daemon=True)
        t_start = time.perf_counter()
        th.start()
        keys = ["up", "down"]
        i = 0
        while not done.is_set() or main.log_panel.total_events - start_events < n_events:
            before = main.archive_tree.selected_id
            t = time.perf_counter()
            app.simulate_key(keys[i % 2])  # like a real key: no waiting for idle
            while main.archive_tree.selected_id == before:
                await asyncio.sleep(0.001)
            await asyncio.sleep(0.02)
            rtts.append(time.perf_counter() - t)
            i += 1
            if time.perf_counter() - t_start > 120:
                break
        t_all = time.perf_counter() - t_start
        await pilot.pause(0.3)
        streaming[0] = False
        th.join()
        tail_end = round(log.scroll_y) >= log.max_scroll_y and log.line_count > 0
    rtts.sort()
    lags.sort()
    longest_off, off_since = 0.0, None
    for t, ok in at_tail:
        if not ok and off_since is None:
            off_since = t
        elif ok and off_since is not None:
            longest_off, off_since = max(longest_off, t - off_since), None
    if off_since is not None and at_tail:
        longest_off = max(longest_off, at_tail[-1][0] - off_since)

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
        "tail_share": sum(ok for _t, ok in at_tail) / max(1, len(at_tail)),
        "tail_samples": len(at_tail),
        "tail_longest_off_s": longest_off,
        "tail_at_end": tail_end,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=50_000)
    ap.add_argument("--rate", type=float, default=5_000.0, help="events per second (0: as fast as possible)")
    ap.add_argument("--designs", type=int, default=1_000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args(argv)
    from tui_fixture import make_fixture_repo

    with tempfile.TemporaryDirectory() as tmp:
        repo = make_fixture_repo(Path(tmp) / "designs_repo", git=False)
        ff = first_frame(repo, args.runs)
        bare = first_frame(repo, args.runs, BARE)
        print(f"import alma_tui.tui.app        {ff['import_s'] * 1000:7.0f} ms  (median of {args.runs})")
        print(f"process start -> first frame   {ff['first_frame_s'] * 1000:7.0f} ms")
        print(f"process start -> first data    {ff['first_data_s'] * 1000:7.0f} ms")
        print(
            f"bare Textual app, first frame  {bare['first_frame_s'] * 1000:7.0f} ms  "
            f"(ratio app/bare {ff['first_frame_s'] / bare['first_frame_s']:.2f})"
        )
        print(f"store/sqlmodel/git/litellm/numpy not imported before first frame: {check_lazy_imports()}")
        big = big_archive(Path(tmp) / "big", args.designs)
        lat = asyncio.run(latency(big, args.events, args.rate))
    print(
        f"streamed {lat['events']:,} events at {args.rate:,.0f}/s into {args.designs:,} designs "
        f"(writer {lat['writer_s']:.2f}s, UI caught up {lat['ui_caught_up_s']:.2f}s)"
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
    print(
        f"log at its newest line          {lat['tail_share']:.1%} of {lat['tail_samples']} samples (every 10 ms); "
        f"longest away {lat['tail_longest_off_s'] * 1000:.0f} ms; at the tail when the stream ended: "
        f"{lat['tail_at_end']}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
