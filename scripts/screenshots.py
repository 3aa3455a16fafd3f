"""Generate screenshots/{main,diff,evaluation,analysis,code,memory,scores,main-80x24}.svg with the real app.

    python scripts/screenshots.py --offline-run 3  # a real offline search (seed 0), as in the README
    python scripts/screenshots.py                  # on the deterministic test fixture
    python scripts/screenshots.py --repo designs_repo --design d012

Uses ``app.run_test(size=(160, 48))`` (``main-80x24``: an 80x24 terminal) and
``save_screenshot``; nothing is written to the repo under inspection.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

# name, tab (None: as the app opens), terminal size
SHOTS = (
    ("main", None, (160, 48)),
    ("diff", "diff", (160, 48)),
    ("evaluation", "evaluation", (160, 48)),
    ("analysis", "analysis", (160, 48)),
    ("code", "code", (160, 48)),
    ("memory", "memory", (160, 48)),
    ("scores", "scores", (160, 48)),
    ("main-80x24", None, (80, 24)),
)


async def shoot(repo: Path, out: Path, design: str | None, clock) -> list[Path]:
    from alma_tui.tui.app import AlmaApp

    written: list[Path] = []
    for name, tab, size in SHOTS:
        app = AlmaApp(repo, clock=clock, deterministic=True, poll_interval=0.1)
        async with app.run_test(size=size) as pilot:
            for _ in range(500):
                if app.polls and app.main_screen.detail_for:
                    break
                await pilot.pause(0.02)
            main = app.main_screen
            if tab is not None:
                target = design or _best(app)
                if target:
                    main.go_to_design(target)
                    for _ in range(500):
                        if main.detail_for == target:
                            break
                        await pilot.pause(0.02)
                main.action_tab(tab)
            if tab == "scores":  # the plot widget mounts on first view, then draws
                for _ in range(500):
                    if main.query("ScoreView") and not main.detail.scores_stale:
                        break
                    await pilot.pause(0.02)
            await pilot.pause(0.2)
            await pilot.wait_for_scheduled_animations()
            path = out / f"{name}.svg"
            app.save_screenshot(filename=path.name, path=str(out))
            written.append(path)
    return written


def _best(app) -> str | None:
    from alma_tui.tui.format import best_design

    best = best_design(app.designs)
    return best.id if best else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repo", type=Path, help="a repo with .alma/alma.db (default: the test fixture)")
    ap.add_argument("--design", help="design to show in the detail shots (default: the best)")
    ap.add_argument("--out", type=Path, default=ROOT / "screenshots")
    ap.add_argument(
        "--offline-run",
        type=int,
        metavar="N",
        help="first run a real N-iteration offline search (seed 0) and shoot that",
    )
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    clock = None
    with tempfile.TemporaryDirectory() as tmp:
        repo = args.repo
        if args.offline_run is not None:
            import subprocess

            repo = Path(tmp) / "designs_repo"
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
                    str(args.offline_run),
                    "--seed",
                    "0",
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        elif repo is None:
            from tui_fixture import FIXED_NOW, make_fixture_repo

            repo = make_fixture_repo(Path(tmp) / "designs_repo")
            clock = lambda: FIXED_NOW  # noqa: E731
        for p in asyncio.run(shoot(repo.resolve(), args.out, args.design, clock)):
            print(p)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
