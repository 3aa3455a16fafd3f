"""The MiniHack domain: text rendering, action words -> NLE ids, pools, and the offline policy
against a random admissible-action policy on the real minihack/nle packages."""

from __future__ import annotations

import random

import pytest

from alma_tui.agent.loop import run_episode
from alma_tui.domains.minihack import FAMILIES, MiniHackDomain, action_words
from alma_tui.offline.minihack_policy import verb_votes
from alma_tui.offline.provider import offline_answer

pytest.importorskip("minihack")
from nle import nethack


def _act(messages: list[dict], seed: int) -> str:
    """The policy as the evaluator reaches it: through the offline provider, which unfolds the
    default ``--agent-history summary`` chat for it."""
    return offline_answer("offline/agent", messages, seed, MiniHackDomain.offline_policy)


@pytest.fixture(scope="module")
def domain() -> MiniHackDomain:
    return MiniHackDomain()


def test_pools_are_seeded_disjoint_and_cover_every_family(domain: MiniHackDomain) -> None:
    train, test = domain.tasks("train", 0, 24), domain.tasks("test", 0, 24)
    assert {t.meta["env_id"] for t in train[:8]} == {f.env_id for f in FAMILIES if f.split == "train"}
    assert {t.meta["env_id"] for t in test[:4]} == {f.env_id for f in FAMILIES if f.split == "test"}
    assert not {t.meta["env_id"] for t in train} & {t.meta["env_id"] for t in test}  # skills held out
    assert all(t.seed % 2 == 0 for t in train) and all(t.seed % 2 == 1 for t in test)
    assert len({t.task_id for t in train}) == 24
    assert [t.task_id for t in domain.tasks("train", 0, 10)] == [t.task_id for t in train[:10]]
    assert [t.task_id for t in domain.tasks("train", 1, 10)] != [t.task_id for t in train[:10]]


def test_rendering_shows_message_map_relative_positions_and_inventory(domain: MiniHackDomain) -> None:
    task = next(t for t in domain.tasks("test", 0, 8) if t.meta["family"] == "Eat")
    env = domain.make_env(task)
    obs = env.reset()
    assert obs.startswith(f"Your task: {task.goal}")
    # the game's message line (its text depends on what the level shows first)
    assert any(line.startswith("Message: ") and len(line) > len("Message: ") for line in obs.splitlines())
    rows = obs.split("):\n", 1)[1].split("\nVisible:")[0].splitlines()
    (me,) = [(x, y) for y, r in enumerate(rows) for x, c in enumerate(r) if c == "@"]
    (food,) = [(x, y) for y, r in enumerate(rows) for x, c in enumerate(r) if c == "%"]
    dx, dy = food[0] - me[0], food[1] - me[1]
    visible = obs.split("Visible: ", 1)[1].splitlines()[0]
    expected = ", ".join(
        [f"{abs(dx)} {'east' if dx > 0 else 'west'}"] * bool(dx)
        + [f"{abs(dy)} {'south' if dy > 0 else 'north'}"] * bool(dy)
    )
    assert f": {expected}" in visible  # e.g. "an apple: 3 west"
    assert "Inventory: a: a " in obs and "(weapon in hand)" in obs


def test_action_words_map_to_the_tasks_own_nle_ids(domain: MiniHackDomain) -> None:
    nav = domain.make_env(domain.tasks("train", 0, 1)[0])
    nav.reset()
    assert nav.admissible_actions()[:4] == ["north", "east", "south", "west"]
    skill = domain.make_env(next(t for t in domain.tasks("test", 0, 4) if t.meta["family"] == "Wield"))
    skill.reset()
    acts = skill._actions
    words = action_words(acts, "")
    assert acts[words["north"]] == nethack.CompassDirection.N
    assert acts[words["far east"]] == nethack.CompassDirectionLonger.E
    assert acts[words["pick up"]] == nethack.Command.PICKUP and acts[words["wield"]] == nethack.Command.WIELD
    assert "y" not in words and "f" not in words  # answers only while the game asks
    asked = action_words(acts, "What do you want to wield? [- abf or ?*]")
    assert {"a", "b", "f"} <= set(asked) and int(acts[asked["f"]]) == ord("f")
    assert int(acts[action_words(acts, "Really pray? [yn] (n)")["y"]]) == ord("y")
    bad = skill.step("fly away")
    assert bad.observation == "Nothing happens." and not bad.done


def test_a_skill_task_played_through_the_prompts(domain: MiniHackDomain) -> None:
    task = next(t for t in domain.tasks("test", 0, 4) if t.meta["family"] == "Wear")
    env = domain.make_env(task)
    episode, info = run_episode(env, task, domain, "", lambda m: _act(m, 0))
    actions = [s.action for s in episode.steps]
    assert info["success"] and env.score() == 1.0
    assert "pick up" in actions and "wear" in actions
    assert actions[actions.index("wear") + 1].isalpha() and len(actions[actions.index("wear") + 1]) == 1


def test_memory_orders_the_skill_verbs() -> None:
    memory = (
        "Outcome: failure (score 0) in 100 steps\nwield -> Message: What do you want to wield?\n"
        "Outcome: success (score 1) in 9 steps\npray -> Message: Are you sure you want to pray? [yn] (n)\n"
        "pick up -> Message: You don't have anything to pick up\n"
    )
    votes = verb_votes(memory)
    assert votes["pray"] > 0 and votes["wield"] < 0 and votes["pick up"] < 0
    task = next(t for t in MiniHackDomain().tasks("test", 0, 4) if t.meta["family"] == "Pray")
    blind = run_episode(MiniHackDomain().make_env(task), task, MiniHackDomain(), "", lambda m: _act(m, 0))[1]
    told = run_episode(MiniHackDomain().make_env(task), task, MiniHackDomain(), memory, lambda m: _act(m, 0))[1]
    assert told["success"] and told["steps"] < blind["steps"]


def test_offline_policy_beats_random_admissible_actions(domain: MiniHackDomain) -> None:
    tasks = domain.tasks("train", 0, 8) + domain.tasks("test", 0, 4)
    wins = {"policy": 0, "random": 0}
    for task in tasks:
        rng = random.Random(task.seed)

        def rand(messages: list[dict], rng: random.Random = rng) -> str:
            last = messages[-1]["content"]
            return rng.choice([ln[2:] for ln in last.splitlines() if ln.startswith("- ")])

        for name, act in (("policy", lambda m: _act(m, 0)), ("random", rand)):
            wins[name] += run_episode(domain.make_env(task), task, domain, "", act)[1]["success"]
    assert wins["policy"] >= wins["random"] + 4, wins
