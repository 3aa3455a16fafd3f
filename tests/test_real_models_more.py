"""More of the real-model path over HTTP (tests/openai_stub.py): the analysis text fallback,
cached-token accounting, concurrent children, provenance and seed designs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from alma_tui.store import Store
from tests.openai_stub import MARKER, StubServer
from tests.test_real_models import KEY, git, run
from tests.test_real_models import prices as prices  # the stub models' prices (autouse fixture)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with StubServer() as s:
        yield s


PROSE_ANALYSIS = """## What I see

The parent stores nothing, so every deployment episode starts blind and repeats searches.

Suggestion (most important): store the successful action sequence per goal and return it.
"""


def test_unparseable_analysis_falls_back_to_its_text_and_still_commits_a_child(repo: Path, server: StubServer) -> None:
    server.script("analyze", PROSE_ANALYSIS, PROSE_ANALYSIS, PROSE_ANALYSIS)  # no JSON, three times
    assert run(repo, server) == 0
    store = Store(repo, create=False)
    child = store.get_design("d003")
    assert child is not None and child.status == "accepted", (child.status, child.error)
    assert server.kinds().count("analyze") == 3  # the retries were spent first
    analysis = json.loads(child.analysis_json or "{}")
    assert analysis["unstructured"] is True and "store the successful action sequence" in analysis["text"]
    assert child.analysis_raw == PROSE_ANALYSIS  # stored as the model wrote it
    # the write prompt carried the prose, and the lineage says what happened
    write = next(r for r in server.requests if r.kind == "write")
    assert "repeats searches" in write.body["messages"][-1]["content"] or any(
        "repeats searches" in json.dumps(m) for m in write.body["messages"]
    )
    md = git(repo, "show", "design/d003:ANALYSIS.md")
    assert md.startswith("# Analysis (unstructured)") and "repeats searches" in md
    assert MARKER in git(repo, "show", "design/d003:design.py")
    events = [e for e in store.events_after(0) if e.kind == "design.analysis_unstructured"]
    assert len(events) == 1 and "\n" not in events[0].message and "not valid JSON for the schema" in events[0].message
