"""Import hygiene: the layering contracts hold, and start-up stays light.

The contracts live in pyproject.toml ([tool.importlinter]); running them here makes the
test suite (and so CI) fail on a new cycle or a forbidden import. The runtime checks
below cover what a static graph cannot: which modules a fresh interpreter actually
loads before the TUI's first frame, and that the engine and the offline models run
without Textual.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tui_fixture import make_fixture_repo

ROOT = Path(__file__).resolve().parent.parent

#: never needed to paint the TUI's first frame (each costs 0.1-5 s, or is the engine's)
HEAVY_AT_START = (
    "litellm",
    "sqlmodel",
    "sqlalchemy",
    "git",
    "numpy",
    "alma_tui.engine",
    "alma_tui.llm.client",
    "alma_tui.sandbox",
    "alma_tui.offline.meta",
    "alma_tui.offline.policy",
    "alma_tui.offline.mechanisms",
)


def _loaded(modules: list[str], names: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in names))


def _python(code: str, *args: str) -> str:
    cp = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert cp.returncode == 0, cp.stderr[-3000:]
    return cp.stdout.strip().splitlines()[-1]


LINT_IMPORTS = "from importlinter.cli import lint_imports_command; lint_imports_command()"  # `lint-imports`


def test_import_contracts_hold() -> None:
    cp = subprocess.run(
        [sys.executable, "-c", LINT_IMPORTS, "--no-cache"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert cp.returncode == 0, cp.stdout[-4000:] + cp.stderr[-2000:]
    assert "0 broken" in cp.stdout


FIRST_FRAME = r"""
import json, sys
from pathlib import Path
import alma_tui.cli
from alma_tui import offline
from alma_tui.tui.app import AlmaApp

offline.install()  # what cli.main() does before it starts the TUI
seen = {}

class FirstFrame(AlmaApp):
    CSS_PATH = str(Path(sys.modules["alma_tui.tui.app"].__file__).with_name("app.tcss"))  # -c has no file

    def _after_first_frame(self):
        seen["modules"] = sorted(sys.modules)
        self.exit()

FirstFrame(Path(sys.argv[1]), deterministic=True).run(headless=True, size=(120, 40))
print(json.dumps(seen.get("modules", [])))
"""


def test_tui_first_frame_loads_nothing_heavy(tmp_path: Path) -> None:
    """The CLI's start plus the TUI's first frame: no store ORM, no litellm, no git, no engine,
    no offline agent (registering the offline provider only records a factory)."""
    repo = make_fixture_repo(tmp_path / "designs_repo", git=False)
    modules = json.loads(_python(FIRST_FRAME, str(repo)))
    assert "alma_tui.tui.screens.main" in modules  # the frame was painted
    assert "alma_tui.offline.provider" in modules and "alma_tui.llm.providers" in modules
    assert _loaded(modules, HEAVY_AT_START) == []


def test_engine_and_offline_models_run_without_textual() -> None:
    code = (
        "import sys, json\n"
        "import alma_tui.engine.search, alma_tui.engine.meta_agent, alma_tui.offline.meta, alma_tui.offline.policy\n"
        "import alma_tui.headless, alma_tui.domains.household, alma_tui.designs\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    modules = json.loads(_python(code))
    assert _loaded(modules, ("textual", "alma_tui.tui")) == []


def test_model_client_does_not_import_the_offline_models() -> None:
    """They reach it by injection (alma_tui.llm.providers), so loading the client (and
    litellm) pulls in nothing of alma_tui.offline or the engine."""
    code = (
        "import sys, json\n"
        "from alma_tui.llm import client\n"
        "client.litellm_module()\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    modules = json.loads(_python(code))
    assert "litellm" in modules
    assert _loaded(modules, ("alma_tui.offline", "alma_tui.engine", "alma_tui.agent")) == []
