"""The user settings file ~/.config/alma-tui/config.toml: the flags' keys plus [keymap] and theme.

Its place comes from platformdirs (XDG_CONFIG_HOME on Linux); ALMA_TUI_CONFIG_FILE names
another file. It gives a user's defaults for new searches; the repo's stored settings, a
--config file, ALMA_TUI_* variables and flags all override it; every bad entry is one line.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from alma_tui import cli
from alma_tui.cli import build_parser, main
from alma_tui.engine.config import SearchConfig, user_config_path


def _resolve(argv: list[str]) -> Any:
    return cli.settings_from_args(build_parser().parse_args(["run", *argv]))


@pytest.fixture
def user_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The platform's place for it, under a temporary XDG_CONFIG_HOME."""
    monkeypatch.delenv("ALMA_TUI_CONFIG_FILE", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    path = tmp_path / "xdg" / "alma-tui" / "config.toml"
    path.parent.mkdir(parents=True)
    return path


def test_the_file_lives_where_the_platform_keeps_settings(user_file: Path, monkeypatch) -> None:
    assert user_config_path() == user_file
    monkeypatch.setenv("ALMA_TUI_CONFIG_FILE", "/elsewhere/alma.toml")
    assert user_config_path() == Path("/elsewhere/alma.toml")
    monkeypatch.setenv("ALMA_TUI_CONFIG_FILE", "none")
    assert user_config_path() is None


def test_user_defaults_apply_to_a_new_search_and_everything_else_overrides_them(
    user_file: Path, tmp_path: Path, monkeypatch
) -> None:
    user_file.write_text('agent-model = "offline/agent"\nruns = 5\nllm_timeout = 50\nselection = "greedy"\n')
    r = _resolve(["--repo", str(tmp_path / "new")])
    assert (r.config.eval.runs, r.config.llm_timeout_s, r.config.selection) == (5, 50.0, "greedy")
    assert r.origin["llm_timeout_s"] == f"{user_file}: llm_timeout"
    monkeypatch.setenv("ALMA_TUI_LLM_TIMEOUT", "60")
    r = _resolve(["--repo", str(tmp_path / "new"), "--runs", "2"])
    assert (r.config.eval.runs, r.config.llm_timeout_s, r.config.selection) == (2, 60.0, "greedy")


def test_a_resume_keeps_the_repos_settings_over_the_user_file(user_file: Path, tmp_path: Path) -> None:
    repo = tmp_path / "old"
    db = repo / ".alma" / "alma.db"
    db.parent.mkdir(parents=True)
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE run (id INTEGER PRIMARY KEY, settings_json TEXT)")
    con.execute("INSERT INTO run (settings_json) VALUES (?)", (SearchConfig(repo=repo, seed=3).to_json(),))
    con.commit()
    con.close()
    user_file.write_text("seed = 9\nruns = 5\n")
    r = _resolve(["--repo", str(repo)])
    assert (r.config.seed, r.config.eval.runs) == (3, 3)  # stored: no "would make scores incomparable"
    assert "seed" not in r.origin


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("colection = 4\n", "unknown setting 'colection'"),
        ("runs = 0\n", "config.toml: runs: input should be greater than or equal to 1"),
        ("runs = \n", "is not valid TOML"),
    ],
)
def test_a_bad_search_setting_in_the_user_file_is_one_line(
    user_file: Path, tmp_path: Path, capsys, text: str, expected: str
) -> None:
    user_file.write_text(text)
    assert main(["run", "--headless", "--repo", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err, err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[keymap]\n"alma.pinn" = "P"\n', "[keymap]: unknown key binding id 'alma.pinn'"),
        ('[keymap]\n"alma.pin" = "ctrl p"\n', "is not a key"),
        ('keymap = "P"\n', "keymap must be a table"),
        ('theme = "solarised"\n', "theme 'solarised' is not one of"),
    ],
)
def test_a_bad_keymap_or_theme_is_one_line_before_the_app_starts(
    user_file: Path, tmp_path: Path, capsys, monkeypatch, text: str, expected: str
) -> None:
    from alma_tui.tui import app as app_module

    make_repo = tmp_path / "r" / ".alma"
    make_repo.mkdir(parents=True)
    (make_repo / "alma.db").write_bytes(b"")
    monkeypatch.setattr(app_module, "run_tui", lambda *a, **kw: pytest.fail("the app started"))
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    user_file.write_text(text)
    assert main(["watch", "--repo", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err, err


def test_keymap_and_theme_reach_the_app(user_file: Path, tmp_path: Path, monkeypatch) -> None:
    from alma_tui.tui import app as app_module

    (tmp_path / "r" / ".alma").mkdir(parents=True)
    (tmp_path / "r" / ".alma" / "alma.db").write_bytes(b"")
    user_file.write_text('theme = "nord"\n[keymap]\n"alma.pin" = "P"\n"alma.quit" = "ctrl+q"\n')
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(app_module, "run_tui", lambda *a, **kw: calls.append(kw) or 0)
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    assert main(["watch", "--repo", str(tmp_path / "r")]) == 0
    assert calls == [{"engine_argv": None, "keymap": {"alma.pin": "P", "alma.quit": "ctrl+q"}, "theme": "nord"}]
