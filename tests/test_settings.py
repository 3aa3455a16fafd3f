"""Settings: every `run` flag reaches the engine, headless and under the TUI; sources and precedence."""

from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from alma_tui import cli
from alma_tui.cli import build_parser, main

#: `run` options that are not settings: the mode, a source of settings, and the TUI->engine transport
NOT_SETTINGS = {"-h", "--headless", "--config", "--settings-json"}


def _run_actions() -> list[argparse.Action]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    run = sub.choices["run"]
    return [a for a in run._actions if a.option_strings and not set(a.option_strings) & NOT_SETTINGS]


def _flat(cfg: Any, prefix: str = "") -> dict[str, Any]:
    """Every leaf of the settings the engine would run with (nested sections included)."""
    dump = getattr(cfg, "to_engine_json", None) or cfg.to_json
    data = json.loads(dump())

    def walk(d: dict[str, Any], pre: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(walk(v, f"{pre}{k}.") if isinstance(v, dict) else {f"{pre}{k}": v})
        return out

    return walk(data, prefix)


@pytest.fixture
def engine_capture(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Run `main` up to the engine: captures the settings `run_headless` (hence `Search`) receives and
    the argv the TUI would start `python -m alma_tui` with; no model, domain or terminal checks."""
    import alma_tui.domains
    import alma_tui.tui.app

    seen: dict[str, Any] = {}
    monkeypatch.setattr(cli, "run_headless", lambda cfg, quiet=False: seen.setdefault("cfg", cfg) and 0)
    monkeypatch.setattr(cli, "_check_models", lambda cfg, strict=True: None)
    monkeypatch.setattr(alma_tui.domains, "get_domain", lambda name: object())
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)

    def fake_run_tui(repo: Path, engine_argv: list[str] | None = None, continue_flags: list[str] = ()) -> int:
        seen["engine_argv"] = engine_argv
        seen["continue_flags"] = list(continue_flags)
        return 0

    monkeypatch.setattr(alma_tui.tui.app, "run_tui", fake_run_tui)
    return seen


def engine_settings(argv: list[str], seen: dict[str, Any], *, tui: bool) -> Any:
    """The settings the engine searches with for `alma-tui run ARGV` (headless or under the TUI)."""
    seen.clear()
    if not tui:
        assert main(["run", "--headless", *argv]) == 0
        return seen["cfg"]
    assert main(["run", *argv]) == 0
    engine_argv = seen["engine_argv"]
    assert engine_argv is not None and "cfg" not in seen  # the TUI starts an engine, runs no search itself
    assert main(engine_argv) == 0  # exactly what the engine process does: `python -m alma_tui ARGV`
    return seen["cfg"]


def _value_for(action: argparse.Action, tmp_path: Path, baseline: dict[str, Any]) -> list[str]:
    """Arguments giving ``action`` a valid value that differs from the default."""
    flag = action.option_strings[-1]
    if action.nargs == 0:  # store_true
        return [flag]
    if isinstance(action, argparse._AppendAction):  # a repeatable file flag (--seed-design)
        f = tmp_path / f"{action.dest}.py"
        f.write_text("")
        return [flag, str(f.resolve())]
    if action.choices:
        return [flag, str(list(action.choices)[-1])]  # the last choice is never the default
    if action.type is Path:
        return [flag, str(tmp_path / f"r-{action.dest}")]
    if action.type is None:  # free text: a file for *_file settings, else a recognisable string
        if action.dest.endswith("_file"):
            f = tmp_path / f"{action.dest}.env"
            f.write_text("")
            return [flag, str(f.resolve())]
        return [flag, f"x-{action.dest}"]
    for text in ("7", "3", "1", "0.5"):  # numbers: the first the flag accepts that is not a default
        try:
            value = action.type(text)
        except argparse.ArgumentTypeError:
            continue
        if value not in baseline.values():
            return [flag, text]
    raise AssertionError(f"no valid non-default value for {flag}")


RUN_FLAGS = [a.option_strings[-1] for a in _run_actions()]


@pytest.mark.parametrize("mode", ["headless", "tui"])
@pytest.mark.parametrize("flag", RUN_FLAGS)
def test_every_run_flag_reaches_the_engine(
    flag: str, mode: str, tmp_path: Path, engine_capture: dict[str, Any]
) -> None:
    repo = ["--repo", str(tmp_path / "r")]
    baseline = _flat(engine_settings(repo, engine_capture, tui=False))
    action = next(a for a in _run_actions() if a.option_strings[-1] == flag)
    args = _value_for(action, tmp_path, baseline)
    argv = args if flag == "--repo" else [*repo, *args]
    got = _flat(engine_settings(argv, engine_capture, tui=mode == "tui"))
    changed = {k: v for k, v in got.items() if baseline.get(k) != v}
    given = True if len(args) == 1 else (action.type or str)(args[1])
    if isinstance(action, argparse._AppendAction):
        given = [given]
    given = str(given) if isinstance(given, Path) else given
    assert given in changed.values(), f"{' '.join(args)} did not reach the {mode} engine: changed {changed}"
    if mode == "tui":  # and the TUI's engine runs with exactly what a headless run would
        assert got == _flat(engine_settings(argv, engine_capture, tui=False))


@pytest.mark.parametrize("mode", ["headless", "tui"])
def test_protocol_sequential_reaches_the_engine(mode: str, tmp_path: Path, engine_capture: dict[str, Any]) -> None:
    """The drift that started this: `run --protocol sequential` under the TUI searched batched."""
    cfg = engine_settings(
        ["--repo", str(tmp_path / "r"), "--protocol", "sequential"], engine_capture, tui=mode == "tui"
    )
    assert cfg.eval.protocol == "sequential"


def test_all_run_flags_at_once_give_the_same_engine_settings(tmp_path: Path, engine_capture: dict[str, Any]) -> None:
    baseline = _flat(engine_settings(["--repo", str(tmp_path / "r")], engine_capture, tui=False))
    argv = ["--repo", str(tmp_path / "r")]
    for action in _run_actions():
        if action.option_strings[-1] != "--repo":
            argv += _value_for(action, tmp_path, baseline)
    headless = engine_settings(argv, engine_capture, tui=False)
    tui = engine_settings(argv, engine_capture, tui=True)
    assert headless.model_dump() == tui.model_dump()
    assert headless.eval.protocol == "sequential" and headless.skip_model_check and headless.allow_weak_sandbox


def test_every_setting_has_a_flag_or_is_internal_on_purpose() -> None:
    from alma_tui.engine.config import FLAGS, INTERNAL, leaf_paths

    flagged = [f.path for f in FLAGS]
    assert len(set(flagged)) == len(flagged)
    assert sorted(leaf_paths()) == sorted([*flagged, *INTERNAL])
    assert {a.option_strings[-1] for a in _run_actions()} == {f.flag for f in FLAGS}


# -- sources and precedence -----------------------------------------------------------------------
def _store_settings(repo: Path, settings: dict[str, Any]) -> None:
    """A repo whose run was created with ``settings`` (just the row `run` reads them from)."""
    from alma_tui.engine.config import SearchConfig

    db = repo / ".alma" / "alma.db"
    db.parent.mkdir(parents=True)
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE run (id INTEGER PRIMARY KEY, settings_json TEXT)")
    con.execute("INSERT INTO run (settings_json) VALUES (?)", (SearchConfig(repo=repo, **settings).to_json(),))
    con.commit()
    con.close()


def _resolve(argv: list[str]) -> Any:
    return cli.settings_from_args(build_parser().parse_args(["run", *argv]))


def test_precedence_flags_env_file_stored_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "r"
    _store_settings(repo, {"budget_usd": 1.0, "llm_retries": 1, "max_concurrent_llm": 2, "llm_timeout_s": 10.0})
    conf = tmp_path / "alma.toml"
    conf.write_text('llm-retries = 2\nmax_concurrent_llm = 3\nllm-timeout = 20\nenv-file = "keys.env"\n')
    monkeypatch.setenv("ALMA_TUI_MAX_CONCURRENT_LLM", "4")
    monkeypatch.setenv("ALMA_TUI_LLM_TIMEOUT", "30")
    monkeypatch.setenv("ALMA_TUI_KEYMAP", "not a setting")  # other ALMA_TUI_ variables are left alone
    r = _resolve(["--repo", str(repo), "--config", str(conf), "--llm-timeout", "40"])
    cfg = r.config
    assert (cfg.budget_usd, cfg.llm_retries, cfg.max_concurrent_llm, cfg.llm_timeout_s) == (1.0, 2, 4, 40.0)
    assert cfg.meta_temperature is None and cfg.seed == 0  # defaults
    assert cfg.env_file == str(tmp_path / "keys.env")  # relative to the settings file
    assert r.origin["llm_retries"] == f"{conf}: llm-retries"
    assert r.origin["max_concurrent_llm"] == "ALMA_TUI_MAX_CONCURRENT_LLM"
    assert r.origin["llm_timeout_s"] == "--llm-timeout"
    assert r.stored is not None and r.stored.llm_timeout_s == 10.0


def test_bad_settings_from_env_or_file_are_one_line_naming_the_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = ["--repo", str(tmp_path / "r")]
    monkeypatch.setenv("ALMA_TUI_PROTOCOL", "continual")
    assert main(["run", "--headless", *repo]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "ALMA_TUI_PROTOCOL" in err and "'batched' or 'sequential'" in err
    monkeypatch.delenv("ALMA_TUI_PROTOCOL")
    conf = tmp_path / "c.toml"
    for text, expected in (
        ("runs = 0\n", "c.toml: runs: input should be greater than or equal to 1"),
        ("colection = 4\n", "unknown setting 'colection'"),
        ("runs = \n", "not valid TOML"),
    ):
        conf.write_text(text)
        assert main(["run", "--headless", *repo, "--config", str(conf)]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and expected in err, err
    assert main(["run", "--headless", *repo, "--config", str(tmp_path / "missing.toml")]) == 1
    assert "cannot read the settings file" in capsys.readouterr().err


def test_resume_refusal_names_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "r"
    _store_settings(repo, {})
    monkeypatch.setenv("ALMA_TUI_SEED", "3")
    with pytest.raises(cli.CliError, match=r"--seed 0; changing it to 3 \(from ALMA_TUI_SEED\).*incomparable"):
        cli.config_from_args(build_parser().parse_args(["run", "--repo", str(repo)]))


def test_a_resume_keeps_the_stored_settings_but_not_one_start_flags(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    _store_settings(repo, {"eval": {"protocol": "sequential", "runs": 2}, "allow_weak_sandbox": True})
    first = _resolve(["--repo", str(repo), "--skip-model-check"]).config
    assert first.skip_model_check and "skip_model_check" not in json.loads(first.to_json())
    cfg = _resolve(["--repo", str(repo)]).config
    assert cfg.eval.protocol == "sequential" and cfg.eval.runs == 2
    assert not cfg.skip_model_check
    assert not cfg.allow_weak_sandbox  # running without OS isolation is decided at each start


def test_one_start_flags_are_passed_on_to_the_apps_continue(tmp_path: Path, engine_capture: dict[str, Any]) -> None:
    """The app's "continue" starts a new engine: without this start's one-time flags a search
    started with --allow-weak-sandbox could not go on."""
    from alma_tui.engine.config import transient_flags

    engine_settings(["--repo", str(tmp_path / "t"), "--allow-weak-sandbox"], engine_capture, tui=True)
    assert engine_capture["continue_flags"] == ["--allow-weak-sandbox"]  # `alma-tui run` hands them to the app

    repo = tmp_path / "r"
    plain = _resolve(["--repo", str(repo)]).config
    assert transient_flags(plain) == []
    cfg = _resolve(["--repo", str(repo), "--skip-model-check", "--allow-weak-sandbox"]).config
    flags = transient_flags(cfg)
    assert flags == ["--skip-model-check", "--allow-weak-sandbox"]
    # and they parse back to the same one-time settings
    again = _resolve(["--repo", str(repo), *flags]).config
    assert again.skip_model_check and again.allow_weak_sandbox


def test_eval_reads_only_the_settings_it_uses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from alma_tui.engine.config import EVAL_PATHS

    _store_settings(tmp_path / "r", {"eval": {"runs": 5}})  # eval never takes a run's settings
    monkeypatch.setenv("ALMA_TUI_RUNS", "2")
    monkeypatch.setenv("ALMA_TUI_META_MODEL", "openai/not-used-by-eval")
    args = build_parser().parse_args(["eval", "no_memory", "--repo", str(tmp_path / "r"), "--seed", "4"])
    cfg = cli.settings_from_args(args, EVAL_PATHS).config
    assert (cfg.eval.runs, cfg.seed, cfg.eval.seed, cfg.meta_model) == (2, 4, 4, "offline/meta")


def test_other_commands_do_not_load_the_settings_model() -> None:
    """`alma-tui --help`, `designs`, `pin`... build a parser without the run/eval flags (no pydantic)."""
    code = (
        "import sys, alma_tui.cli as c\n"
        "for cmd in ('-h', 'designs', 'watch', 'pin'): c.build_parser(cmd)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pydantic', 'litellm', 'sqlmodel', 'textual')))\n"
    )
    cp = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout.strip() == "[]"
