"""The command line: one clear line on bad input, never a traceback; the JSON contract."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from alma_tui.cli import main
from tests.conftest import TINY


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "alma_tui", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=120,
    )


def one_line_error(cp: subprocess.CompletedProcess, code: int = 1) -> str:
    assert cp.returncode == code, cp.stderr
    assert "Traceback" not in cp.stderr
    lines = [ln for ln in cp.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, cp.stderr
    return lines[0]


def test_help_is_fast_and_lists_commands() -> None:
    cp = run_cli("--help")
    assert cp.returncode == 0
    for cmd in ("run", "watch", "eval", "designs", "pin", "veto", "domains", "baselines"):
        assert cmd in cp.stdout


def test_unknown_domain(tmp_path: Path) -> None:
    line = one_line_error(run_cli("run", "--headless", "--repo", str(tmp_path / "r"), "--domain", "chess"))
    assert "chess" in line and "household" in line


def test_unknown_model(tmp_path: Path) -> None:
    line = one_line_error(run_cli("run", "--headless", "--repo", str(tmp_path / "r"), "--agent-model", "nosuch/x"))
    assert "nosuch/x" in line


def test_missing_api_key(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if "OPENAI" not in k}
    cp = subprocess.run(
        [
            sys.executable,
            "-m",
            "alma_tui",
            "run",
            "--headless",
            "--repo",
            str(tmp_path / "r"),
            "--meta-model",
            "openai/gpt-5",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    line = one_line_error(cp)
    assert "OPENAI_API_KEY" in line
    assert not (tmp_path / "r").exists()  # nothing is created before the check passes


def test_unwritable_repo(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    line = one_line_error(run_cli("run", "--headless", "--repo", str(blocker / "r")))
    assert "not a directory" in line


def test_designs_outside_a_repo(tmp_path: Path) -> None:
    line = one_line_error(run_cli("designs", "--repo", str(tmp_path / "none")))
    assert "no alma-tui search" in line


def test_usage_error_exit_2() -> None:
    assert run_cli("run", "--iterations", "many").returncode == 2


def test_domains_and_baselines(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["domains"]) == 0
    assert "household" in capsys.readouterr().out
    assert main(["baselines"]) == 0
    out = capsys.readouterr().out
    assert "no_memory" in out and "trajectory_retrieval" in out


def test_designs_json_and_steering_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "r"
    assert main(["run", "--headless", "--repo", str(repo), "--iterations", "0", *TINY]) == 0
    capsys.readouterr()
    assert main(["designs", "--repo", str(repo), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in rows] == ["d001", "d002"]
    for r in rows:
        assert {"id", "parent", "title", "score", "status", "commit"} <= set(r)
        assert r["parent"] is None and r["status"] == "accepted" and len(r["commit"]) == 40
    assert main(["veto", "d999", "--repo", str(repo)]) == 1
    assert "unknown design" in capsys.readouterr().err
    assert main(["pin", "2", "--repo", str(repo)]) == 0  # a bare number resolves to d002
    assert "pin d002 recorded" in capsys.readouterr().out
    assert main(["designs", "--repo", str(repo), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[1]["pinned"] is True


def test_eval_builtin_and_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--collection", "3", "--deployment", "3", "--runs", "1", "--json", "--repo", str(tmp_path / "none")]
    assert main(["eval", "no_memory", *args]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["split"] == "test" and 0.0 <= out["score"] <= 1.0 and len(out["run_scores"]) == 1
    broken = tmp_path / "broken.py"
    broken.write_text(
        "from alma_tui.design_api import MemoryDesign\n"
        "class D(MemoryDesign):\n    def update(self, e):\n        raise ValueError('boom')\n"
    )
    assert main(["eval", str(broken), *args]) == 1
    err = capsys.readouterr().err
    assert "boom" in err and "Traceback" not in err
    assert main(["eval", "nosuch_design", *args]) == 1
    assert "unknown design" in capsys.readouterr().err


def test_corrupt_store_is_one_line(tmp_path: Path) -> None:
    store = tmp_path / "r" / ".alma" / "alma.db"
    store.parent.mkdir(parents=True)
    store.write_text("this is not sqlite")
    for args in (("run", "--headless"), ("designs",), ("pin", "d001")):
        line = one_line_error(run_cli(*args, "--repo", str(tmp_path / "r")))
        assert "not a database" in line


def test_resume_refuses_score_changing_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "r"
    assert main(["run", "--headless", "--repo", str(repo), "--iterations", "0", *TINY]) == 0
    capsys.readouterr()
    assert main(["run", "--headless", "--repo", str(repo), "--runs", "3"]) == 1
    assert "incomparable" in capsys.readouterr().err
    assert main(["stop", "--repo", str(repo)]) == 1  # no engine runs there: nothing to stop
    assert "no search is running" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:  # a budget of 0 is a usage error, refused at parse time
        main(["run", "--headless", "--repo", str(repo), "--budget-usd", "0"])
    assert exit_info.value.code == 2


def test_resuming_with_the_tui_does_not_load_the_store_first(tmp_path: Path) -> None:
    """The TUI path reads stored settings with sqlite3; SQLModel (~0.6 s) loads in the engine."""
    repo = tmp_path / "r"
    assert main(["run", "--headless", "--repo", str(repo), "--iterations", "0", *TINY]) == 0
    code = (
        "import sys, alma_tui.cli as c\n"
        f"cfg = c.config_from_args(c.build_parser().parse_args(['run', '--repo', {str(repo)!r}]))\n"
        "assert cfg.eval.n_collection == 4, cfg.eval\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sqlmodel', 'sqlalchemy', 'litellm')))\n"
    )
    cp = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout.strip() == "[]"


def test_version_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib import metadata

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"alma-tui {metadata.version('alma-tui')}"
