"""LLMClient over real HTTP: litellm talking to a scripted OpenAI-compatible server on loopback."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from alma_tui.llm.client import (
    Budget,
    BudgetExceeded,
    LLMClient,
    ModelError,
    ProviderUnavailable,
    RoleParams,
    check_model,
    litellm_module,
    load_env_file,
    redact,
)
from tests.openai_stub import Fail, Hang, StubServer

PRICED = "openai/stub-priced"


@pytest.fixture(scope="module")
def litellm():
    lm = litellm_module()
    lm.register_model(
        {
            PRICED: {
                "input_cost_per_token": 1e-6,
                "output_cost_per_token": 4e-6,
                "litellm_provider": "openai",
                "mode": "chat",
            },
            "openai/stub-embed-priced": {
                "input_cost_per_token": 1e-7,
                "output_cost_per_token": 0.0,
                "litellm_provider": "openai",
                "mode": "embedding",
            },
        }
    )
    return lm


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch, litellm):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-dummy-key-0123456789")
    with StubServer() as s:
        yield s


def client(server: StubServer, rows: list[dict], **kw) -> LLMClient:
    kw.setdefault("backoff_base_s", 0.01)
    return LLMClient(record=rows.append, api_base=server.base_url, **kw)


def test_complete_records_tokens_reasoning_cost(server: StubServer) -> None:
    rows: list[dict] = []
    llm = client(server, rows, role_params={"agent": RoleParams(temperature=0.3, reasoning_effort="low")})
    text = llm.complete(
        [{"role": "user", "content": "hello there"}], model=PRICED, role="agent", design_id="d003", seed=5
    )
    assert text == "a short note from the stub"
    (row,) = rows
    assert row["ok"] and row["role"] == "agent" and row["design_id"] == "d003" and row["retries"] == 0
    assert row["prompt_tokens"] > 0 and row["completion_tokens"] > 7 and row["reasoning_tokens"] == 7
    expected = row["prompt_tokens"] * 1e-6 + row["completion_tokens"] * 4e-6
    assert row["cost_usd"] == pytest.approx(expected) and row["cost_known"]
    body = server.requests[-1].body
    assert body["temperature"] == 0.3 and body["reasoning_effort"] == "low" and body["seed"] == 5
    assert server.requests[-1].headers["authorization"] == "Bearer sk-test-dummy-key-0123456789"
    assert llm.by_design["d003"].cost_usd == pytest.approx(expected)
    assert llm.budget_status()["calls"] == 1


def test_unknown_price_counts_tokens_with_cost_unknown(server: StubServer) -> None:
    rows: list[dict] = []
    llm = client(server, rows)
    llm.complete([{"role": "user", "content": "x"}], model="openai/no-such-price", role="design")
    assert rows[0]["cost_usd"] == 0.0 and rows[0]["cost_known"] is False and rows[0]["completion_tokens"] > 0
    assert llm.budget_status()["unknown_cost_calls"] == 1


def test_stream_chunks_usage_and_cost(server: StubServer) -> None:
    rows: list[dict] = []
    chunks: list[str] = []
    llm = client(server, rows)
    msgs = [{"role": "user", "content": "### TASK: write\nplease"}]
    text = llm.complete(msgs, model=PRICED, role="meta", on_chunk=chunks.append)
    assert "```python" in text and "".join(chunks) == text and len(chunks) > 3
    assert server.requests[-1].body["stream"] is True
    assert rows[0]["completion_tokens"] > 10 and rows[0]["cost_usd"] > 0 and rows[0]["reasoning_tokens"] == 7


def test_429_then_success_is_retried_and_counted(server: StubServer) -> None:
    rows: list[dict] = []
    server.script("design", Fail(429, retry_after=0), Fail(503))
    llm = client(server, rows)
    assert llm.complete([{"role": "user", "content": "x"}], model=PRICED, role="design") == "a short note from the stub"
    assert rows[0]["ok"] and rows[0]["retries"] == 2 and len(server.requests) == 3


def test_timeout_then_success(server: StubServer) -> None:
    rows: list[dict] = []
    server.script("design", Hang(1.5))
    llm = client(server, rows, timeout_s=0.4)
    started = time.perf_counter()
    assert llm.complete([{"role": "user", "content": "x"}], model=PRICED, role="design")
    assert rows[0]["retries"] == 1 and time.perf_counter() - started < 1.5


def test_stream_retry_after_429(server: StubServer) -> None:
    rows: list[dict] = []
    server.script("analyze", Fail(429, retry_after=0))
    llm = client(server, rows)
    out: list[str] = []
    text = llm.complete(
        [{"role": "user", "content": "### TASK: analyze"}], model=PRICED, role="meta", on_chunk=out.append
    )
    assert text.startswith("{") and rows[0]["retries"] == 1


def test_outage_halts_until_cleared(server: StubServer) -> None:
    rows: list[dict] = []
    server.down = True
    llm = client(server, rows, num_retries=2)
    with pytest.raises(ProviderUnavailable, match="503"):
        llm.complete([{"role": "user", "content": "x"}], model=PRICED, role="agent")
    assert len(server.requests) == 3 and rows[-1]["ok"] is False and rows[-1]["retries"] == 2
    assert llm.halted is not None
    n = len(server.requests)
    with pytest.raises(ProviderUnavailable):  # fails fast while halted
        llm.complete([{"role": "user", "content": "x"}], model=PRICED, role="agent")
    assert len(server.requests) == n
    server.down = False
    llm.clear_halt()
    assert llm.complete([{"role": "user", "content": "x"}], model=PRICED, role="agent")


def test_connection_refused_is_an_outage(litellm) -> None:
    llm = LLMClient(api_base="http://127.0.0.1:9/v1", num_retries=1, backoff_base_s=0.01, timeout_s=2)
    with pytest.raises(ProviderUnavailable):
        llm.complete([{"role": "user", "content": "x"}], model="openai/whatever", role="agent")


def test_bad_key_is_a_model_error(server: StubServer) -> None:
    server.script("design", Fail(401, message="invalid key sk-test-dummy-key-0123456789"))
    rows: list[dict] = []
    with pytest.raises(ModelError) as info:
        client(server, rows).complete([{"role": "user", "content": "x"}], model=PRICED, role="design")
    assert "0123456789" not in str(info.value) and "0123456789" not in rows[0]["error"]


def test_concurrency_limit_per_model(server: StubServer) -> None:
    server.script("design", *[Hang(0.3)] * 6)
    llm = client(server, [], max_concurrent=2)
    threads = [
        threading.Thread(
            target=llm.complete, args=([{"role": "user", "content": "x"}],), kwargs={"model": PRICED, "role": "design"}
        )
        for _ in range(6)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert server.max_in_flight == 2


def test_budget_stops_calls(server: StubServer) -> None:
    rows: list[dict] = []
    llm = client(server, rows, budget=Budget(usd=1e-9))
    llm.complete([{"role": "user", "content": "x"}], model=PRICED, role="agent")
    with pytest.raises(BudgetExceeded):
        llm.complete([{"role": "user", "content": "x"}], model=PRICED, role="agent")
    llm2 = client(server, [], budget=Budget(tokens=10_000))
    llm2.restore(prompt_tokens=9_000)
    with pytest.raises(BudgetExceeded, match="would need"):
        llm2.ensure_room(tokens=2_000, what="the next design")
    llm2.ensure_room(tokens=500)
    assert llm2.budget_status()["left_tokens"] == 1_000


def test_embeddings_over_http(server: StubServer) -> None:
    rows: list[dict] = []
    vecs = client(server, rows).embed(["a", "bb"], model="openai/stub-embed-priced", design_id="d004")
    assert len(vecs) == 2 and len(vecs[0]) == 16 and vecs[0] != vecs[1]
    assert rows[0]["role"] == "embed" and rows[0]["prompt_tokens"] > 0 and rows[0]["cost_known"]
    assert client(server, []).embed(["a"])  # no model: the local hashing embedding, no request
    assert [r.kind for r in server.requests] == ["embed"]


def test_check_model(monkeypatch: pytest.MonkeyPatch, litellm) -> None:
    for k in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY", "OLLAMA_API_BASE"):
        monkeypatch.delenv(k, raising=False)
    with pytest.raises(ModelError, match="OPENAI_API_KEY"):
        check_model("openai/gpt-5-nano")
    with pytest.raises(ModelError, match="ANTHROPIC_API_KEY"):
        check_model("anthropic/claude-sonnet-4-5")
    with pytest.raises(ModelError, match="GEMINI_API_KEY"):
        check_model("gemini/gemini-2.5-flash")
    with pytest.raises(ModelError, match="not in litellm's model list"):
        check_model("openai/gpt-5-nanoo")
    with pytest.raises(ModelError, match="OPENAI_API_KEY"):  # --skip-model-check still needs the key
        check_model("openai/gpt-5-nanoo", strict_name=False)
    check_model("ollama/qwen3:8b")  # local: no key, any name
    check_model("ollama/qwen3:8b", "http://localhost:11434")
    check_model("openai/my-served-model", "http://127.0.0.1:8000/v1")  # compatible server: no key needed
    with pytest.raises(ModelError, match="provider"):
        check_model("nosuchprovider-model")
    monkeypatch.setenv("GEMINI_API_KEY", "g-1234567890")
    check_model("gemini/gemini-2.5-flash")
    with pytest.raises(ModelError, match="embedding"):
        monkeypatch.setenv("OPENAI_API_KEY", "sk-xx")
        check_model("openai/gpt-5-nano", embedding=True)
    check_model("openai/text-embedding-3-small", embedding=True)


def test_compatible_server_without_key(monkeypatch: pytest.MonkeyPatch, litellm) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with StubServer() as s:
        LLMClient(api_base=s.base_url).complete([{"role": "user", "content": "x"}], model="openai/local", role="agent")
        assert s.requests[0].headers["authorization"] == "Bearer sk-no-key-needed"


def test_env_file_and_redaction(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = tmp_path / "keys.env"
    env.write_text("# keys\nexport ALMA_TEST_API_KEY='sk-abcdefghijklmnopqrstuvwxyz'\nALMA_OTHER=1 # c\n")
    monkeypatch.delenv("ALMA_TEST_API_KEY", raising=False)
    monkeypatch.delenv("ALMA_OTHER", raising=False)
    assert load_env_file(env) == ["ALMA_TEST_API_KEY", "ALMA_OTHER"]
    import os

    assert os.environ["ALMA_TEST_API_KEY"] == "sk-abcdefghijklmnopqrstuvwxyz" and os.environ["ALMA_OTHER"] == "1"
    assert "abcdefghijklmnop" not in redact("bad key sk-abcdefghijklmnopqrstuvwxyz given")
    with pytest.raises(ModelError, match="cannot read"):
        load_env_file(tmp_path / "missing.env")
