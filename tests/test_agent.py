"""Acting agent: prompt format, action matching, bounded history, offline policy, baselines."""

from __future__ import annotations

import json
import math

from alma_tui.agent.loop import CORRECTION, match_action, run_episode, trim_history
from alma_tui.agent.prompt import MEMORY_HEADING, step_message, system_prompt
from alma_tui.design_api import Episode, Query, Services, Step
from alma_tui.designs import BUILTIN, builtin_source, load_builtin_class
from alma_tui.domains.household import HouseholdDomain
from alma_tui.llm.local_embed import hash_embed
from alma_tui.offline.policy import choose_action, memory_votes, parse_goal

ADM = [
    "go to cabinet 1",
    "go to countertop 1",
    "open cabinet 3",
    "take mug 1 from cabinet 3",
    "look",
]
RECS = frozenset({"cabinet 1", "cabinet 3", "cabinet 4", "drawer 2", "sinkbasin 1", "coffeemachine 1"})


def test_prompt_format():
    assert system_prompt("Do things.", "") == "Do things."
    assert system_prompt("Do things.", "  \n") == "Do things."
    assert system_prompt("Do things.", "mug: cabinet 4") == f"Do things.\n\n{MEMORY_HEADING}\nmug: cabinet 4"
    assert step_message("You see x.", ["look", "go to a 1"]) == "You see x.\n\nAdmissible actions:\n- look\n- go to a 1"


def test_match_action():
    assert match_action("look", ADM) == "look"
    assert match_action("  Go To  Cabinet 1. ", ADM) == "go to cabinet 1"
    assert match_action("Action: `open cabinet 3`", ADM) == "open cabinet 3"
    assert match_action("I think so.\n> take mug 1 from cabinet 3", ADM) == "take mug 1 from cabinet 3"
    assert match_action("take mug 1 from cabinet3", ADM) == "take mug 1 from cabinet 3"
    assert match_action("dance wildly", ADM) is None
    assert match_action("", ADM) is None


def test_trim_history():
    msgs = [{"role": "system", "content": "s"}, {"role": "user", "content": "goal"}]
    for i in range(50):
        msgs += [{"role": "assistant", "content": f"a{i}"}, {"role": "user", "content": f"o{i}"}]
    out = trim_history(msgs, 20)
    assert len(out) == 42 and out[:2] == msgs[:2] and out[2]["content"] == "a30" and out[-1]["content"] == "o49"


def test_run_episode_unmatched_counts_and_corrects():
    d = HouseholdDomain()
    task = d.tasks("train", 0, 1)[0]
    seen: list[list[dict]] = []

    def complete(messages):
        seen.append([dict(m) for m in messages])
        return "dance wildly"

    ep, info = run_episode(d.make_env(task), task, d, "", complete)
    assert info["steps"] == d.max_steps == ep.step_count and not info["success"]
    assert info["invalid_actions"] == d.max_steps
    assert ep.steps[0].observation == "Nothing happens." and ep.steps[0].action == "dance wildly"
    assert CORRECTION in seen[1][-1]["content"]
    assert all(len(m) <= 2 + 2 * 20 for m in seen)
    assert seen[0][0]["content"] == d.instructions


def test_parse_goal():
    g = parse_goal("Your task is to: put a clean mug in coffeemachine 1.")
    assert (g.kind, g.verb, g.target) == ("mug", "clean", "coffeemachine 1")
    g = parse_goal("Your task is to: put a hot potato in fridge 1.")
    assert (g.kind, g.verb) == ("potato", "heat")
    assert parse_goal("Your task is to: put an apple in shelf 2.").verb == ""


def test_memory_votes_rules():
    mem = "\n".join(
        [
            "Task: put a clean mug in coffeemachine 1",  # goal line: ignored (after 'put')
            "mug: cabinet 4 (x3), drawer 2 (x1)",  # counts per mention
            "open cabinet 3 -> You open the cabinet 3. In it, you see a mug 1.",
            "clean mug 1 with sinkbasin 1 -> You clean the mug 1 using the sinkbasin 1.",
            "mug not found in cabinet 1",
            "apple: cabinet 1 (x9)",  # other object: no vote
            "mug seen in shelf 9",  # unknown receptacle: ignored
        ]
    )
    obj, tool = memory_votes(mem, "mug", "clean", "coffeemachine 1", RECS)
    assert obj["cabinet 4"] > obj["cabinet 3"] > obj["drawer 2"] > 0 > obj["cabinet 1"]
    assert "coffeemachine 1" not in obj and "sinkbasin 1" not in obj
    assert tool == {"sinkbasin 1": tool["sinkbasin 1"]} and tool["sinkbasin 1"] > 0
    obj2, _ = memory_votes("mug found 3 times in drawer 2\nmug in cabinet 4", "mug", "", "coffeemachine 1", RECS)
    assert obj2["drawer 2"] > obj2["cabinet 4"]


def _first_search(memory: str, seed: int = 0) -> str:
    d = HouseholdDomain()
    task = next(t for t in d.tasks("train", 0, 40) if t.meta["house"] == "cottage")
    env = d.make_env(task)
    obs = env.reset()
    msgs = [
        {"role": "system", "content": system_prompt(d.instructions, memory)},
        {"role": "user", "content": step_message(obs, env.admissible_actions())},
    ]
    return task, choose_action(msgs, seed)


def test_memory_votes_steer_policy():
    task, _ = _first_search("")
    kind = task.meta["object"]
    recs = [r for r in ("drawer 3", "shelf 2", "cabinet 6") if r != task.meta["target"]]
    for r in recs:
        assert _first_search(f"{kind}: {r} (x5)")[1] == f"go to {r}"
    starts = {_first_search("", seed)[1] for seed in range(8)}
    assert len(starts) > 1  # without memory the search order depends on the seed
    assert _first_search("", 3)[1] == _first_search("", 3)[1]


def test_offline_policy_plays_and_memory_helps():
    d = HouseholdDomain()
    tasks = d.tasks("train", 0, 30)
    from alma_tui.domains.household import PREFERENCES

    wins = {"none": 0, "oracle": 0}
    for i, task in enumerate(tasks):
        env = d.make_env(task)
        _, info = run_episode(env, task, d, "", lambda m, s=i: choose_action(m, s))
        assert info["invalid_actions"] == 0
        wins["none"] += info["success"]
        pri, sec = PREFERENCES[task.meta["house"]][task.meta["object"]]
        mem = f"{task.meta['object']}: {pri} (x5), {sec} (x2)"
        _, info = run_episode(d.make_env(task), task, d, mem, lambda m, s=i: choose_action(m, s))
        wins["oracle"] += info["success"]
    assert 0 < wins["none"] < wins["oracle"] - 8


def test_hash_embed():
    a, b, c = hash_embed(["put a mug in cabinet 1", "put a mug in cabinet 2", "heat an egg"])
    assert math.isclose(sum(x * x for x in a), 1.0, rel_tol=1e-9)
    cos = lambda u, v: sum(x * y for x, y in zip(u, v, strict=False))  # noqa: E731
    assert cos(a, b) > cos(a, c)
    assert hash_embed(["put a mug in cabinet 1"]) == [a]
    assert hash_embed([""], dim=8) == [[0.0] * 8]


def _episode(goal: str, house: str, success: bool) -> Episode:
    return Episode(
        domain="household",
        task_id=f"t-{goal}",
        goal=goal,
        initial_observation=f"You are in the middle of a room in a {house}. You see x.",
        steps=[
            Step("You arrive at cabinet 4. The cabinet 4 is closed.", "go to cabinet 4"),
            Step(
                "You open the cabinet 4. The cabinet 4 is open. In it, you see a mug 1.",
                "open cabinet 4",
            ),
        ],
        success=success,
        score=float(success),
        step_count=2,
    )


def test_builtin_designs():
    assert {"no_memory", "trajectory_retrieval"} <= set(BUILTIN)
    assert BUILTIN["no_memory"][0].startswith("No memory")
    assert "class TrajectoryRetrieval(MemoryDesign)" in builtin_source("trajectory_retrieval")
    services = Services(embed=hash_embed)
    nm = load_builtin_class("no_memory")(services)
    nm.update(_episode("put a mug in coffeemachine 1", "cottage", True))
    assert nm.retrieve(Query("put a mug in coffeemachine 1", "")) == ""
    json.dumps(nm.snapshot())

    calls = []
    tr = load_builtin_class("trajectory_retrieval")(Services(embed=lambda t: calls.append(t) or hash_embed(t)))
    assert tr.retrieve(Query("put a mug in coffeemachine 1", "")) == ""
    tr.update(_episode("put a mug in coffeemachine 1", "cottage", True))
    tr.update(_episode("heat an egg and put it in fridge 1", "apartment", False))
    q = Query("put a mug in coffeemachine 1", "You are in the middle of a room in a cottage. You see x.")
    out = tr.retrieve(q)
    assert "open cabinet 4 -> You open the cabinet 4" in out and "put a mug in coffeemachine 1" in out
    n = len(calls)
    assert tr.retrieve(q) == out and len(calls) == n  # keys and queries embedded once
    assert tr.retrieve(Query("zzz qqq", "")) == ""  # nothing passes the threshold: no crash
    json.dumps(tr.snapshot())
    assert tr.snapshot()["episodes"] == 2
