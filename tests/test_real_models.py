"""The whole real-model path: `alma-tui run` with litellm talking HTTP to a scripted
OpenAI-compatible server on loopback (tests/openai_stub.py). Nothing of ours is mocked."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import pytest

from alma_tui.cli import main
from alma_tui.llm.accounting import design_totals, role_totals, spend_vs_budget
from alma_tui.llm.client import litellm_module
from alma_tui.store import Store
from alma_tui.store.models import LLMCall
from tests.openai_stub import BROKEN_CODE, DESIGN_CODE, MARKER, Fail, Hang, StubServer

KEY = "sk-stub-secret-key-0123456789abcdef"
META, AGENT = "openai/stub-meta", "openai/stub-agent"
SMALL = [
    "--collection",
    "3",
    "--deployment",
    "3",
    "--runs",
    "1",
    "--iterations",
    "1",
    "--parents",
    "1",
    "--concurrency",
    "2",
]


@pytest.fixture(scope="module", autouse=True)
def prices() -> None:
    litellm_module().register_model(
        {
            META: {
                "input_cost_per_token": 2e-6,
                "output_cost_per_token": 8e-6,
                "litellm_provider": "openai",
                "mode": "chat",
            },
            AGENT: {
                "input_cost_per_token": 1e-7,
                "output_cost_per_token": 4e-7,
                "litellm_provider": "openai",
                "mode": "chat",
            },
        }
    )


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with StubServer() as s:
        yield s


def run(repo: Path, server: StubServer, *extra: str) -> int:
    return main(
        [
            "run",
            "--headless",
            "--repo",
            str(repo),
            "--meta-model",
            META,
            "--agent-model",
            AGENT,
            "--api-base",
            server.base_url,
            "--llm-timeout",
            "1.5",
            *SMALL,
            *extra,
        ]
    )


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


def calls(repo: Path) -> list[LLMCall]:
    from sqlmodel import select

    store = Store(repo, create=False)
    with store.session() as s:
        return list(s.exec(select(LLMCall)).all())


def test_search_with_real_protocol_over_http(repo: Path, server: StubServer) -> None:
    # meta: invalid JSON then a valid analysis; code without a fence that fails validation; a repair
    server.script("analyze", "I think the memory is fine. No JSON today.")
    server.script("write", "TITLE: broken routes\n\n" + BROKEN_CODE)
    server.script("repair", f"TITLE: Successful routes\n```python\n{DESIGN_CODE}```")
    # agent: a rate limit and a timeout, both retried
    server.script("agent", Fail(429, retry_after=0), Hang(3.0))
    started = time.perf_counter()
    assert run(repo, server, "--meta-reasoning", "high", "--agent-reasoning", "low", "--agent-temperature", "0.2") == 0
    wall = time.perf_counter() - started

    store = Store(repo, create=False)
    assert store.get_run().status == "done"
    child = store.get_design("d003")
    assert child is not None and child.status == "accepted" and child.repairs == 1
    assert MARKER in git(repo, "show", "design/d003:design.py")  # the server's code, committed
    assert "raise ValueError('broken on purpose')" not in child.code
    assert child.analysis_json and "successful routes" in child.analysis_json  # the retried analysis
    kinds = server.kinds()
    assert kinds.count("analyze") == 2 and kinds.count("write") == 1 and kinds.count("repair") == 1

    # what reached the server: streaming meta calls with reasoning effort, agent settings, the key
    meta_reqs = [r for r in server.requests if r.kind in ("analyze", "write", "repair")]
    assert all(r.body["stream"] and r.body["reasoning_effort"] == "high" for r in meta_reqs)
    agent_reqs = [r for r in server.requests if r.kind == "agent"]
    assert all(r.body.get("reasoning_effort") == "low" and r.body.get("temperature") == 0.2 for r in agent_reqs)
    assert all(r.body["model"] in ("stub-meta", "stub-agent") for r in server.requests)

    # every call recorded with tokens, cost and retries
    rows = calls(repo)
    assert len(rows) == len(server.requests) - 2  # the 429 and the timeout were retries, not calls
    assert all(
        r.ok and r.prompt_tokens > 0 and r.completion_tokens > 0 and r.cost_usd > 0 and r.cost_known for r in rows
    )
    assert sum(r.retries for r in rows) == 2 and sum(r.reasoning_tokens for r in rows) == 7 * len(rows)
    roles = role_totals(store)
    assert roles["meta"]["calls"] == 4 and roles["agent"]["calls"] > 20
    per = design_totals(store)
    assert set(per["d003"]["by_role"]) == {"meta", "agent"} and per["d003"]["cost_usd"] > 0
    assert per["d001"]["by_role"].keys() == {"agent"}
    spend = spend_vs_budget(store)
    assert spend["cost_usd"] == pytest.approx(sum(r.cost_usd for r in rows)) and spend["budget_usd"] is None

    # the key never reaches the store or the lineage
    db = b"".join(p.read_bytes() for p in (repo / ".alma").glob("*.db*"))
    assert KEY.encode() not in db and KEY[:20].encode() not in db
    assert KEY not in git(repo, "log", "--all", "-p")
    assert wall < 60


def test_budget_stops_cleanly_and_resumes(repo: Path, server: StubServer) -> None:
    # a budget smaller than one evaluation: the first design is not committed half-done
    assert run(repo, server, "--iterations", "0", "--budget-usd", "0.00002") == 0
    store = Store(repo, create=False)
    r = store.get_run()
    assert r.status == "budget" and "budget of $0.00" in r.status_detail
    assert store.get_design("d001").status in ("validating", "evaluating") and not git(repo, "tag")
    store.close()
    # a larger budget: the seeds complete
    assert run(repo, server, "--iterations", "0", "--budget-usd", "1") == 0
    store = Store(repo, create=False)
    assert store.get_run().status == "done"
    assert [d.status for d in store.designs()] == ["accepted", "accepted"]
    spent = spend_vs_budget(store)["cost_usd"]
    assert spent > 0 and spend_vs_budget(store)["left_usd"] == pytest.approx(1 - spent)
    store.close()
    # the next design is estimated at the median seed cost: it does not fit, so it never starts
    n = len(server.requests)
    assert run(repo, server, "--budget-usd", f"{spent * 1.2:.8f}") == 0
    store = Store(repo, create=False)
    r = store.get_run()
    assert r.status == "budget" and "would need" in r.status_detail
    child = store.get_design("d003")
    assert child.status == "proposed" and not child.analysis_json and len(server.requests) == n


def test_provider_outage_pauses_then_resumes(repo: Path, server: StubServer) -> None:
    from alma_tui.cli import build_parser, config_from_args
    from alma_tui.engine.search import Search

    args = build_parser().parse_args(
        [
            "run",
            "--repo",
            str(repo),
            "--meta-model",
            META,
            "--agent-model",
            AGENT,
            "--api-base",
            server.base_url,
            "--llm-retries",
            "1",
            *SMALL,
            "--iterations",
            "0",
        ]
    )
    cfg = config_from_args(args)
    cfg.outage_wait_s = 0.3
    server.down = True
    search = Search(cfg)
    search.open()
    statuses: list[str] = []
    out: list[str] = []
    t = threading.Thread(target=lambda: out.append(search.run()))
    t.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        r = search.store.get_run()
        statuses.append(f"{r.status}: {r.status_detail}")
        if r.status == "paused":
            break
        time.sleep(0.05)
    assert any(s.startswith("paused: provider unavailable: openai/stub-agent") for s in statuses), statuses
    assert not [d for d in search.store.designs() if d.status == "rejected"]
    time.sleep(0.5)
    server.down = False
    t.join(60)
    assert out == ["done"]
    assert [d.status for d in search.store.designs()] == ["accepted", "accepted"]
    failed = [c for c in calls(repo) if not c.ok]
    assert failed and all("ProviderUnavailable" in (c.error or "") for c in failed)
    search.close()


def test_missing_key_is_one_line_before_the_search(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert main(["run", "--headless", "--repo", str(repo), "--agent-model", "openai/gpt-5-nano"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "OPENAI_API_KEY" in err and not repo.exists()
    env = repo.parent / "keys.env"
    env.write_text("ANTHROPIC_API_KEY=sk-ant-123456789\n")
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    assert (
        main(
            [
                "run",
                "--headless",
                "--repo",
                str(repo),
                "--agent-model",
                "anthropic/claude-nosuch",
                "--env-file",
                str(env),
            ]
        )
        == 1
    )
    assert "not in litellm's model list" in capsys.readouterr().err
    assert main(["run", "--headless", "--repo", str(repo), "--meta-model", "gemini/gemini-2.5-flash"]) == 1
    assert "GEMINI_API_KEY" in capsys.readouterr().err


def test_embedding_model_over_http(repo: Path, server: StubServer) -> None:
    assert run(repo, server, "--iterations", "0", "--embedding-model", "openai/stub-embed") == 0
    store = Store(repo, create=False)
    embeds = [c for c in calls(repo) if c.role == "embed"]
    assert embeds and all(c.design_id == "d002" and c.prompt_tokens > 0 and not c.cost_known for c in embeds)
    assert "embed" in server.kinds() and store.get_design("d002").status == "accepted"


# the analysis a real model answered, refused three times before (every child rejected): a string
# where a list is expected, a priority as a word, in a fence with prose around and a trailing comma
NEAR_MISS_ANALYSIS = """Here is my analysis of the parent design:

```json
{
  "lessons_from_previous": "No previous suggestion to judge.",
  "trajectory_assessments": [{"task_id": 1, "memory_label": "Not useful", "how_it_could_help": "no memory"}],
  "content_quality_issues": "The agent gets no memory at all, so it repeats failed searches.",
  "structure_issues": "- nothing is stored\\n- nothing is retrieved",
  "suggested_changes": [
    {"priority": "High", "what": "store the successful action sequence per goal", "why": "reuse routes"},
    {"priority": "P3", "what": "add a cap on stored routes", "confidence": "medium"},
  ],
  "title_hint": "successful routes",
}
```

Let me know if you want me to elaborate on {any} of these points."""


def test_near_miss_analysis_and_untitled_unfenced_code_still_commit_a_child(repo: Path, server: StubServer) -> None:
    server.script("analyze", NEAR_MISS_ANALYSIS)
    server.script("write", DESIGN_CODE)  # no TITLE: line, no fence: only code
    assert run(repo, server) == 0
    store = Store(repo, create=False)
    child = store.get_design("d003")
    assert child is not None and child.status == "accepted", (child.status, child.error)
    assert server.kinds().count("analyze") == 1  # accepted first time: no retry
    assert MARKER in git(repo, "show", "design/d003:design.py")
    assert child.title.startswith("Successful routes")  # derived from the module's docstring
    import json as _json

    analysis = _json.loads(child.analysis_json)
    assert analysis["content_quality_issues"] == ["The agent gets no memory at all, so it repeats failed searches."]
    assert analysis["structure_issues"] == ["nothing is stored", "nothing is retrieved"]
    assert [c["priority"] for c in analysis["suggested_changes"]] == [1, 3]


def test_base_url_from_the_environment_counts_as_api_base(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from alma_tui.llm.client import ModelError, check_model, env_api_base

    served = "openai/my-served-model"  # not in litellm's model list
    for name in ("OPENAI_BASE_URL", "OPENAI_API_BASE", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ModelError, match="not in litellm's model list"):
        check_model(served)
    for name in ("OPENAI_BASE_URL", "OPENAI_API_BASE"):
        monkeypatch.setenv(name, "http://127.0.0.1:9/v1")
        assert env_api_base(served) == "http://127.0.0.1:9/v1"
        check_model(served)  # no key needed either: like --api-base, the server decides
        monkeypatch.delenv(name)
    monkeypatch.setenv("HOSTED_VLLM_API_BASE", "http://127.0.0.1:9/v1")
    assert env_api_base("hosted_vllm/my-model") == "http://127.0.0.1:9/v1"
    assert env_api_base("anthropic/claude-nosuch") is None
    # from --env-file, as the CLI checks models before a search
    from alma_tui.cli import _check_models, build_parser, config_from_args

    env = repo.parent / "server.env"
    env.write_text("OPENAI_BASE_URL=http://127.0.0.1:9/v1\n")
    argv = ["run", "--repo", str(repo), "--agent-model", served]
    with pytest.raises(Exception, match="not in litellm's model list"):
        _check_models(config_from_args(build_parser().parse_args(argv)))
    _check_models(config_from_args(build_parser().parse_args([*argv, "--env-file", str(env)])))


def test_search_with_the_base_url_only_in_the_environment(
    repo: Path, server: StubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.delenv("OPENAI_API_KEY")  # a keyless local server
    argv = ["run", "--headless", "--repo", str(repo), "--meta-model", "openai/my-served-meta"]
    assert main([*argv, "--agent-model", "openai/my-served-agent", "--llm-timeout", "1.5", *SMALL]) == 0
    store = Store(repo, create=False)
    assert [d.status for d in store.designs()] == ["accepted", "accepted", "accepted"]
    assert {r.body["model"] for r in server.requests} == {"my-served-meta", "my-served-agent"}
