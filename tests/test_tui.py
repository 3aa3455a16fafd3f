"""Functional Pilot tests of the TUI: keys drive steering, assertions are on the store."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import select
from textual.app import App

from alma_tui.store import Store
from alma_tui.store.models import Command, Design, Event
from alma_tui.tui.app import AlmaApp, run_tui
from alma_tui.tui.engine_proc import EngineProcess
from alma_tui.tui.format import best_history, design_label, render_diff
from alma_tui.tui.rows import EventRow
from alma_tui.tui.screens.main import MainScreen
from alma_tui.tui.screens.modals import GitScreen, HintScreen
from alma_tui.tui.widgets.event_log import EventLogPanel

sys.path.insert(0, str(Path(__file__).parent))
from tui_fixture import FIXED_NOW, T0, make_fixture_repo

SIZE = (160, 48)


@pytest.fixture(scope="session")
def template_repo(tmp_path_factory) -> Path:
    return make_fixture_repo(tmp_path_factory.mktemp("tpl") / "designs_repo")


@pytest.fixture
def repo(template_repo: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "designs_repo"
    shutil.copytree(template_repo, dest)
    return dest


def make_app(repo: Path, **kw) -> AlmaApp:
    return AlmaApp(repo, clock=lambda: FIXED_NOW, poll_interval=0.05, deterministic=True, **kw)


async def wait_until(pilot, cond, steps: int = 600) -> None:
    """Let the app run until ``cond()`` holds (bounded by steps, not by a time threshold)."""
    for _ in range(steps):
        if cond():
            return
        await pilot.pause(0.02)
    assert cond(), "condition not reached"


async def ready(pilot, design_id: str | None = None) -> MainScreen:
    app = pilot.app
    await wait_until(pilot, lambda: app.polls > 0 and app.main_screen.detail_for is not None)
    main = app.main_screen
    if design_id is not None:
        main.go_to_design(design_id)
        await wait_until(pilot, lambda: main.detail_for == design_id)
    return main


def store_design(repo: Path, design_id: str) -> Design:
    s = Store(repo, create=False)
    try:
        d = s.get_design(design_id)
        assert d is not None
        return d
    finally:
        s.close()


def commands(repo: Path) -> list[Command]:
    s = Store(repo, create=False)
    try:
        with s.session() as ses:
            return list(ses.exec(select(Command).order_by(Command.id)).all())
    finally:
        s.close()


# -- loading --------------------------------------------------------------------------------


async def test_loads_archive_and_follows_newest(repo: Path) -> None:
    app = make_app(repo)
    async with app.run_test(size=SIZE) as pilot:
        main = await ready(pilot)
        assert set(main.archive_tree.rows) == {f"d00{i}" for i in range(1, 9)}
        assert main.detail_for == "d008"  # newest design selected
        # tree structure: d006 under d004 under d002
        node = main.archive_tree._dnodes["d006"]
        assert node.parent is main.archive_tree._dnodes["d004"]
        assert node.parent.parent is main.archive_tree._dnodes["d002"]
        assert main.log_panel.log_widget.line_count > 50


# -- steering -------------------------------------------------------------------------------


async def test_pin_key_sets_flag_and_writes_command(repo: Path) -> None:
    app = make_app(repo)
    async with app.run_test(size=SIZE) as pilot:
        main = await ready(pilot, "d004")
        await pilot.press("p")
        await app.wait_commands()
        assert store_design(repo, "d004").pinned is True
        assert [(c.kind, c.design_id, c.source) for c in commands(repo)][-1] == (
            "pin",
            "d004",
            "tui",
        )
        # visible in the tree (optimistic at once, then confirmed by the poll)
        assert main.archive_tree.row("d004").pinned
        await wait_until(pilot, lambda: app.design("d004") is not None and app.design("d004").pinned)
        assert "⚑" in str(main.archive_tree._dnodes["d004"].label)
        await pilot.press("p")
        await app.wait_commands()
        assert store_design(repo, "d004").pinned is False
        assert commands(repo)[-1].kind == "unpin"


async def test_veto_key(repo: Path) -> None:
    app = make_app(repo)
    async with app.run_test(size=SIZE) as pilot:
        main = await ready(pilot, "d003")
        await pilot.press("v")
        await app.wait_commands()
        assert store_design(repo, "d003").vetoed is True
        assert commands(repo)[-1].kind == "veto"
        await wait_until(pilot, lambda: "⊘" in str(main.archive_tree._dnodes["d003"].label))
        # an already vetoed design is unvetoed
        main.go_to_design("d007")
        await wait_until(pilot, lambda: main.detail_for == "d007")
        await pilot.press("v")
        await app.wait_commands()
        assert store_design(repo, "d007").vetoed is False
        assert commands(repo)[-1].kind == "unveto"


async def test_space_pauses_and_resumes(repo: Path) -> None:
    app = make_app(repo)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("space")
        await app.wait_commands()
        assert commands(repo)[-1].kind == "pause"
        # the engine applies it at its next selection: simulate that
        s = Store(repo, create=False)
        s.update_run(1, status="paused", heartbeat_at=FIXED_NOW)
        s.close()
        await wait_until(pilot, lambda: app.run_info is not None and app.run_info.status == "paused")
        await pilot.press("space")
        await app.wait_commands()
        assert commands(repo)[-1].kind == "resume"


async def test_hint_modal_writes_hint(repo: Path) -> None:
    app = make_app(repo)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("h")
        await wait_until(pilot, lambda: isinstance(app.screen, HintScreen))
        await pilot.press(*"count rooms")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        await app.wait_commands()
        last = commands(repo)[-1]
        assert (last.kind, last.text) == ("hint", "count rooms")
        # escape cancels without writing
        n = len(commands(repo))
        await pilot.press("h")
        await wait_until(pilot, lambda: isinstance(app.screen, HintScreen))
        await pilot.press("x", "escape")
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        await app.wait_commands()
        assert len(commands(repo)) == n


async def test_stop_asks_then_writes(repo: Path) -> None:
    app = make_app(repo)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("s")
        await pilot.press("n")
        await app.wait_commands()
        assert all(c.kind != "stop" for c in commands(repo))
        await pilot.press("s")
        await pilot.press("y")
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        await app.wait_commands()
        assert commands(repo)[-1].kind == "stop"


async def test_steering_keys_inert_when_run_is_over(repo: Path) -> None:
    s = Store(repo, create=False)
    s.update_run(1, status="done")
    s.close()
    app = make_app(repo)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        n = len(commands(repo))
        await pilot.press("space", "s")
        await app.wait_commands()
        assert len(commands(repo)) == n
        assert isinstance(app.screen, MainScreen)


async def test_command_palette_pins(repo: Path) -> None:
    app = make_app(repo)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, "d002")
        await pilot.press("ctrl+p")
        await pilot.press(*"Pin d002")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        await app.wait_commands()
        await wait_until(pilot, lambda: any(c.kind == "pin" and c.design_id == "d002" for c in commands(repo)))
        assert store_design(repo, "d002").pinned


# -- navigation -----------------------------------------------------------------------------


async def test_best_and_tabs(repo: Path) -> None:
    app = make_app(repo)
    async with app.run_test(size=SIZE) as pilot:
        main = await ready(pilot)
        await pilot.press("b")
        await wait_until(pilot, lambda: main.detail_for == "d006")
        assert main.archive_tree.follow is False
        from textual.widgets import TabbedContent

        tabs = main.query_one(TabbedContent)
        assert tabs.active == "diff"
        for key, tab in (("2", "code"), ("3", "analysis"), ("4", "evaluation"), ("5", "memory"), ("6", "scores")):
            await pilot.press(key)
            assert tabs.active == tab
        await pilot.press("right_square_bracket")
        assert tabs.active == "diff"
        await pilot.press("n")
        await wait_until(pilot, lambda: main.detail_for == "d008")
        assert main.archive_tree.follow is True


async def test_git_modal(repo: Path) -> None:
    app = make_app(repo)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, "d006")
        await pilot.press("g")
        await wait_until(pilot, lambda: isinstance(app.screen, GitScreen))
        from textual.widgets import Static

        body = app.screen.query_one("#git-body", Static)
        await wait_until(pilot, lambda: "Location priors" in str(body.render()))
        assert "d004" in str(body.render())
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))


async def test_log_filter_and_scope(repo: Path) -> None:
    app = make_app(repo)
    async with app.run_test(size=SIZE) as pilot:
        main = await ready(pilot, "d006")
        log = main.log_panel.log_widget
        await pilot.press("slash")
        assert app.focused is not None and app.focused.id == "log-filter"
        await pilot.press(*"failure")
        await wait_until(pilot, lambda: 0 < log.line_count < 60)
        assert all("failure" in line for line in log.lines)
        await pilot.press("escape")
        assert app.focused is main.archive_tree
        await pilot.press("l")
        await wait_until(pilot, lambda: main.log_panel.scope == "design" and main.log_panel._design_ready)
        assert all(" d006 " in line for line in log.lines)


# -- the log follows its tail ---------------------------------------------------------------


class _LogHost(App):
    """Just the log panel, with a small buffer so that it fills (and trims) in a few writes."""

    def __init__(self, buffer_lines: int = 60, visible_lines: int = 40) -> None:
        super().__init__()
        self.sizes = {"buffer_lines": buffer_lines, "visible_lines": visible_lines}

    def compose(self):
        yield EventLogPanel(id="log-panel", **self.sizes)


def _log_rows(start: int, stop: int) -> list[EventRow]:
    return [EventRow(i, T0, "d001", "step", f"msg-{i:06d}", "{}") for i in range(start, stop)]


def _on_screen(app: App) -> list[int]:
    """The numbers of the log lines actually painted (from a screenshot, not the model)."""
    return sorted(int(n) for n in re.findall(r"msg-(\d{6})", app.export_screenshot()))


async def test_log_keeps_following_after_its_buffer_fills() -> None:
    app = _LogHost()
    async with app.run_test(size=(100, 30)) as pilot:
        panel = app.query_one(EventLogPanel)
        log = panel.log_widget
        n = 0
        for batch in (7, 13, 25, 40, 3, 1, 61, 5):  # past both the 40-line view and the 60-line buffer
            panel.add_events(_log_rows(n, n + batch))
            n += batch
            await pilot.pause()
            assert log.scroll_y == log.max_scroll_y
            assert _on_screen(app)[-1] == n - 1, f"after {n} lines the newest is not on screen"
        assert log.line_count == 40
        # scrolled up, the user reads on undisturbed: trimming keeps the same lines in view
        log.focus()
        await pilot.press("pageup")
        assert not log.following
        shown = _on_screen(app)
        panel.add_events(_log_rows(n, n + 5))
        n += 5
        await pilot.pause()
        assert _on_screen(app) == shown
        # back at the bottom, it follows again
        await pilot.press("end")
        assert log.following
        panel.add_events(_log_rows(n, n + 5))
        n += 5
        await pilot.pause()
        assert _on_screen(app)[-1] == n - 1


async def test_log_returns_to_its_tail_when_a_filter_is_cleared() -> None:
    app = _LogHost(buffer_lines=500, visible_lines=400)
    async with app.run_test(size=(100, 30)) as pilot:
        panel = app.query_one(EventLogPanel)
        log = panel.log_widget
        panel.add_events(_log_rows(0, 150))
        await pilot.pause()
        panel.filter_text = "msg-0000"  # lines 0..99: more than the view holds
        await pilot.pause()
        assert _on_screen(app)[-1] == 99
        panel.filter_text = ""
        await pilot.pause()
        assert _on_screen(app)[-1] == 149, "clearing the filter did not return to the tail"
        assert log.scroll_y == log.max_scroll_y
        panel.add_events(_log_rows(150, 160))  # and it still follows
        await pilot.pause()
        assert _on_screen(app)[-1] == 159


# -- live updates ---------------------------------------------------------------------------


def _insert_design(repo: Path, did: str, parent: str, seq: int, **kw) -> None:
    s = Store(repo, create=False)
    s.add(
        Design(
            id=did,
            run_id=1,
            seq=seq,
            parent_id=parent,
            iteration=4,
            title=f"live {did}",
            code="x = 1\n",
            status=kw.pop("status", "evaluating"),
            **kw,
        )
    )
    s.emit("design.proposed", f"{did} proposed", run_id=1, design_id=did, flush=True)
    s.close()


async def test_new_designs_appear_live(repo: Path) -> None:
    app = make_app(repo)
    async with app.run_test(size=SIZE) as pilot:
        main = await ready(pilot)
        _insert_design(repo, "d009", "d006", 9)
        await wait_until(pilot, lambda: "d009" in main.archive_tree.rows)
        assert main.archive_tree._dnodes["d009"].parent is main.archive_tree._dnodes["d006"]
        await wait_until(pilot, lambda: main.detail_for == "d009")  # follows the newest
        assert any("d009 proposed" in line for line in main.log_panel.log_widget.lines)
        # status change: evaluating -> accepted updates label and the open detail
        s = Store(repo, create=False)
        s.update_design("d009", status="accepted", score=0.71, score_se=0.02)
        s.close()
        await wait_until(pilot, lambda: "0.710" in str(main.archive_tree._dnodes["d009"].label))
        assert "★" in str(main.archive_tree._dnodes["d009"].label)  # new best
        # once the user moves the cursor, new designs no longer steal it
        await pilot.press("up")
        await wait_until(pilot, lambda: main.detail_for not in (None, "d009"))
        moved_to = main.detail_for
        _insert_design(repo, "d010", "d009", 10)
        await wait_until(pilot, lambda: "d010" in main.archive_tree.rows)
        await pilot.pause(0.2)
        assert main.archive_tree.selected_id == moved_to


async def test_heartbeat_staleness_shown(repo: Path) -> None:
    app = AlmaApp(
        repo,
        clock=lambda: FIXED_NOW + timedelta(seconds=60),
        poll_interval=0.05,
        deterministic=True,
    )
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)

        status = app.main_screen.query_one("#hdr-top")
        assert "INTERRUPTED" in str(status.render())  # no heartbeat, no engine lock


async def test_waits_for_a_store_that_does_not_exist_yet(tmp_path: Path, template_repo: Path) -> None:
    repo = tmp_path / "later"
    app = make_app(repo)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.2)

        status = app.main_screen.query_one("#hdr-top")
        assert "WAITING" in str(status.render())
        shutil.copytree(template_repo, repo)
        app.poll_now()
        await ready(pilot)
        assert app.run_info is not None and app.run_info.domain == "household"


# -- the engine subprocess ------------------------------------------------------------------


class ScriptEngine(EngineProcess):
    def __init__(self, repo: Path, script: str) -> None:
        super().__init__(repo, [])
        self.script = script

    @property
    def cmd(self) -> list[str]:
        return [sys.executable, "-c", self.script]


async def test_engine_failure_is_shown(repo: Path) -> None:
    engine = ScriptEngine(repo, "import sys; print('Traceback: boom in the engine'); sys.exit(3)")
    engine.start()
    app = make_app(repo, engine=engine)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await wait_until(pilot, lambda: app.engine_exit == 3)
        from textual.widgets import Static

        banner = app.main_screen.query_one("#banner", Static)
        await wait_until(pilot, lambda: banner.has_class("shown"))
        assert "boom in the engine" in str(banner.render())
        assert "exited with code 3" in str(banner.render())


_HOLD_LOCK = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX)
os.ftruncate(fd, 0)
os.write(fd, str(os.getpid()).encode())
print("locked", flush=True)
time.sleep(120)
"""


def test_opening_on_a_running_search_attaches_instead_of_failing(repo: Path, monkeypatch) -> None:
    """`alma-tui` on a repo whose search runs headless: no second engine, no error, q leaves it be."""
    other = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(repo / ".alma" / "engine.lock")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert other.stdout is not None and other.stdout.readline().strip() == "locked"
        started: list[list[str]] = []
        real_start = EngineProcess.start

        def fake_start(self: EngineProcess) -> None:
            started.append(list(self.argv))
            real_start(self)

        # what a second engine does on a locked repo: it says so and exits with 1
        second = [sys.executable, "-c", "import sys; print('a search is already running'); sys.exit(1)"]
        monkeypatch.setattr(EngineProcess, "start", fake_start)
        monkeypatch.setattr(EngineProcess, "cmd", property(lambda self: second))
        seen: dict[str, object] = {}
        notes: list[str] = []
        real_notify = AlmaApp.notify

        def record_notify(self: AlmaApp, message: str, *a: object, **kw: object) -> None:
            notes.append(message)  # recorded as sent: a toast expires after its timeout on a slow machine
            real_notify(self, message, *a, **kw)  # type: ignore[arg-type]

        monkeypatch.setattr(AlmaApp, "notify", record_notify)

        async def drive(app: AlmaApp) -> None:
            app.clock = lambda: FIXED_NOW
            app.poll_interval = 0.05
            async with app.run_test(size=SIZE) as pilot:
                await ready(pilot)
                await pilot.pause(0.3)  # time for an engine started by mistake to fail and be seen
                seen["notes"] = list(notes)
                seen["engine_exit"] = app.engine_exit
                await pilot.press("q")

        monkeypatch.setattr(AlmaApp, "run", lambda self, *a, **kw: asyncio.run(drive(self)))
        rc = run_tui(repo, engine_argv=["run", "--headless", "--repo", str(repo)])

        assert started == [], "a second engine was started on a repo whose search is running"
        assert seen["engine_exit"] is None
        assert seen["notes"] == [f"attached to the search already running in {repo.resolve()} (pid {other.pid})"]
        assert rc == 0
        assert other.poll() is None, "quitting stopped the search it had attached to"
    finally:
        other.kill()
        other.wait()


def test_alma_tui_on_a_running_search_goes_straight_to_attaching(repo: Path, monkeypatch) -> None:
    """The CLI does not check keys and models for an engine it will not start."""
    from alma_tui import cli
    from alma_tui.tui import app as app_module

    other = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(repo / ".alma" / "engine.lock")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert other.stdout is not None and other.stdout.readline().strip() == "locked"
        calls: list[tuple] = []
        monkeypatch.setattr(app_module, "run_tui", lambda *a, **kw: calls.append((a, kw)) or 0)
        monkeypatch.setattr(cli, "_check_models", lambda *a, **kw: pytest.fail("checked models for no engine"))
        monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
        assert cli.main(["--repo", str(repo)]) == 0
        assert calls == [((repo,), {"engine_argv": None, "attach": True})]
    finally:
        other.kill()
        other.wait()


def test_engine_process_stops_with_sigint(tmp_path: Path) -> None:
    script = (
        "import signal, sys, time\n"
        "def bye(*a):\n    print('clean shutdown', flush=True); sys.exit(0)\n"
        "signal.signal(signal.SIGINT, bye)\n"
        "print('re' + 'ady', flush=True)\n"
        "while True: time.sleep(0.05)\n"
    )
    engine = ScriptEngine(tmp_path, script)
    engine.start()
    from alma_tui.tui.data import wait_for

    assert wait_for(lambda: "ready" in engine.log_tail().splitlines()[-1:][0], timeout=20)
    assert engine.running()
    assert engine.stop(timeout=10) == 0
    assert "clean shutdown" in engine.log_tail()


# -- stress ---------------------------------------------------------------------------------


def _big_archive(path: Path, n_designs: int = 500, n_events: int = 10_000) -> Path:
    from sqlalchemy import insert  # bulk inserts: ~5x faster than ORM objects for 10k rows

    make_fixture_repo(path, git=False)
    s = Store(path, create=False)
    designs = []
    for i in range(9, n_designs + 1):
        parent = f"d{max(1, (i * 7) % (i - 1) or 1):03d}" if i > 9 else "d006"
        designs.append(
            dict(
                id=f"d{i:03d}",
                run_id=1,
                seq=i,
                parent_id=parent,
                iteration=3 + i // 10,
                title=f"variant {i} of location priors",
                code=f"x = {i}\n",
                status="accepted" if i % 5 else "rejected",
                score=(0.3 + (i % 37) / 100) if i % 5 else None,
                visits=i % 4,
            )
        )
    evs = [
        dict(
            ts=T0,
            run_id=1,
            design_id="d420",
            kind="episode.step",
            message="",
            data_json=json.dumps(
                {
                    "phase": "deployment",
                    "run": k % 3,
                    "task_id": f"t{k % 17}",
                    "step": k,
                    "action": "go to fridge 1",
                    "observation": "You see a fridge.",
                    "reward": 0,
                }
            ),
        )
        for k in range(n_events)
    ]
    with s.session() as ses:
        ses.execute(insert(Design), designs)
        ses.execute(insert(Event), evs)
        ses.commit()
    s.close()
    return path


async def test_stress_500_designs_10k_events_stays_responsive(tmp_path: Path) -> None:
    repo = _big_archive(tmp_path / "big")
    app = make_app(repo)
    async with app.run_test(size=SIZE) as pilot:
        main = await ready(pilot)
        assert len(main.archive_tree.rows) == 500
        # key round trips while a writer streams another 10k events
        stop = threading.Event()

        def writer() -> None:
            s = Store(repo, create=False)
            k = 0
            while not stop.is_set() and k < 5_000:
                for _ in range(500):
                    s.emit("episode.step", f"step {k}", run_id=1, design_id="d421", data={"step": k})
                    k += 1
                s.flush_events()
            s.close()

        t = threading.Thread(target=writer, daemon=True)
        t.start()
        try:
            main.go_to_design("d420")
            await wait_until(pilot, lambda: main.detail_for == "d420")
            await pilot.press("l")  # this design's 10,000 events
            await wait_until(pilot, lambda: main.log_panel._design_ready)
            assert main.log_panel.log_widget.line_count >= 9_000
            await pilot.press("b")
            await wait_until(
                pilot,
                lambda: (
                    main.detail_for == main.archive_tree.row(main.detail_for).id
                    and main.archive_tree.row(main.detail_for).score
                    == max(d.score for d in app.designs if d.score is not None)
                ),
            )
            await pilot.press("down")
            await wait_until(pilot, lambda: main.archive_tree.selected_id is not None)
            await pilot.press("l")
            assert main.log_panel.scope == "all"
        finally:
            stop.set()
            t.join(30)
        await wait_until(pilot, lambda: any("step 4999" in x for x in main.log_panel.log_widget.lines[-50:]))


# -- pure helpers ---------------------------------------------------------------------------


def test_render_diff_marks_lines() -> None:
    text = render_diff("a = 1\nb = 2\n", "a = 1\nb = 3\nc = 4\n", "p/design.py", "c/design.py")
    plain = text.plain
    assert "--- p/design.py" in plain and "+++ c/design.py" in plain
    assert "- b = 2" in plain and "+ b = 3" in plain and "+ c = 4" in plain
    assert "@@ -1,2 +1,3 @@" in plain


def test_best_history_is_monotone() -> None:
    from alma_tui.tui.data import DesignRow

    def row(i: str, it: int, score: float | None, status: str = "accepted") -> DesignRow:
        return DesignRow(
            i,
            None,
            int(i[1:]),
            it,
            "meta",
            i,
            status,
            score,
            None,
            0,
            False,
            False,
            None,
            0,
            None,
            0,
            0.0,
        )

    rows = [
        row("d1", 0, 0.3),
        row("d2", 1, 0.5),
        row("d3", 2, 0.4),
        row("d4", 3, None, "rejected"),
        row("d5", 4, 0.6),
    ]
    assert best_history(rows) == [0.3, 0.5, 0.5, 0.5, 0.6]
    label = design_label(rows[1], parent_score=0.3, best_id="d5", lo=0.3, hi=0.6)
    assert "d2" in label.plain and "0.500" in label.plain and "+0.200" in label.plain


def test_reader_matches_the_store_models(repo: Path) -> None:
    """The TUI reads with stdlib sqlite3 (fast startup); its queries must track the models."""
    from sqlmodel import SQLModel

    from alma_tui.store import db_path as store_db_path
    from alma_tui.tui.data import (
        TABLES,
        Reader,
        db_path,
        read_designs,
        read_detail,
        read_events_after,
        read_run,
    )

    assert db_path(repo) == store_db_path(repo)
    assert set(TABLES) <= set(SQLModel.metadata.tables)
    s = Store(repo, create=False)
    try:
        run, designs = s.get_run(), {d.id: d for d in s.designs()}
        ev = s.events_after(0, limit=1)[0]
    finally:
        s.close()
    with Reader(repo) as db:
        info = read_run(db)
        rows = read_designs(db)
        detail = read_detail(db, "d006")
        first_event = read_events_after(db, 0, limit=1)[0]
    assert (first_event.id, first_event.ts, first_event.kind) == (ev.id, ev.ts, ev.kind)
    assert info is not None and run is not None
    assert (info.status, info.heartbeat_at, info.no_memory_score) == (
        run.status,
        run.heartbeat_at,
        run.no_memory_score,
    )
    assert [r.id for r in rows] == sorted(designs, key=lambda i: designs[i].seq)
    for r in rows:
        d = designs[r.id]
        assert (r.status, r.score, r.pinned, r.commit) == (d.status, d.score, d.pinned, d.commit)
    assert detail is not None and detail.code == designs["d006"].code and detail.episodes


# -- small terminals ----------------------------------------------------------------------------


async def test_an_80x24_terminal_keeps_the_detail_readable_and_every_score_visible(repo: Path) -> None:
    app = make_app(repo)
    async with app.run_test(size=(80, 24)) as pilot:
        main = await ready(pilot)
        tree = main.archive_tree
        archive = app.screen.query_one("#archive")
        assert archive.size.width <= 34  # was a fixed 62 columns, leaving the detail 16
        assert app.screen.size.width - archive.size.width >= 44
        await pilot.pause(0.1)
        for did, node in tree._dnodes.items():
            row = tree.rows[did]
            if row.score is None:
                continue
            depth_indent = tree.guide_depth * (tree._depth(row) + 1)
            label = node.label.plain
            score = f"{row.score:.3f}"
            assert score in label, (did, label)
            assert depth_indent + label.index(score) + len(score) <= tree.size.width, (did, label)


# -- lazy tabs, the score view, worker failures, keys that cannot act ---------------------------


async def test_tabs_are_rendered_when_first_shown_not_on_every_selection(repo: Path) -> None:
    app = make_app(repo)
    async with app.run_test(size=SIZE) as pilot:
        main = await ready(pilot, "d006")
        views = main.detail.views
        assert views is not None and set(views.rendered) == {"diff"}  # only the tab on screen
        main.go_to_design("d004")
        await wait_until(pilot, lambda: main.detail_for == "d004")
        assert set(main.detail.views.rendered) == {"diff"}
        await pilot.press("2")
        await pilot.pause(0.05)
        assert set(main.detail.views.rendered) == {"diff", "code"}
        code = main.detail.views.rendered["code"]
        text = code.renderables[-1]  # the design's code, highlighted (spans with colour)
        assert "class " in text.plain and any(span.style for span in text.spans)
        assert not main.detail.query("ScoreView")  # the plot widget: only once its tab is shown


async def test_score_view_plots_each_score_and_the_best_so_far(repo: Path) -> None:
    from alma_tui.tui.widgets.scores import ScoreView

    app = make_app(repo)
    async with app.run_test(size=SIZE) as pilot:
        main = await ready(pilot)
        await pilot.press("6")
        await wait_until(pilot, lambda: bool(main.detail.query(ScoreView)) and not main.detail.scores_stale)
        view = main.detail.query_one(ScoreView)
        summary = str(view.query_one("#scores-summary").render())
        accepted = [d for d in app.designs if d.status == "accepted" and d.score is not None]
        best = max(d.score for d in accepted)
        assert f"{len(accepted)} designs" in summary and f"best {best:.3f}" in summary
        plot = view.query_one("#score-plot")
        assert len(plot._datasets) == 2  # the best-so-far line and the designs' scores
        assert plot._datasets[0].y.tolist()[-1] == best
        assert sorted(plot._datasets[1].y.tolist()) == sorted(d.score for d in accepted)


def test_score_series_best_so_far_never_falls() -> None:
    from alma_tui.tui.rows import DesignRow
    from alma_tui.tui.widgets.scores import score_series

    def row(i: int, it: int, score: float | None, status: str = "accepted", cost: float = 0.0) -> DesignRow:
        return DesignRow(
            f"d{i:03}", None, i, it, "meta", "t", status, score, None, 0, False, False, None, 0, None, 10, cost
        )

    s = score_series([row(1, 0, 0.3), row(2, 1, 0.6), row(3, 2, 0.4), row(4, 2, None, "rejected"), row(5, 3, 0.5)])
    assert s.best_y == [0.3, 0.6, 0.6, 0.6] and s.best_x == [0, 1, 2, 3]
    assert s.scores == [0.3, 0.6, 0.4, 0.5] and s.rejected == 1
    assert s.spend_unit == "tokens" and s.spend_y == [10, 20, 30, 40, 50]  # nothing priced: tokens
    priced = score_series([row(1, 0, 0.3, cost=0.5), row(2, 1, 0.4, cost=0.25)])
    assert priced.spend_unit == "USD" and priced.spend_y == [0.5, 0.75]


async def test_a_failing_worker_is_a_toast_not_a_dead_ui(repo: Path, monkeypatch) -> None:
    """Textual's default exit_on_error would end the app on any exception in a worker."""
    from alma_tui.tui.widgets import detail as detail_module

    def broken(*_a, **_kw):
        raise KeyError("analysis")

    app = make_app(repo)
    async with app.run_test(size=SIZE) as pilot:
        main = await ready(pilot, "d008")
        monkeypatch.setattr(detail_module, "build_views", broken)
        main.go_to_design("d006")
        header = main.detail.query_one("#detail-header")
        await wait_until(pilot, lambda: "cannot show d006" in str(header.render()))
        assert app.is_running and app.return_code is None

        @app.call_later
        def _start() -> None:
            app.run_worker(lambda: 1 / 0, thread=True, name="probe", exit_on_error=False)

        await wait_until(pilot, lambda: any("probe: ZeroDivisionError" in e for e in app.worker_errors))
        assert any("probe failed" in n.message for n in app._notifications)
        await pilot.press("b")  # still answers keys
        await wait_until(pilot, lambda: main.detail_for is not None)
        assert app.is_running


async def test_the_store_poller_is_restarted_after_it_fails(repo: Path, monkeypatch) -> None:

    app = make_app(repo)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        real = app._check_engine
        fail = {"left": 1}

        def check_once_broken() -> None:
            if fail["left"]:
                fail["left"] -= 1
                raise RuntimeError("poller bug")  # outside the loop's own try: the worker dies
            real()

        monkeypatch.setattr(app, "_check_engine", check_once_broken)
        await wait_until(pilot, lambda: any("store-poller" in e for e in app.worker_errors))
        polls = app.polls
        _insert_design(repo, "d020", "d002", 20, score=0.9)
        await wait_until(pilot, lambda: "d020" in app.main_screen.archive_tree.rows, steps=400)
        assert app.polls > polls and app.is_running


async def test_keys_that_cannot_act_say_why(repo: Path) -> None:
    s = Store(repo, create=False)
    s.update_run(1, status="done")
    s.close()
    app = make_app(repo)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        for key in ("space", "h", "s"):
            before = len(app._notifications)
            await pilot.press(key)
            await pilot.pause(0.05)
            notes = [n.message for n in list(app._notifications)[before:]]
            assert notes and "The search is done" in notes[-1] and "c to continue" in notes[-1], (key, notes)
        footer_keys = {b.binding.action for b in app.screen.active_bindings.values() if b.enabled}
        assert "continue_search" in footer_keys


async def test_continue_a_finished_search_from_the_app(repo: Path) -> None:
    s = Store(repo, create=False)
    s.update_run(1, status="done", iterations_done=10, iterations_target=10)
    s.close()
    started: list[list[str]] = []

    class FakeEngine(ScriptEngine):
        def __init__(self, repo: Path, argv: list[str]) -> None:
            super().__init__(repo, "import time; time.sleep(30)")
            started.append(argv)

    app = make_app(repo, continue_flags=["--allow-weak-sandbox"])
    app.engine_factory = FakeEngine
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("c")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "ContinueScreen")
        dialog = app.screen
        dialog.query_one("#continue-more").value = "abc"
        await pilot.press("enter")
        assert "not a whole number" in str(dialog.query_one("#continue-error").render())
        dialog.query_one("#continue-more").value = "4"
        dialog.query_one("#continue-budget").value = "2.5"
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        argv = ["run", "--headless", "--repo", str(app.repo), "--iterations", "14", "--budget-usd", "2.5"]
        assert started == [[*argv, "--allow-weak-sandbox"]]  # this start's one-time flags go on
        assert app.engine is not None and app.engine.running()
        app.engine.stop(timeout=2)


def test_continue_choice_rules() -> None:
    from alma_tui.tui.rows import RunInfo
    from alma_tui.tui.screens.modals import continue_choice

    def run(done: int, target: int, budget: float | None = None) -> RunInfo:
        return RunInfo(1, "done", "", "household", "m", "a", "open-ended", target, done, 0.3, None, None, None, budget)

    assert continue_choice(run(10, 10), "done", "5", "") == (15, None)
    assert continue_choice(run(3, 10), "stopped", "0", "") == (10, None)  # resume to the old target
    assert "at least 1 more" in continue_choice(run(10, 10), "done", "0", "")
    assert "larger budget" in continue_choice(run(4, 10, 1.0), "budget", "0", "")
    assert "more than the current $1" in continue_choice(run(4, 10, 1.0), "budget", "0", "0.5")
    assert continue_choice(run(4, 10, 1.0), "budget", "0", "$3") == (10, 3.0)
    assert "0 to 100000" in continue_choice(run(4, 10), "done", "-2", "")


def test_keymap_with_an_unknown_id_is_one_line(monkeypatch) -> None:
    from alma_tui.tui.bindings import KeymapError, check_keymap, env_keymap

    monkeypatch.setenv("ALMA_TUI_KEYMAP", "alma.pin=P,alma.pinn=X")
    with pytest.raises(KeymapError, match=r"ALMA_TUI_KEYMAP: unknown key binding id 'alma.pinn'"):
        env_keymap()
    monkeypatch.setenv("ALMA_TUI_KEYMAP", "alma.pin")
    with pytest.raises(KeymapError, match="is not id=keys"):
        env_keymap()
    with pytest.raises(KeymapError, match="is not a key"):
        check_keymap({"alma.hint": "ctrl p"}, "config.toml [keymap]")
    assert check_keymap({"alma.pin": "P", "alma.quit": "ctrl+q,f10"}, "x") == {
        "alma.pin": "P",
        "alma.quit": "ctrl+q,f10",
    }


async def test_app_remaps_keys_and_warns_about_a_bad_keymap(repo: Path, monkeypatch) -> None:
    monkeypatch.setenv("ALMA_TUI_KEYMAP", "alma.veto=V")
    app = make_app(repo, keymap={"alma.pin": "P"}, theme="nord")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, "d004")
        assert app.theme == "nord"
        await pilot.press("P")
        await app.wait_commands()
        assert store_design(repo, "d004").pinned is True
    monkeypatch.setenv("ALMA_TUI_KEYMAP", "alma.typo=V")
    app = make_app(repo)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        assert any("unknown key binding id 'alma.typo'" in n.message for n in app._notifications)


async def test_escape_in_the_filter_clears_it(repo: Path) -> None:
    app = make_app(repo)
    async with app.run_test(size=SIZE) as pilot:
        main = await ready(pilot)
        total = main.log_panel.log_widget.line_count
        await pilot.press("slash", *"accepted")
        await wait_until(pilot, lambda: main.log_panel.log_widget.line_count < total)
        await pilot.press("escape")
        await wait_until(pilot, lambda: main.log_panel.filter_text == "")
        assert main.query_one("#log-filter").value == "" and main.log_panel.log_widget.line_count == total
        assert main.archive_tree.has_focus


async def test_footer_says_resume_while_paused(repo: Path) -> None:
    s = Store(repo, create=False)
    s.update_run(1, status="paused")
    s.close()
    app = make_app(repo)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        shown = {b.binding.description for b in app.screen.active_bindings.values() if b.enabled and b.binding.show}
        assert "Resume" in shown and "Pause" not in shown
        await pilot.press("space")
        await app.wait_commands()
        assert commands(repo)[-1].kind == "resume"


async def test_after_a_stop_no_child_counts_as_in_flight(repo: Path) -> None:
    s = Store(repo, create=False)
    s.update_run(1, status="stopped")
    s.close()
    app = make_app(repo)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        assert any(d.status in ("proposed", "evaluating") for d in app.designs)
        header = app.screen.query_one("#hdr-left")
        assert "◔" not in str(header.render())


async def test_header_compacts_at_100_columns_and_shows_spend_against_budget(repo: Path) -> None:
    import sqlite3

    con = sqlite3.connect(repo / ".alma" / "alma.db")
    con.execute("""UPDATE run SET settings_json = '{"budget_usd": 2.0}'""")
    con.commit()
    con.close()
    app = make_app(repo)
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await pilot.pause(0.1)
        top = str(app.screen.query_one("#hdr-top").render())
        assert app.screen.query_one("#header").has_class("compact")
        assert "RUNNING" in top and "iter" in top and "best" in top and "/ $2" in top, top
        assert not app.screen.query_one("#hdr-spark").display
        footer = {b.binding.description for b in app.screen.active_bindings.values() if b.binding.show}
        assert {"Pin", "Veto", "Hint", "Stop", "Quit"} <= footer
    app = make_app(repo)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.pause(0.1)
        assert not app.screen.query_one("#header").has_class("compact")
        assert "/ $2" in str(app.screen.query_one("#hdr-right").render())


async def test_pin_and_veto_are_never_both_on_one_design(repo: Path) -> None:
    app = make_app(repo)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, "d004")
        await pilot.press("p")
        await app.wait_commands()
        n = len(commands(repo))
        await pilot.press("v")
        await pilot.pause(0.05)
        await app.wait_commands()
        assert len(commands(repo)) == n and store_design(repo, "d004").vetoed is False
        assert any("d004 is pinned" in m.message for m in app._notifications)


def test_diff_summary_keeps_its_numbers_in_a_narrow_pane() -> None:
    """The Diff tab's summary: lines added/removed and the score change come first, on their own
    line, so a narrow detail pane (80x24) cuts a long title, never the numbers (issue 13, item 5)."""
    from rich.console import Console

    from alma_tui.tui.rows import DesignDetail
    from alma_tui.tui.widgets.detail import render_diff_tab

    long_title = "Object-location counts per house kind with sightings and misses + failed tools + plurals"
    d = DesignDetail(
        id="d012", title=long_title, status="accepted", origin="meta", parent_id="d005", iteration=5,
        code="x = 1\ny = 2\n", parent_code="x = 1\n", parent_title=long_title, parent_score=0.583,
        score=0.806, score_se=0.01, run_scores=[0.8], error=None, error_detail=None, repairs=0,
        commit=None, analysis=None, analysis_raw=None, memory=None, memory_raw=None, tokens=0, cost_usd=0.0,
    )  # fmt: skip
    console = Console(width=36, record=True, color_system=None)
    console.print(render_diff_tab(d), crop=True, soft_wrap=False)
    first = console.export_text().splitlines()[0]
    assert first.startswith("+1 −0") and "0.583 → 0.806" in first and "+0.223" in first  # noqa: RUF001
