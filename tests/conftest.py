"""Shared fixtures: a tiny, fast search configuration on the offline models."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from alma_tui import offline

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
# a developer's own ~/.config/alma-tui/config.toml must not change what the tests run with
# (tests/test_user_config.py points this at files of its own)
os.environ["ALMA_TUI_CONFIG_FILE"] = "none"

# The CLI registers the offline models with the model client at start; tests that build a
# Search or an LLMClient directly need the same registration (alma_tui.llm.providers).
offline.install()

TINY = ["--collection", "4", "--deployment", "4", "--runs", "2", "--concurrency", "2"]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return tmp_path / "designs_repo"
