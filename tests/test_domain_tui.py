"""A search on a domain other than the household names that domain in the headless output and
in the TUI header, and the TUI's Evaluation tab lists its per-task results (a real one-iteration
Baba Is AI search: no extra package, levels generated in milliseconds)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_tui import SIZE, make_app, ready, wait_until

from alma_tui.cli import main
from alma_tui.domains import get_domain

SMALL = ["--collection", "2", "--deployment", "3", "--runs", "1", "--concurrency", "2"]


@pytest.fixture(scope="module")
def baba_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    repo = tmp_path_factory.mktemp("baba") / "r"
    capture = tmp_path_factory.mktemp("out") / "out.txt"
    import contextlib

    with capture.open("w") as fh, contextlib.redirect_stdout(fh):
        code = main(["run", "--headless", "--repo", str(repo), "--domain", "babaisai", "--iterations", "1", *SMALL])
    assert code == 0
    return repo, capture.read_text()


def test_headless_output_names_the_domain(baba_repo: tuple[Path, str]) -> None:
    _, out = baba_repo
    assert "search on babaisai" in out


async def test_tui_header_and_evaluation_tab_show_the_domain_and_its_tasks(baba_repo: tuple[Path, str]) -> None:
    repo, _ = baba_repo
    train_ids = {t.task_id for t in get_domain("babaisai").tasks("train", 0)}
    app = make_app(repo)
    async with app.run_test(size=SIZE) as pilot:
        main_screen = await ready(pilot)
        assert app.run_info is not None and app.run_info.domain == "babaisai"
        assert "babaisai" in str(main_screen.query_one("#hdr-top").render())
        from textual.widgets import DataTable, TabbedContent

        for design_id in ("d001", "d002"):  # the seeds: no memory and trajectory retrieval
            main_screen.go_to_design(design_id)
            await wait_until(pilot, lambda d=design_id: main_screen.detail_for == d)
            await pilot.press("4")
            assert main_screen.query_one(TabbedContent).active == "evaluation"
            table = main_screen.query_one("#eval-table", DataTable)
            await wait_until(pilot, lambda t=table: t.row_count == 3)  # --deployment 3
            rows = {str(key.value) for key in table.rows}
            assert rows <= train_ids, rows  # Baba Is AI levels of the search split, one row each
            first = [str(c) for c in table.get_row_at(0)]
            assert any(c.startswith(("✓", "✗")) for c in first)  # per-run outcome and steps
