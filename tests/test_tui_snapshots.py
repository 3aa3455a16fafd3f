"""Snapshot tests (pytest-textual-snapshot): the main screen at 80x24, 120x36 and 160x48, every
detail tab, and the modals. Driven by tests/tui_fixture.py's archive with a fixed clock."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from alma_tui.tui.app import AlmaApp

sys.path.insert(0, str(Path(__file__).parent))
from tui_fixture import FIXED_NOW, make_fixture_repo

SIZE = (160, 48)


@pytest.fixture(scope="module")
def fixture_repo(tmp_path_factory) -> Path:
    # the repo's name is shown in the header: keep it fixed
    return make_fixture_repo(tmp_path_factory.mktemp("snap") / "designs_repo")


def make_app(repo: Path) -> AlmaApp:
    return AlmaApp(repo, clock=lambda: FIXED_NOW, poll_interval=0.05, deterministic=True)


async def settle(pilot, design_id: str | None = None, tab: str | None = None) -> None:
    app = pilot.app

    async def until(cond) -> None:
        for _ in range(500):
            if cond():
                return
            await pilot.pause(0.02)
        raise AssertionError("app did not settle")

    await until(lambda: app.polls > 0 and app.main_screen.detail_for is not None)
    main = app.main_screen
    if design_id is not None:
        main.go_to_design(design_id)
        await until(lambda: main.detail_for == design_id)
    if tab is not None:
        main.action_tab(tab)
    await pilot.pause(0.1)
    await pilot.wait_for_scheduled_animations()


async def steady_inputs(pilot) -> None:
    """A modal's text field: no blinking cursor (a snapshot would catch it on or off)."""
    from textual.widgets import Input

    for field in pilot.app.screen.query(Input):
        field.cursor_blink = False
        field._cursor_visible = True
    await pilot.pause(0.05)
    await pilot.wait_for_scheduled_animations()


def test_main_screen(snap_compare, fixture_repo: Path) -> None:
    async def run_before(pilot) -> None:
        await settle(pilot)

    assert snap_compare(make_app(fixture_repo), terminal_size=SIZE, run_before=run_before)


@pytest.mark.parametrize("size", [(80, 24), (120, 36)], ids=["80x24", "120x36"])
def test_main_screen_small(snap_compare, fixture_repo: Path, size: tuple[int, int]) -> None:
    """<= 100 columns: compact header, narrower tree, footer with the keys that matter."""

    async def run_before(pilot) -> None:
        await settle(pilot)

    assert snap_compare(make_app(fixture_repo), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("tab", ["code", "memory"])
def test_more_tabs(snap_compare, fixture_repo: Path, tab: str) -> None:
    async def run_before(pilot) -> None:
        await settle(pilot, "d006", tab)

    assert snap_compare(make_app(fixture_repo), terminal_size=SIZE, run_before=run_before)


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24-zoomed", "160x48"])
def test_scores_tab(snap_compare, fixture_repo: Path, size: tuple[int, int]) -> None:
    async def run_before(pilot) -> None:
        await settle(pilot, "d006", "scores")
        main = pilot.app.main_screen
        for _ in range(200):
            if main.query("ScoreView") and not main.detail.scores_stale:
                break
            await pilot.pause(0.02)
        if size[0] <= 100:
            await pilot.press("z")
        await pilot.pause(0.1)

    assert snap_compare(make_app(fixture_repo), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("key", ["h", "s", "g"], ids=["hint", "stop", "git"])
def test_modals(snap_compare, fixture_repo: Path, key: str) -> None:
    async def run_before(pilot) -> None:
        await settle(pilot, "d006")
        await pilot.press(key)
        await pilot.pause(0.3 if key == "g" else 0.1)
        await steady_inputs(pilot)

    assert snap_compare(make_app(fixture_repo), terminal_size=(120, 36), run_before=run_before)


@pytest.fixture(scope="module")
def done_repo(tmp_path_factory) -> Path:
    return make_fixture_repo(tmp_path_factory.mktemp("snapdone") / "designs_repo", run_status="done")


def test_continue_modal(snap_compare, done_repo: Path) -> None:
    async def run_before(pilot) -> None:
        await settle(pilot)
        await pilot.press("c")
        await pilot.pause(0.1)
        await steady_inputs(pilot)

    assert snap_compare(make_app(done_repo), terminal_size=(120, 36), run_before=run_before)


def test_diff_tab(snap_compare, fixture_repo: Path) -> None:
    async def run_before(pilot) -> None:
        await settle(pilot, "d006", "diff")

    assert snap_compare(make_app(fixture_repo), terminal_size=SIZE, run_before=run_before)


def test_evaluation_tab(snap_compare, fixture_repo: Path) -> None:
    async def run_before(pilot) -> None:
        await settle(pilot, "d006", "evaluation")

    assert snap_compare(make_app(fixture_repo), terminal_size=SIZE, run_before=run_before)


def test_analysis_tab(snap_compare, fixture_repo: Path) -> None:
    async def run_before(pilot) -> None:
        await settle(pilot, "d006", "analysis")

    assert snap_compare(make_app(fixture_repo), terminal_size=SIZE, run_before=run_before)
