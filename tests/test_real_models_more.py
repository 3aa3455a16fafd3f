"""More of the real-model path over HTTP (tests/openai_stub.py): the analysis text fallback,
cached-token accounting, concurrent children, provenance and seed designs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from alma_tui.store import Store
from tests.openai_stub import DESIGN_CODE, MARKER, StubServer, fenced
from tests.test_real_models import KEY, calls, git, run
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


def test_concurrent_children_charge_their_own_design_and_commit_in_order(repo: Path, server: StubServer) -> None:
    from alma_tui.agent.prompt import AGENT_PROMPT_VERSION
    from alma_tui.engine.prompts import PROMPT_VERSION
    from alma_tui.llm.accounting import design_totals, run_totals

    # two different children (identical code would be a duplicate, rightly not evaluated twice)
    server.script("write", fenced(DESIGN_CODE), fenced(DESIGN_CODE.replace("[:20]", "[:10]")))
    assert run(repo, server, "--parents", "2") == 0  # two children, run at once by default
    store = Store(repo, create=False)
    children = [d for d in store.designs() if d.iteration == 1]
    assert [d.id for d in children] == ["d003", "d004"] and all(d.status == "accepted" for d in children), [
        (d.status, d.error) for d in children
    ]
    events = store.events_after(0)
    pos = {(e.kind, e.design_id): i for i, e in enumerate(events)}
    # both evaluations were in flight together, and their commits came in the children's order
    assert max(pos["design.evaluating", "d003"], pos["design.evaluating", "d004"]) < min(
        pos["evaluation.done", "d003"], pos["evaluation.done", "d004"]
    )
    assert pos["design.accepted", "d003"] < pos["design.accepted", "d004"]
    assert git(repo, "log", "-1", "--format=%s", "design/d004").startswith("d004")
    # every call belongs to a design, and the designs' totals are the run's
    rows = calls(repo)
    assert rows and all(r.design_id for r in rows)
    per, total = design_totals(store), run_totals(store)
    for key in ("calls", "prompt_tokens", "completion_tokens", "cached_tokens"):
        assert sum(t[key] for t in per.values()) == total[key]
    assert abs(sum(t["cost_usd"] for t in per.values()) - total["cost_usd"]) < 1e-9
    for d in children:
        assert per[d.id]["by_role"]["agent"]["calls"] > 0 and per[d.id]["by_role"]["meta"]["calls"] == 2
    # provenance: the task and the prompt version of each call
    assert {r.task for r in rows if r.role == "agent"} == {"act"}
    assert {r.prompt_version for r in rows if r.role == "agent"} == {AGENT_PROMPT_VERSION}
    assert sorted(r.task for r in rows if r.role == "meta") == ["analyze", "analyze", "write", "write"]
    assert {r.prompt_version for r in rows if r.role == "meta"} == {PROMPT_VERSION}
    # the second analysis shared the first one's stable prefix: the server read it from its cache
    first, second = sorted((r for r in rows if r.task == "analyze"), key=lambda r: r.cached_tokens)
    assert first.cached_tokens == 0 < second.cached_tokens < second.prompt_tokens
    assert 0 < total["cache_hit_rate"] < 1


def test_cached_prompt_tokens_are_counted_and_priced_lower(server: StubServer) -> None:
    from alma_tui.llm.client import LLMClient, litellm_module

    model = "openai/stub-cached"
    litellm_module().register_model(
        {
            model: {
                "input_cost_per_token": 1e-6,
                "output_cost_per_token": 1e-6,
                "cache_read_input_token_cost": 1e-7,
                "litellm_provider": "openai",
                "mode": "chat",
            }
        }
    )
    rows: list[dict] = []
    llm = LLMClient(record=rows.append, api_base=server.base_url, timeout_s=5)
    stable = "You are a careful agent. " * 400  # ~2,500 tokens the provider can cache
    for question in ("first question", "second question"):
        llm.complete(
            [{"role": "system", "content": stable}, {"role": "user", "content": question}], model=model, role="agent"
        )
    first, second = rows
    assert first["cached_tokens"] == 0 and second["cached_tokens"] >= 1024
    assert second["prompt_tokens"] == first["prompt_tokens"]
    uncached = second["prompt_tokens"] - second["cached_tokens"]
    expected = uncached * 1e-6 + second["cached_tokens"] * 1e-7 + second["completion_tokens"] * 1e-6
    assert abs(second["cost_usd"] - expected) < 1e-9 and second["cost_usd"] < first["cost_usd"]
    status = llm.budget_status()
    assert status["cached_tokens"] == second["cached_tokens"] and 0 < status["cache_hit_rate"] < 0.5


def test_cache_markers_only_for_providers_that_want_them() -> None:
    from alma_tui.llm.client import LLMClient, litellm_module

    llm = LLMClient()
    msgs = [
        {"role": "system", "content": "instructions"},
        {"role": "user", "content": "stable part"},
        {"role": "user", "content": "variable part"},
    ]
    marked = llm._cache_marked(litellm_module(), "anthropic/claude-haiku-4-5", msgs)
    for m in marked[:2]:
        assert m["content"] == [
            {"type": "text", "text": m["content"][0]["text"], "cache_control": {"type": "ephemeral"}}
        ]
    assert marked[2] == msgs[2] and [m["content"][0]["text"] for m in marked[:2]] == ["instructions", "stable part"]
    assert llm._cache_marked(litellm_module(), "openai/gpt-5-nano", msgs) == msgs  # OpenAI caches by itself
    assert llm._cache_marked(litellm_module(), "ollama/qwen3:8b", msgs) == msgs


def _offline(repo: Path, *extra: str) -> int:
    from alma_tui.cli import main

    small = ["--collection", "3", "--deployment", "3", "--runs", "1", "--concurrency", "2"]
    return main(["run", "--headless", "--repo", str(repo), "--iterations", "0", *small, *extra])


def test_seed_designs_join_a_new_archive_after_validation(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.openai_stub import BROKEN_CODE, DESIGN_CODE

    good, broken = tmp_path / "routes.py", tmp_path / "broken.py"
    good.write_text(DESIGN_CODE)
    broken.write_text(BROKEN_CODE)
    # a seed that fails in the sandbox: one line naming it, nothing added to the archive
    assert _offline(repo, "--seed-design", str(good), "--seed-design", str(broken)) == 1
    err = capsys.readouterr()
    line = [ln for ln in (err.out + err.err).splitlines() if "failed validation" in ln]
    assert line and str(broken) in line[-1] and "broken on purpose" in line[-1]
    assert Store(repo, create=False).designs() == []
    # the good one alone: evaluated and committed beside the built-in seeds
    assert _offline(repo, "--seed-design", str(good)) == 0
    store = Store(repo, create=False)
    user = [d for d in store.designs() if d.origin == "user"]
    assert len(user) == 1 and user[0].status == "accepted" and user[0].code == DESIGN_CODE
    assert MARKER in git(repo, "show", f"design/{user[0].id}:design.py")
    # resuming with the same flag is fine; a new seed on an existing archive is refused in one line
    assert _offline(repo, "--seed-design", str(good)) == 0
    other = tmp_path / "other.py"
    other.write_text(DESIGN_CODE.replace("[:20]", "[:10]"))
    assert _offline(repo, "--seed-design", str(other)) == 1
    assert "seed designs join a search when it starts" in capsys.readouterr().out.replace("\n", " ")
