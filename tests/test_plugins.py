"""Domains as plug-ins: a real package with an ``alma_tui.domains`` entry point, installed
with pip into a temporary directory (its metadata on the path), listed, evaluated and
searched on; broken plug-ins are one line each and never hide the others."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from alma_tui.cli import main
from alma_tui.domains import DomainError, get_domain, is_file_ref, normalise_ref
from tests.conftest import TINY

EVAL = ["--collection", "4", "--deployment", "4", "--runs", "2"]
FIXTURE = Path(__file__).parent / "fixtures" / "tiny_domain"


@pytest.fixture(scope="session")
def plugin_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pip-install the fixture package into a fresh directory (once per session)."""
    root = tmp_path_factory.mktemp("plugin")
    src = root / "src"
    shutil.copytree(FIXTURE, src)  # setuptools writes build files next to the sources
    target = root / "site"
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(src)]
    if all(importlib.util.find_spec(m) is not None for m in ("setuptools", "wheel")):
        cmd.insert(4, "--no-build-isolation")  # no index needed: the venv's own backend builds it
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    assert list(target.glob("tiny_lockers-*.dist-info/entry_points.txt"))
    return target


def cli(plugin_path: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin_path), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-m", "alma_tui", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300
    )


def test_domains_lists_plugins_from_metadata_without_importing_them(plugin_path: Path) -> None:
    cp = cli(plugin_path, "domains")
    assert cp.returncode == 0, cp.stderr
    rows = {line.split()[0]: line for line in cp.stdout.splitlines()}
    assert "[ready]" in rows["household"]
    assert "tiny-lockers 0.1.0" in rows["lockers"] and "[ready]" in rows["lockers"]
    assert "broken: module 'tiny_lockers_ghost' is not installed" in rows["ghost"]
    code = (
        "import sys; from alma_tui.domains import list_domains; rows = list_domains(); "
        "bad = [m for m in sys.modules if m.startswith(('tiny_lockers', 'alma_tui.domains.textworld', 'textworld'))]; "
        "print(len(rows), bad)"
    )
    env = {**os.environ, "PYTHONPATH": str(plugin_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.stdout.split(maxsplit=1)[1].strip() == "[]", out.stdout + out.stderr


@pytest.fixture
def installed(plugin_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The plug-in on this process's path (entry points are read from sys.path at each call)."""
    monkeypatch.syspath_prepend(str(plugin_path))
    return plugin_path


def test_eval_and_a_one_iteration_search_on_a_plugin_domain(
    installed: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", "trajectory_retrieval", "--domain", "lockers", "--json", *EVAL]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["domain"] == "lockers" and 0.0 <= out["score"] <= 1.0
    assert all(t.startswith("lockers-1") for t in out["per_task"])  # the test split's tasks
    repo = tmp_path / "repo"
    assert main(["run", "--headless", "--domain", "lockers", "--iterations", "1", "--repo", str(repo), *TINY]) == 0
    assert "lockers" in capsys.readouterr().out  # the headless output names the domain
    assert main(["designs", "--repo", str(repo), "--json"]) == 0
    designs = json.loads(capsys.readouterr().out)
    assert any(d["status"] == "accepted" and d["score"] is not None for d in designs)
    assert any(d["parent"] is not None for d in designs)  # the iteration made a child


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("notadomain", "plug-in 'notadomain' (tiny_lockers:NotADomain from tiny-lockers 0.1.0) is not a domain"),
        ("ghost", "plug-in 'ghost' (tiny_lockers_ghost:GhostDomain from tiny-lockers 0.1.0) is broken: module"),
    ],
)
def test_a_broken_plugin_is_one_line_naming_it(
    installed: Path, name: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", "no_memory", "--domain", name, *EVAL]) == 1
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and expected in lines[0] and "Traceback" not in err, err
    if name == "notadomain":
        assert "attribute instructions" in lines[0] and "method tasks()" in lines[0]


def test_a_domain_in_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "lockers.py"
    shutil.copy(FIXTURE / "tiny_lockers" / "__init__.py", path)
    monkeypatch.chdir(tmp_path)
    assert is_file_ref("lockers.py:LockerDomain") and not is_file_ref("household")
    assert normalise_ref("lockers.py:LockerDomain") == f"{path.resolve()}:LockerDomain"
    domain = get_domain("lockers.py:LockerDomain")
    task = domain.tasks("test", 0, 2)[0]
    env = domain.make_env(task)
    assert "coin" in env.reset() and env.admissible_actions()[0] == "open locker 1"
    with pytest.raises(DomainError, match=r"lockers\.py is not a domain: missing or wrong attribute instructions"):
        get_domain("lockers.py:NotADomain")
    with pytest.raises(DomainError, match="has no 'Nope'"):
        get_domain("lockers.py:Nope")
    with pytest.raises(DomainError, match="no such file"):
        get_domain("missing.py:X")
    (tmp_path / "bad.py").write_text("import nosuchmodule_xyz\n")
    with pytest.raises(DomainError, match=r"bad\.py failed to import: ModuleNotFoundError"):
        get_domain("bad.py:X")


def test_the_readme_example_is_the_tested_plugin() -> None:
    """README "Writing a domain" shows exactly the domain these tests install and run."""
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    section = readme.split("## Writing a domain", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert code == (FIXTURE / "tiny_lockers" / "__init__.py").read_text()
    toml = section.split("```toml\n", 1)[1].split("```", 1)[0]
    assert 'lockers = "tiny_lockers:LockerDomain"' in toml and '[project.entry-points."alma_tui.domains"]' in toml
