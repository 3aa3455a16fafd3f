"""The offline Baba Is AI policy: it reads the board back from the text, follows its memory
contract, and acts better than chance."""

from __future__ import annotations

import random

import pytest

from alma_tui.agent.loop import run_episode
from alma_tui.agent.prompt import step_message, system_prompt
from alma_tui.domains.babaisai.domain import BabaIsAIDomain
from alma_tui.domains.babaisai.engine import Game
from alma_tui.domains.babaisai.levels import FAMILIES, generate_level
from alma_tui.domains.babaisai.render import render
from alma_tui.offline import babaisai_policy as policy
from alma_tui.offline.babaisai_policy import Candidate, choose_action, memory_votes, parse_board
from alma_tui.offline.provider import load_policy, offline_answer


def _act(messages: list[dict], seed: int) -> str:
    """The policy as the evaluator reaches it: through the offline provider, which unfolds the
    default ``--agent-history summary`` chat for it."""
    return offline_answer("offline/agent", messages, seed, BabaIsAIDomain.offline_policy)


def test_the_domain_names_this_policy_and_the_offline_agent_answers_with_it() -> None:
    assert load_policy(BabaIsAIDomain.offline_policy) is choose_action
    domain = BabaIsAIDomain()
    env = domain.make_env(domain.tasks("test", 0, 1)[0])
    messages = [
        {"role": "system", "content": system_prompt(domain.instructions, "")},
        {"role": "user", "content": step_message(env.reset(), env.admissible_actions())},
    ]
    answer = offline_answer("offline/agent", messages, 0, BabaIsAIDomain.offline_policy)
    assert answer in env.admissible_actions() and answer != "idle"


@pytest.mark.parametrize("family", FAMILIES)
def test_the_board_is_rebuilt_exactly_from_the_text(family: str) -> None:
    game = Game(generate_level(5, family).level)
    rebuilt = parse_board(render(game))
    assert rebuilt is not None
    assert (rebuilt.width, rebuilt.height, rebuilt.key(), rebuilt.rules) == (
        game.width,
        game.height,
        game.key(),
        game.rules,
    )
    assert parse_board("Nothing happens.") is None


def test_memory_statements_vote_for_and_against_rule_changes() -> None:
    votes = dict(
        memory_votes(
            "Formed key is win, then walked to the key.\nbreak wall is stop\nDo not make ball is you: it failed."
        )
    )
    assert votes[Candidate("form", "key", "win")] == pytest.approx(1.0)
    assert votes[Candidate("break", "wall", "stop")] == pytest.approx(1 / 1.1)
    assert votes[Candidate("form", "ball", "you")] < 0
    assert memory_votes("Task: make an object that is YOU reach an object that is WIN") == ()


def test_trajectories_vote_for_the_changes_of_a_success_and_against_those_of_a_failure() -> None:
    won = (
        "Task: make an object that is YOU reach an object that is WIN\n"
        "Setting: Active rules: baba is you, door is push, wall is stop; words not in a rule: none.\n"
        "Outcome: success (score 0.6) in 9 steps\n"
        "up -> Active rules: baba is you, wall is stop; words not in a rule: door, is, push. ...\n"
        "right -> Active rules: baba is you; words not in a rule: door, is, push, stop, is, wall. ...\n"
        "right -> You win: a YOU object reached a WIN object. Active rules: baba is you; ..."
    )
    votes = dict(memory_votes(won))
    assert votes[Candidate("break", "wall", "stop")] == pytest.approx(1.0), "the last change counts fully"
    assert votes[Candidate("break", "door", "push")] == pytest.approx(0.5), "earlier changes half"
    lost = won.replace("Outcome: success (score 0.6)", "Outcome: failure (score 0)")
    assert all(w < 0 for w in dict(memory_votes(lost)).values())


def test_memory_decides_which_rule_change_comes_first() -> None:
    gen = generate_level(7, "break_stop")
    game = Game(gen.level)
    initial = render(game)
    cands = policy._candidates(game)
    assert Candidate("break", "wall", "stop") in cands and len(cands) > 2
    orders = {tuple(policy._ordered(cands, game, "", seed, initial)) for seed in range(12)}
    assert len(orders) > 1, "without memory the order is the seed's"
    for seed in range(12):
        first = policy._ordered(cands, game, "I broke wall is stop and walked through.", seed, initial)[0]
        assert first == Candidate("break", "wall", "stop")


def _play(task, memory: str, agent) -> tuple[bool, int]:
    domain = BabaIsAIDomain()
    episode, _ = run_episode(domain.make_env(task), task, domain, memory, agent)
    return episode.success, episode.step_count


def test_the_policy_is_deterministic_and_follows_memory_to_a_win() -> None:
    domain = BabaIsAIDomain()
    tasks = [t for t in domain.tasks("test", 3, 21) if t.meta["family"] == "break_stop"]
    memory = "Broke wall is stop, then walked to the ball."
    for task in tasks:
        first = _play(task, memory, lambda m: _act(m, 1))
        assert first == _play(task, memory, lambda m: _act(m, 1))
        assert first[0], f"{task.task_id}: memory named the right change, the policy should win"


def test_the_policy_beats_random_actions_without_memory() -> None:
    domain = BabaIsAIDomain()
    tasks = domain.tasks("test", 4, 7)  # one level of each family

    def rand(messages: list[dict]) -> str:
        return random.Random(len(messages)).choice(["idle", "up", "right", "down", "left"])

    ours = sum(_play(t, "", lambda m: _act(m, 0))[0] for t in tasks)
    chance = sum(_play(t, "", rand)[0] for t in tasks)
    assert ours >= len(tasks) // 2 > chance
