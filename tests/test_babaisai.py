"""Baba Is AI: the rules engine, the text, the solver on every family, the task pools."""

from __future__ import annotations

import pytest

from alma_tui.domains import get_domain, list_domains
from alma_tui.domains.babaisai.domain import BabaIsAIDomain, reward
from alma_tui.domains.babaisai.engine import Game, Item, Level
from alma_tui.domains.babaisai.levels import FAMILIES, MAX_STEPS, generate_level
from alma_tui.domains.babaisai.render import loose_words, offset_text, render
from alma_tui.domains.babaisai.solver import solve


def board(rows: list[str], legend: dict[str, str]) -> Game:
    """A game from a picture: one character per cell, '.' empty; ``legend`` maps characters
    to kinds (lower case objects, upper case words)."""
    items = [Item(legend[ch], x, y) for y, row in enumerate(rows) for x, ch in enumerate(row) if ch != "."]
    return Game(Level(len(rows[0]), len(rows), tuple(items)))


WORDS = {
    "B": "BABA",
    "I": "IS",
    "Y": "YOU",
    "W": "WIN",
    "S": "STOP",
    "P": "PUSH",
    "D": "DEFEAT",
    "L": "BALL",
    "A": "WALL",
    "K": "KEY",
    "b": "baba",
    "l": "ball",
    "a": "wall",
    "k": "key",
}


def where(game: Game, kind: str) -> list[tuple[int, int]]:
    w = game.width
    return sorted((c % w, c // w) for k, c in zip(game.kinds, game.cells, strict=True) if k == kind and c >= 0)


def test_pushing_a_word_into_line_forms_a_rule_and_the_rules_are_reread() -> None:
    g = board(
        [
            "BIY...",
            "LI....",
            "..W...",
            "..b..l",
        ],
        WORDS,
    )
    assert ("ball", "win") not in g.rules
    g.step("up")  # baba pushes WIN up into the gap after BALL IS
    assert ("ball", "win") in g.rules
    assert where(g, "WIN") == [(2, 1)]
    assert not g.won


def test_stop_blocks_and_pushing_a_word_out_of_line_breaks_the_rule() -> None:
    g = board(
        [
            "BIY...",
            "......",
            "AIS...",
            "......",
            "b.a.k.",
            "KIW...",
        ],
        WORDS,
    )
    g.step("right")
    g.step("right")
    assert where(g, "baba") == [(1, 4)], "STOP wall blocks"
    # go under STOP and push it up, out of the WALL IS STOP line
    for move in ("up", "right", "up"):
        g.step(move)
    assert ("wall", "stop") not in g.rules
    for move in ("down", "down", "right", "right"):
        g.step(move)
    assert g.won, "with the rule broken baba walks over the wall to the key"


def test_push_moves_objects_in_a_chain_and_the_edge_or_stop_blocks_the_whole_chain() -> None:
    g = board(["BIY...", "LIP...", "b.ll..", "AIS..a"], WORDS)
    g.step("right")
    g.step("right")
    assert where(g, "ball") == [(3, 2), (4, 2)]
    g.step("right")
    assert where(g, "ball") == [(4, 2), (5, 2)]
    assert where(g, "baba") == [(3, 2)]
    g.step("right")  # the chain would leave the grid: nothing moves
    assert where(g, "ball") == [(4, 2), (5, 2)] and where(g, "baba") == [(3, 2)]
    # a STOP object behind a pushable one blocks the push
    h = board(["BIY...", "LIP...", "AIS...", "bla..."], WORDS)
    h.step("right")
    assert where(h, "ball") == [(1, 3)] and where(h, "baba") == [(0, 3)]


def test_objects_without_properties_are_walked_over() -> None:
    g = board(["BIY..", "b.l.k", "KIW.."], WORDS)
    for _ in range(4):
        g.step("right")
    assert g.won


def test_win_needs_a_you_object_on_a_win_object_and_you_and_win_at_once_wins() -> None:
    g = board(["BIY...", "b.k...", "KIW..."], WORDS)
    g.step("right")
    assert not g.won
    g.step("right")
    assert g.won
    h = board(["BIY...", "BIW...", "......", "b....."], WORDS)  # BABA IS YOU and BABA IS WIN
    assert h.won


def test_defeat_destroys_the_you_object_and_no_you_means_lost() -> None:
    g = board(["BIY...", "KID...", "b.k..."], WORDS)
    g.step("right")
    assert not g.lost
    out = g.step("right")
    assert out.lost and g.lost and where(g, "baba") == []
    assert g.step("left").moved is False, "nothing moves after the level is lost"


def test_breaking_baba_is_you_loses_the_level() -> None:
    g = board(["......", ".BIY..", "..b...", "......"], WORDS)
    out = g.step("up")  # baba pushes IS up, out of the line
    assert ("baba", "you") not in g.rules
    assert out.lost


def test_noun_is_noun_transforms_objects_and_noun_is_itself_protects() -> None:
    g = board(
        [
            "BIY...",
            "LI....",
            "..B...",
            "..b..l",
        ],
        WORDS,
    )
    g.step("up")  # BALL IS BABA
    assert ("ball", "baba") in g.rules
    assert where(g, "ball") == [] and where(g, "baba") == [(2, 2), (5, 3)]
    g.step("left")  # the former ball is baba now, so it is YOU and moves too
    assert where(g, "baba") == [(1, 2), (4, 3)]
    h = board(["BIY...", "LIB...", "LIL...", "l....b"], WORDS)  # BALL IS BALL blocks BALL IS BABA
    assert where(h, "ball") == [(0, 3)]


def test_vertical_rules_count() -> None:
    g = board(["B.....", "I.....", "Y.b...", "...LIW", "....l."], WORDS)
    assert set(g.rules) == {("baba", "you"), ("ball", "win")}
    for move in ("down", "down", "right"):
        g.step(move)
    assert not g.won
    g.step("right")
    assert g.won


def test_text_observation_lists_rules_then_everything_relative_to_the_player() -> None:
    g = board(["BIY...", "..b...", "LI..k.", "...W.."], WORDS)
    text = render(g)
    first, edge, blank, heading, *items = text.splitlines()
    assert blank == ""
    assert first == "Active rules: baba is you; words not in a rule: ball, is, win."
    assert edge == "The map edge is 3 steps to the left, 4 steps to the right, 2 steps up and 3 steps down."
    assert heading == "Objects on the map:"
    assert items[0] == "baba at your position"
    assert "rule `baba` 2 steps to the left and 1 step up" in items
    assert "key 2 steps to the right and 1 step down" in items
    assert "rule `win` 1 step to the right and 2 steps down" in items
    assert offset_text(0, -3) == "3 steps up"
    assert loose_words(g) == ["ball", "is", "win"]


def test_reward_follows_the_benchmark() -> None:
    assert reward(0) == 1.0
    assert reward(10) == pytest.approx(0.55)
    assert reward(20) == pytest.approx(0.1)


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_is_solvable_within_the_limit_and_its_solution_replays(family: str) -> None:
    for seed in (1,):  # a sample (generation costs ~0.2-1 s a level): benchmarks/babaisai_speed.py checks 140
        gen = generate_level(seed * 1000 + 1, family)
        assert gen.level.family == family
        assert 1 <= gen.optimal_steps <= MAX_STEPS
        game = Game(gen.level)
        assert not game.won
        for move in gen.solution:
            game.step(move)
        assert game.won, f"{family}: the stored solution does not win"
        again = solve(gen.level)
        assert again is not None and len(again) == gen.optimal_steps


def test_task_pools_are_seeded_disjoint_and_share_families() -> None:
    assert dict((n, r) for n, _, r in list_domains())["babaisai"] is None, "ready, nothing to install"
    domain = get_domain("babaisai")
    assert isinstance(domain, BabaIsAIDomain)
    train = domain.tasks("train", 0)
    test = domain.tasks("test", 0)
    assert {t.seed for t in train}.isdisjoint({t.seed for t in test})
    assert {t.seed for t in train + domain.tasks("train", 1)}.isdisjoint({t.seed for t in test})
    assert {t.meta["family"] for t in train} == {t.meta["family"] for t in test} == set(FAMILIES)
    assert domain.tasks("test", 0, 10) == test[:10]
    assert domain.tasks("test", 0) == test
    with pytest.raises(ValueError):
        domain.tasks("dev", 0)


def test_env_counts_steps_and_rewards_success() -> None:
    domain = BabaIsAIDomain()
    task = domain.tasks("test", 0, 1)[0]
    env = domain.make_env(task)
    first = env.reset()
    assert first.startswith("Active rules:") and "Your goal:" in first
    assert env.admissible_actions() == ["idle", "up", "right", "down", "left"]
    res = env.step("jump")
    assert res.observation == "Nothing happens." and not res.done
    for move in env.generated.solution:
        res = env.step(move)
    assert res.done and res.success
    steps = 1 + env.generated.optimal_steps
    assert env.score() == pytest.approx(reward(steps)) and res.reward == env.score()
    env.reset()
    for _ in range(MAX_STEPS):
        res = env.step("idle")
    assert res.done and not res.success and env.score() == 0.0
