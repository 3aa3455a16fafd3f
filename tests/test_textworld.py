"""The TextWorld domain on a few small games generated once per session into a tmp cache
(needs the `textworld` extra; CI installs it)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("textworld")

from alma_tui.agent.loop import run_episode
from alma_tui.designs import builtin_source
from alma_tui.domains import get_domain
from alma_tui.domains.textworld import TextWorldDomain, clean_observation
from alma_tui.engine.evaluator import EvalSettings, Evaluator
from alma_tui.offline.provider import offline_answer

SMALL = {"worlds": 1, "rooms": 4, "objects": 6, "targets": 2, "starts": 1}


def _act(messages: list[dict], seed: int) -> str:
    """The generic agent as the evaluator reaches it: through the offline provider, which
    unfolds the default ``--agent-history summary`` chat for it."""
    return offline_answer("offline/agent", messages, seed, None)


@pytest.fixture(scope="session")
def tw(tmp_path_factory: pytest.TempPathFactory) -> tuple[TextWorldDomain, list[str]]:
    """A small TextWorld domain with its games generated (2 train + 2 test), and the progress lines."""
    lines: list[str] = []
    domain = TextWorldDomain(cache_dir=tmp_path_factory.mktemp("twcache"), **SMALL)
    domain.prepare(lines.append)
    return domain, lines


def test_generation_reports_progress_and_is_cached(tw: tuple[TextWorldDomain, list[str]]) -> None:
    domain, lines = tw
    assert sum("generated train game" in ln for ln in lines) == 2
    assert sum("generated test game" in ln for ln in lines) == 2
    again: list[str] = []
    second = TextWorldDomain(cache_dir=domain.cache_dir.parent, **SMALL)
    second.prepare(again.append)
    assert again == []  # loaded from the cache, nothing regenerated
    assert second.tasks("test", 0) == domain.tasks("test", 0)
    other = TextWorldDomain(cache_dir=domain.cache_dir.parent, **{**SMALL, "rooms": 5})
    assert other.cache_dir != domain.cache_dir  # the options are part of the key


def test_splits_are_disjoint_worlds_and_seeds_only_reorder(tw: tuple[TextWorldDomain, list[str]]) -> None:
    domain, _ = tw
    train, test = domain.tasks("train", 0), domain.tasks("test", 0)
    assert len(train) == len(test) == 2
    assert {t.meta["world"] for t in train}.isdisjoint({t.meta["world"] for t in test})
    assert sorted(t.task_id for t in domain.tasks("test", 5)) == sorted(t.task_id for t in test)
    for t in train + test:
        assert t.goal.startswith("find the ") and t.goal.endswith(" and take it")
    with pytest.raises(ValueError, match="unknown split"):
        domain.tasks("valid", 0)


def test_observations_are_clean_and_the_goal_is_given(tw: tuple[TextWorldDomain, list[str]]) -> None:
    domain, _ = tw
    task = domain.tasks("train", 0)[0]
    env = domain.make_env(task)
    obs = env.reset()
    assert obs.startswith("-= ") and "$$" not in obs and "Welcome to TextWorld" not in obs
    assert obs.rstrip().endswith(f"Your task is to: {task.goal}.")
    assert any(a.startswith("go ") for a in env.admissible_actions()) or env.admissible_actions()
    res = env.step("dance wildly")  # not admissible: the game's own answer, and a step
    assert res.reward == 0 and not res.done and res.observation and ">" not in res.observation[-1:]
    assert env.score() == 0.0


def test_the_generic_agent_solves_small_games_with_score_and_won(tw: tuple[TextWorldDomain, list[str]]) -> None:
    domain, _ = tw
    for task in domain.tasks("train", 0) + domain.tasks("test", 0):
        env = domain.make_env(task)
        episode, info = run_episode(env, task, domain, "", lambda m: _act(m, 0))
        assert info["success"] and episode.score == 1.0, [(s.action, s.observation[:60]) for s in episode.steps]
        assert sum(s.reward for s in episode.steps) == pytest.approx(1.0)
        assert "take" in episode.steps[-1].action and episode.step_count <= domain.max_steps


def test_evaluator_runs_designs_on_textworld(tw: tuple[TextWorldDomain, list[str]]) -> None:
    domain, _ = tw
    settings = EvalSettings(n_collection=1, n_deployment=1, runs=1, split="test", concurrency=2)
    result = Evaluator(domain, _act).evaluate(builtin_source("trajectory_retrieval"), settings)
    assert result.score == 1.0 and len(result.per_task()) == 1
    assert result.memory["episodes"] == 1  # the collection episode was stored


def test_clean_observation_strips_banner_objective_and_prompt() -> None:
    raw = (
        "\n\n   ________  ________\n  |        \\|  $$$$$$$$\n   \\$$$$$$$$| $$\n\n"
        "Welcome to TextWorld! First off, travel west.\n\n-= Studio =-\nYou've entered a studio.\n\n\n\n"
        "There is an exit to the north.\n\n>                                   -= Studio =-0/1"
    )
    assert (
        clean_observation(raw, initial=True)
        == "-= Studio =-\nYou've entered a studio.\n\nThere is an exit to the north."
    )
    won = "You take the key.\n\nYour score has just gone up by one point.\n\n   *** The End ***\n\nYou scored 1"
    assert clean_observation(won).endswith("*** The End ***")


def test_registry_and_requirements(tmp_path: Path) -> None:
    domain = get_domain("textworld", cache_dir=tmp_path, **SMALL)
    assert isinstance(domain, TextWorldDomain) and domain.requirements() is None and domain.max_steps == 80
