"""The offline meta agent's domain-general path (TextWorld, Baba Is AI, plug-ins): prompts of
those domains get designs over generic episode facts, and what they retrieve steers the
generic acting agent; household prompts keep the household mechanisms."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

from alma_tui.agent.prompt import step_message, system_prompt
from alma_tui.design_api import Episode, Query, Step
from alma_tui.engine import prompts
from alma_tui.engine.meta_agent import Analysis, ParentInfo
from alma_tui.offline import generic_designs as gd
from alma_tui.offline.generic_policy import choose_action
from alma_tui.offline.meta import respond
from alma_tui.sandbox import validate_design

ROOT = Path(__file__).resolve().parents[1]
GOAL = "find the carrot and take it"


def _room(name: str, exits: str) -> str:
    return f"-= {name} =-\nYou are in a {name.lower()}. {exits}"


# a quest of one world: Kitchen -east-> Hall -north-> Den, the carrot in the Den's chest
EPISODE = Episode(
    domain="textworld",
    task_id="tw-a",
    goal=GOAL,
    initial_observation=_room("Kitchen", "There is an exit to the east.") + f"\n\nYour task is to: {GOAL}.",
    steps=[
        Step(_room("Hall", "There are exits to the north, south and west."), "go east"),
        Step("You can't go that way.", "go up"),
        Step(_room("Den", "There is an exit to the south. You see a closed chest."), "go north"),
        Step("You open the chest, revealing a carrot.", "open chest"),
        Step("You take the carrot from the chest.", "take carrot from chest"),
    ],
    success=True,
    score=1.0,
    step_count=5,
)


def _parent(code: str, domain: str, success: bool = False) -> ParentInfo:
    episodes = [
        {
            "task_id": f"tw-{i}",
            "goal": GOAL,
            "success": success,
            "step_count": 80,
            "memory": "Task: find the carrot and take it\n> go east\n-= Hall =-",
            "actions": ["go east", "go west"] * 3,
        }
        for i in range(4)
    ]
    return ParentInfo(
        design_id="p1",
        title="parent",
        code=code,
        score=0.5,
        run_scores=[0.5, 0.5, 0.5],
        no_memory_score=0.5,
        episodes=episodes,
        errors=[],
        domain_name=domain,
        domain_description="a text domain",
    )


def _child(parent: ParentInfo) -> str:
    analysis = respond(prompts.analyze_messages(parent, Analysis.model_json_schema()), 0)
    Analysis.model_validate(json.loads(analysis))  # schema-valid, as the engine requires
    answer = respond(prompts.write_messages(parent, analysis), 0)
    m = re.search(r"```python\n(.*?)```", answer, re.DOTALL)
    assert m and answer.startswith("TITLE: "), answer[:200]
    return m.group(1)


def test_textworld_parents_get_generic_children_household_parents_do_not() -> None:
    traj = (ROOT / "alma_tui" / "designs" / "trajectory_retrieval.py").read_text()
    child = _child(_parent(traj, "textworld"))
    genome = gd.genome_from_code(child)
    assert gd.is_generic(child) and genome["store"] == "digest"  # whole episodes failed: aggregate them
    grandchild = _child(_parent(child, "textworld"))
    assert gd.is_generic(grandchild) and gd.genome_from_code(grandchild) != genome  # the next mechanism
    assert not gd.is_generic(_child(_parent(traj, "household")))
    none = (ROOT / "alma_tui" / "designs" / "no_memory.py").read_text()
    assert gd.genome_from_code(_child(_parent(none, "babaisai")))["store"] == "episodes"


def test_a_digest_design_runs_in_the_sandbox_and_steers_the_generic_agent() -> None:
    code = gd.render({**gd.GENERIC_DEFAULT, "store": "digest", "sightings": True, "map": True, "failures": True})
    query = Query(GOAL, _room("Hall", "There are exits to the north, south and west."), domain="textworld")
    report = validate_design(code, episodes=[EPISODE], queries=[query])
    memory = report["retrieved"][0]
    assert "take carrot from chest" in memory and "go north -> -= Den =-" in memory
    # a later quest of the same world starts in the Hall: memory sends it north, to the Den
    first = query.observation + f"\n\nYour task is to: {GOAL}."
    adm = ["go north", "go south", "go west", "look"]

    def chat(mem: str) -> list[dict]:
        return [
            {"role": "system", "content": system_prompt("Play.", mem)},
            {"role": "user", "content": step_message(first, adm)},
        ]

    assert {choose_action(chat(memory), s) for s in range(8)} == {"go north"}
    assert len({choose_action(chat(""), s) for s in range(8)}) > 1  # without it: a seeded guess


def test_repair_rebuilds_a_generic_module_from_its_genome() -> None:
    genome = {**gd.GENERIC_DEFAULT, "store": "digest", "map": True}
    broken = gd.render(genome).replace(
        "def retrieve(self, query: Query) -> str:", "def retrieve(self, query):\n        x = y"
    )
    parent = _parent(gd.render(gd.GENERIC_DEFAULT), "textworld")
    messages = prompts.repair_messages(parent, broken, "NameError: name 'y' is not defined")
    answer = respond(messages, 0)
    fixed = re.search(r"```python\n(.*?)```", answer, re.DOTALL)
    assert fixed and gd.genome_from_code(fixed.group(1)) == gd.normalise(genome) and "x = y" not in fixed.group(1)


def _merge_child(first: dict, second: dict, first_better: int, second_better: int) -> str:
    parent = _parent(gd.render(first), "textworld")
    other = dataclasses.replace(_parent(gd.render(second), "textworld"), design_id="p2")
    parent.second_parent = other
    parent.comparison = {
        "first": "p1",
        "second": "p2",
        "first_score": 0.5,
        "second_score": 0.4,
        "first_better": first_better,
        "second_better": second_better,
        "tied": 0,
        "tasks": [],
    }
    answer = respond(prompts.merge_messages(parent, "{}"), 0)
    m = re.search(r"```python\n(.*?)```", answer, re.DOTALL)
    assert m and answer.startswith("TITLE: "), answer[:200]
    return m.group(1)


def test_a_textworld_merge_keeps_the_base_and_takes_what_the_donor_wins_with() -> None:
    base = {**gd.GENERIC_DEFAULT, "store": "digest", "map": True}
    donor = {**gd.GENERIC_DEFAULT, "store": "episodes", "sightings": True, "failures": True, "top_k": 3}
    child = _merge_child(base, donor, first_better=3, second_better=1)
    genome = gd.genome_from_code(child)
    assert gd.is_generic(child) and "merge of p1 (base) and p2" in child
    assert genome["store"] == "digest" and genome["map"] and genome["sightings"] and genome["failures"]
    assert genome["top_k"] == 3
    query = Query(GOAL, _room("Hall", "There are exits to the north, south and west."), domain="textworld")
    assert "take carrot from chest" in validate_design(child, episodes=[EPISODE], queries=[query])["retrieved"][0]
    # a donor that wins no task gives only its richer store: the better parent's memory stays
    lean = gd.genome_from_code(_merge_child(donor, base, first_better=4, second_better=0))
    assert lean["store"] == "digest" and lean["sightings"] and not lean["map"] and lean["top_k"] == 3


def test_a_merge_that_would_copy_a_parent_takes_a_change_instead() -> None:
    # the search's d003 + d004 on textworld: the base holds the richer store and the donor wins
    # no task, so the plain merge was the base again, rejected three times as its duplicate
    base = {**gd.GENERIC_DEFAULT, "store": "digest"}
    donor = {**gd.GENERIC_DEFAULT, "store": "episodes"}
    code = _merge_child(base, donor, first_better=5, second_better=0)
    child = gd.genome_from_code(code)
    assert gd.normalise(child) not in (gd.normalise(dict(base)), gd.normalise(dict(donor)))
    assert child["store"] == "digest" and "operators: " in code  # the base stays, plus one change
    assert gd.is_generic(code)


def test_memories_cut_at_the_budget_are_seen_and_the_budget_raised() -> None:
    # a child of the no-memory seed returns whole episodes under the default 4,000 characters:
    # an 80-step TextWorld episode fills that, and the step that found the goal is cut off
    code = gd.render(gd.GENERIC_DEFAULT)
    parent = _parent(code, "textworld")
    long_memory = "Task: find the carrot and take it\n" + "\n".join(f"go east -> -= Room {i} =-" for i in range(300))
    parent.episodes = [{**e, "memory": long_memory[: gd.GENERIC_DEFAULT["char_budget"]]} for e in parent.episodes]
    analysis = json.loads(respond(prompts.analyze_messages(parent, Analysis.model_json_schema()), 0))
    first = analysis["suggested_changes"][0]
    assert "character budget" in first["what"] and "4/4 memories filled the 4000-character budget" in first["why"]
    child = gd.genome_from_code(_child(parent))
    assert child["char_budget"] == 8000 and child["store"] == "episodes"
    # memories well under the budget call for no such change
    short = _parent(code, "textworld")
    analysis = json.loads(respond(prompts.analyze_messages(short, Analysis.model_json_schema()), 0))
    assert all("character budget" not in c["what"] for c in analysis["suggested_changes"])


def test_a_child_of_trajectory_retrieval_keeps_whole_episodes() -> None:
    traj = (ROOT / "alma_tui" / "designs" / "trajectory_retrieval.py").read_text()
    genome = gd.genome_from_code(traj)
    assert genome["store"] == "episodes" and genome["char_budget"] == 12000  # nothing cut, as its parent
