"""The generic offline acting agent: explores from the text alone and follows memory by its
documented contract (alma_tui/offline/generic_policy.py)."""

from __future__ import annotations

from alma_tui.agent.prompt import step_message, system_prompt
from alma_tui.offline.generic_policy import choose_action, location_of, parse_goal, read_memory
from alma_tui.offline.provider import load_policy

START = (
    "-= Hall =-\nYou are in a hall. There is an exit to the east and one to the north.\n\n"
    "Your task is to: find the potato and take it."
)


def chat(memory: str, *steps: tuple[str, str, list[str]], first: list[str] | None = None) -> list[dict]:
    """System + first step message + (answer, observation, admissible) exchanges."""
    msgs = [
        {"role": "system", "content": system_prompt("Act.", memory)},
        {"role": "user", "content": step_message(START, first or ["go east", "go north", "look"])},
    ]
    for answer, obs, acts in steps:
        msgs.append({"role": "assistant", "content": answer})
        msgs.append({"role": "user", "content": step_message(obs, acts)})
    return msgs


def test_goal_and_location_are_read_from_text() -> None:
    goal = parse_goal(START)
    assert goal.objects == {"potato"} and "take" in goal.words
    assert location_of("-= Spare Room =- You arrive in a spare room.") == "spare room"
    assert location_of("You arrive at cabinet 3. The cabinet 3 is closed.") == "cabinet 3"
    assert location_of("You can't go that way.") is None


def test_without_memory_it_takes_the_goal_object_opens_and_explores() -> None:
    # the goal's own action wins over everything else
    assert choose_action(chat("", first=["go east", "take potato", "take hat"]), 0) == "take potato"
    # in a room with a closed chest it opens it before leaving
    msgs = chat("", ("go east", "-= Den =-\nYou see a closed chest.", ["go west", "open chest", "look"]))
    assert choose_action(msgs, 0) == "open chest"
    # an exit that failed here is not tried again; a fresh exit is preferred to the way back
    msgs = chat(
        "",
        ("go east", "-= Den =-\nA den.", ["go north", "go west", "go south", "look"]),
        ("go north", "You can't go that way.", ["go north", "go west", "go south", "look"]),
    )
    assert choose_action(msgs, 0) == "go south"


def test_memory_leads_it_to_where_the_object_was_seen() -> None:
    memory = "\n".join(
        [
            "Task: find the hat and take it",
            "Setting: -= Hall =-",
            "Outcome: failure (score 0) in 3 steps",
            "go north -> -= Attic =- You arrive in an attic. There is a lamp here.",
            "go east -> -= Pantry =- A pantry. You see a potato on the shelf.",
            "go west -> -= Attic =- Back in the attic.",
        ]
    )
    mem = read_memory(memory, frozenset({"potato"}), frozenset({"take"}))
    assert mem.edges == {  # with the inferred ways back of compass moves
        "hall": {"go north": "attic"},
        "attic": {"go east": "pantry", "go south": "hall"},
        "pantry": {"go west": "attic"},
    }
    assert mem.votes == {"pantry": 1.0}
    # without memory its seeded order picks some exit; with it, the remembered path
    first = choose_action(chat(memory), 0)
    assert first == "go north"
    msgs = chat(memory, ("go north", "-= Attic =-\nAn attic.", ["go east", "go south", "look"]))
    assert choose_action(msgs, 0) == "go east"
    assert all(choose_action(chat(memory), s) == "go north" for s in range(5))
    # the same names, another map: once a move contradicts memory, memory is dropped
    elsewhere = chat(memory, ("go north", "-= Cellar =-\nA cellar.", ["go east", "go south", "look"]))
    assert {choose_action(elsewhere, s) for s in range(8)} == {"go east"}  # exploring (fresh exit)


def test_a_remembered_solution_is_replayed_and_a_remembered_failure_avoided() -> None:
    memory = "\n".join(
        [
            "Task: find the potato and take it",
            "Outcome: success (score 1) in 3 steps",
            "go north -> Nothing happens.",
            "go east -> A room without a header.",
            "take potato -> You take the potato.",
        ]
    )
    mem = read_memory(memory, frozenset({"potato"}), frozenset({"take"}))
    assert mem.failed == {(None, "go north")} and mem.solutions == [["go east", "take potato"]]
    # every seed replays the solution instead of exploring, and never tries what failed before
    assert {choose_action(chat(memory), seed) for seed in range(6)} == {"go east"}
    other = memory.replace("success", "failure")
    assert {choose_action(chat(other), seed) for seed in range(6)} == {"go east"}  # "go north" failed


def test_deterministic_and_the_default_for_domains_without_a_policy() -> None:
    msgs = chat("", ("go east", "-= Den =-\nA den.", ["go north", "go west", "go south", "look"]))
    assert len({choose_action(msgs, 3) for _ in range(3)}) == 1
    assert {choose_action(msgs, s) for s in range(12)} >= {"go north", "go south"}  # seeds vary ties
    assert load_policy(None) is choose_action
    from alma_tui.domains.household import HouseholdDomain
    from alma_tui.offline.policy import choose_action as household

    assert load_policy(HouseholdDomain.offline_policy) is household
