"""The evaluation protocol: collect, update in order, deploy x runs against frozen memory."""

from __future__ import annotations

import pytest

from alma_tui.designs import builtin_source
from alma_tui.domains import get_domain
from alma_tui.engine.evaluator import EvalSettings, EvaluationFailed, Evaluator, Hooks, split_tasks
from alma_tui.offline.policy import choose_action

RECORDER = '''
"""Records every call so the test can check the protocol."""
from alma_tui.design_api import MemoryDesign

class Recorder(MemoryDesign):
    def __init__(self, services):
        super().__init__(services)
        self.updates = []
        self.retrieves = []
    def update(self, episode):
        self.updates.append([episode.task_id, len(self.retrieves), episode.step_count, episode.success])
    def retrieve(self, query):
        self.retrieves.append([query.task_id, len(self.updates), query.goal])
        return "MEMORY-MARKER " + query.task_id
    def snapshot(self):
        return {"updates": self.updates, "retrieves": self.retrieves}
'''


def agent(messages: list[dict], seed: int) -> str:
    return choose_action(messages, seed)


SETTINGS = EvalSettings(n_collection=4, n_deployment=3, runs=3, seed=5, concurrency=3)


def test_protocol_order_and_counts() -> None:
    domain = get_domain("household")
    collection, deployment = split_tasks(domain, SETTINGS)
    seen_prompts: list[str] = []

    def spy(messages: list[dict], seed: int) -> str:
        seen_prompts.append(messages[0]["content"])
        return agent(messages, seed)

    result = Evaluator(domain, spy).evaluate(RECORDER, SETTINGS)
    mem = result.memory
    # collection: update once per collection episode, in task order, before any retrieve
    assert [u[0] for u in mem["updates"]] == [t.task_id for t in collection]
    assert all(u[1] == 0 for u in mem["updates"])
    # deployment: one retrieve per deployment episode per run, all after every update (frozen memory)
    assert len(mem["retrieves"]) == len(deployment) * SETTINGS.runs
    assert all(r[1] == len(collection) for r in mem["retrieves"])
    assert sorted({r[0] for r in mem["retrieves"]}) == sorted(t.task_id for t in deployment)
    # the retrieved text reaches the acting agent's prompt; collection runs with an empty memory
    assert any("MEMORY-MARKER" in p for p in seen_prompts)
    dep = [e for e in result.episodes if e.phase == "deployment"]
    assert all(e.retrieved.startswith("MEMORY-MARKER") for e in dep)
    assert all(e.retrieved == "" for e in result.episodes if e.phase == "collection")
    # fitness = mean over runs of the mean deployment reward
    assert len(result.run_scores) == SETTINGS.runs
    for run, score in enumerate(result.run_scores):
        eps = [e.score for e in dep if e.run == run]
        assert score == pytest.approx(sum(eps) / len(eps))
    assert result.score == pytest.approx(sum(result.run_scores) / SETTINGS.runs)
    assert not {t.task_id for t in collection} & {t.task_id for t in deployment}


def test_same_seed_same_score() -> None:
    domain = get_domain("household")
    code = builtin_source("trajectory_retrieval")
    a = Evaluator(domain, agent).evaluate(code, SETTINGS)
    b = Evaluator(domain, agent).evaluate(code, SETTINGS)
    assert a.run_scores == b.run_scores


def test_crashed_episode_counts_zero_and_is_logged() -> None:
    domain = get_domain("household")
    _, deployment = split_tasks(domain, SETTINGS)
    bad = deployment[0].task_id

    def flaky(messages: list[dict], seed: int) -> str:
        if "MEMORY-MARKER " + bad in messages[0]["content"]:
            raise ConnectionError("provider down")
        return agent(messages, seed)

    done = []
    result = Evaluator(domain, flaky).evaluate(RECORDER, SETTINGS, Hooks(on_episode=done.append))
    crashed = [e for e in result.episodes if e.task_id == bad and e.phase == "deployment"]
    assert len(crashed) == SETTINGS.runs
    assert all(e.score == 0.0 and "provider down" in (e.error or "") for e in crashed)
    assert len(done) == SETTINGS.n_collection + SETTINGS.n_deployment * SETTINGS.runs


def test_design_failure_fails_the_evaluation_with_a_reason() -> None:
    code = RECORDER.replace('return "MEMORY-MARKER " + query.task_id', "return 1 / 0")
    with pytest.raises(EvaluationFailed) as info:
        Evaluator(get_domain("household"), agent).evaluate(code, SETTINGS)
    assert "ZeroDivisionError" in info.value.reason


def test_design_failure_does_not_cancel_the_search() -> None:
    """A failing design must abort its own evaluation only, never the caller's stop event."""
    import threading

    code = RECORDER.replace(
        'return "MEMORY-MARKER " + query.task_id',
        "if len(self.retrieves) > 2:\n            raise KeyError('late')\n        return 'x'",
    )
    cancel = threading.Event()
    with pytest.raises(EvaluationFailed) as info:
        Evaluator(get_domain("household"), agent).evaluate(code, SETTINGS, cancel=cancel)
    assert "KeyError" in info.value.reason  # the real cause, not a sibling's cancellation
    assert not cancel.is_set()
