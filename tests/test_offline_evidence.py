"""The offline meta agent reads the evaluation log: failure classes and evidence-ranked changes."""

from __future__ import annotations

import json
import re

import pytest

from alma_tui.engine.prompts import S_PARENT_CODE, S_PARENT_EVALUATION
from alma_tui.offline import mechanisms as dm
from alma_tui.offline.evidence import WHAT, classify
from alma_tui.offline.meta import analyze


def ep(goal: str, actions: list[str], memory: str = "", success: bool = False) -> dict:
    return {"task_id": goal, "goal": goal, "success": success, "memory": memory, "last_actions": actions}


CRAFTED = [
    (
        ep("put a mug in shelf 1", ["go to cabinet 2", "take mug 1 from cabinet 2", "go to shelf 1", "put"], "", True),
        "success_explored",
    ),
    (
        ep(
            "put a mug in shelf 1",
            ["go to drawer 2", "open drawer 2", "take mug 1 from drawer 2"],
            "mug found in drawer 2 (x4)",
            True,
        ),
        "success_guided",
    ),
    (ep("put a mug in shelf 1", ["look", "look", "look", "go to drawer 1"]), "repeated_action"),
    (
        ep(
            "put a hot mug in shelf 1",
            [
                "take mug 1 from drawer 2",
                "go to microwave 1",
                "heat mug 1 with microwave 1",
                "go to stoveburner 1",
                "heat mug 1 with stoveburner 1",
            ],
            "mug found in drawer 2 (x4)",
        ),
        "wrong_tool",
    ),
    (
        ep("put two mugs in shelf 1", ["go to drawer 1", "open drawer 1"], "apple found in drawer 2 (x3)"),
        "memory_silent_plural",
    ),
    (ep("put a mug in shelf 1", ["go to drawer 1", "open drawer 1"], ""), "memory_silent"),
    (
        ep(
            "put a mug in shelf 1",
            ["go to drawer 2", "open drawer 2", "go to cabinet 1", "open cabinet 1"],
            "mug found in drawer 2 (x4)",
        ),
        "memory_misled",
    ),
    (
        ep(
            "put a hot mug in shelf 1",
            ["go to drawer 2", "open drawer 2", "take mug 1 from drawer 2", "go to microwave 1"],
            "mug found in drawer 2 (x4)",
        ),
        "step_limit_after_take",
    ),
]


@pytest.mark.parametrize(("episode", "expected"), CRAFTED, ids=[c for _, c in CRAFTED])
def test_classifier_on_crafted_episodes(episode: dict, expected: str) -> None:
    assert classify(episode) == expected


FACTS = dm.render(
    {**dm.DEFAULT_GENOME, "store": "facts", "evidence": "seen", "rank": "count", "format": "counts", "top_k": 3}
)
SILENT_PLURAL = ep("put two mugs in shelf 1", ["go to drawer 1", "open drawer 1"], "apple found in drawer 2 (x3)")
MISLED = ep(
    "put a mug in shelf 1", ["go to drawer 2", "open drawer 2", "go to cabinet 1"], "mug found in drawer 2 (x4)"
)
TOOL = ep(
    "put a hot mug in shelf 1",
    [
        "take mug 1 from drawer 2",
        "go to microwave 1",
        "heat mug 1 with microwave 1",
        "go to toaster 1",
        "heat mug 1 with toaster 1",
    ],
    "mug found in drawer 2 (x4)",
)
WIN = ep("put a mug in shelf 1", ["go to drawer 2", "take mug 1 from drawer 2"], "mug found in drawer 2 (x4)", True)


def _analysis(episodes: list[dict]) -> dict:
    log = {"design_id": "d009", "score": 0.5, "no_memory_score": 0.2, "episodes": episodes}
    return analyze({S_PARENT_CODE: FACTS, S_PARENT_EVALUATION: json.dumps(log)}, seed=0)


def test_three_logs_with_different_failure_mixes_give_three_top_suggestions_citing_counts() -> None:
    """Same parent code, three logs: the top suggestion follows the dominant failure, and
    its reason cites that failure's count out of the sampled episodes."""
    logs = {
        "plurals": [SILENT_PLURAL] * 5 + [MISLED] + [WIN] * 2,
        "house": [MISLED] * 4 + [TOOL] + [WIN] * 3,
        "failures": [TOOL] * 6 + [SILENT_PLURAL] + [WIN],
    }
    tops = {}
    for expected, episodes in logs.items():
        a = _analysis(episodes)
        top = a["suggested_changes"][0]
        tops[expected] = top["what"]
        assert top["what"] == WHAT[expected]
        n_top = max(sum(1 for e in episodes if e is x) for x in (SILENT_PLURAL, MISLED, TOOL))
        assert f"{n_top}/{len(episodes)} sampled episodes" in top["why"]
        assert f"{len(episodes)} sampled deployment episodes" in a["content_quality_issues"][0]
    assert len(set(tops.values())) == 3


def test_every_suggestion_text_maps_back_to_its_operator() -> None:
    """The writer turns suggestion text into genome changes by keywords: each change the
    analysis can propose must map to its own operator first (or to one that is a no-op on
    any parent that change applies to)."""
    for op, what in WHAT.items():
        ops = dm.operators_for(what)
        assert op in ops, (op, ops)
        assert ops.index(op) == 0 or ops[0] == "start_memory", (op, ops)


def test_writer_applies_the_evidence_to_the_parent() -> None:
    from alma_tui.engine.prompts import S_ANALYSIS
    from alma_tui.offline.meta import write

    a = _analysis([SILENT_PLURAL] * 5 + [WIN])
    children = [
        dm.genome_from_code(write({S_PARENT_CODE: FACTS, S_ANALYSIS: json.dumps(a)}, seed=s).split("```python\n")[1])
        for s in range(10)
    ]
    assert sum(1 for g in children if g["plurals"]) >= 6


def test_writer_combines_mechanisms_of_another_archived_design() -> None:
    """Crossover: the log shows two problems (plurals, broken tools); the other archived
    design already remembers failed tools, so children fix one and take the other from it,
    and say so in their lineage."""
    from alma_tui.engine import prompts
    from alma_tui.engine.meta_agent import ParentInfo
    from alma_tui.engine.prompts import S_OTHER_DESIGN
    from alma_tui.offline.meta import respond

    other = dm.render({**dm.genome_from_code(FACTS), "failures": True})
    a = _analysis([SILENT_PLURAL] * 4 + [TOOL] * 3 + [WIN])
    assert [c["what"] for c in a["suggested_changes"][:2]] == [WHAT["plurals"], WHAT["failures"]]
    # through the real prompt: the engine's ParentInfo carries the other design
    info = ParentInfo(
        design_id="d005", title="facts", code=FACTS, other_design={"design_id": "d007", "title": "x", "code": other}
    )
    messages = prompts.write_messages(info, json.dumps(a))
    assert "d007" in prompts.parse_prompt(messages)[1][S_OTHER_DESIGN]
    combined = 0
    for seed in range(6):
        text = respond(messages, seed)
        child = dm.genome_from_code(text.split("```python\n")[1])
        combined += child["plurals"] and child["failures"] and "combined with d007" in text
    assert combined >= 2  # the others drew the second change themselves, or only the second


def test_analysis_text_shows_scores_rounded_as_the_archive_does() -> None:
    """The analysis is read in the app: '0.7777777777777777' is noise, '0.778' is a score."""
    log = {"design_id": "d004", "score": 7 / 9, "no_memory_score": 13 / 36, "episodes": [WIN, TOOL]}
    a = analyze({S_PARENT_CODE: FACTS, S_PARENT_EVALUATION: json.dumps(log)}, seed=0)
    assert "(score 0.778 vs no-memory 0.361)" in a["lessons_from_previous"]
    assert not re.search(r"\d\.\d{4,}", json.dumps(a))


def test_misled_in_the_right_house_asks_for_recency_and_the_writer_adds_a_window() -> None:
    """A house-aware parent still misled: places may be stale (they drift with the seasons)."""
    from alma_tui.engine.prompts import S_ANALYSIS
    from alma_tui.offline.meta import write

    house = dm.render({**dm.genome_from_code(FACTS), "context": "house"})
    log = {"design_id": "d009", "score": 0.5, "no_memory_score": 0.2, "episodes": [MISLED] * 4 + [WIN] * 2}
    a = analyze({S_PARENT_CODE: house, S_PARENT_EVALUATION: json.dumps(log)}, seed=0)
    top = a["suggested_changes"][0]
    assert top["what"] == WHAT["recency"] and "4/6 sampled episodes" in top["why"]
    windows = [
        dm.genome_from_code(write({S_PARENT_CODE: house, S_ANALYSIS: json.dumps(a)}, seed=s).split("```python\n")[1])[
            "window"
        ]
        for s in range(6)
    ]
    assert sum(1 for w in windows if w) >= 3


def test_a_window_design_ranks_places_seen_near_the_tasks_day_first() -> None:
    from alma_tui.design_api import Episode, Query, Services, Step

    code = dm.render({**dm.genome_from_code(FACTS), "window": 18})
    namespace: dict = {}
    exec(compile(code, "design.py", "exec"), namespace)  # a trusted, generated module
    cls = next(v for k, v in namespace.items() if k.endswith("Memory") and isinstance(v, type))
    design = cls(Services(llm=lambda p, s=None: "", embed=lambda t: [[0.0] for _ in t]))
    room = "You are in the middle of a room. Looking quickly around you, you see a drawer 5, and a cabinet 1."

    def seen(day: int, place: str) -> Episode:
        obs = f"You open the {place}. The {place} is open. In it, you see a mug 1."
        return Episode(
            "household", f"t{day}", "put a mug in shelf 1", f"{room}\n\nIt is day {day}.", [Step(obs, f"open {place}")]
        )

    for ep in (seen(5, "drawer 5"), seen(12, "drawer 5"), seen(20, "drawer 5"), seen(80, "cabinet 1")):
        design.update(ep)
    late = design.retrieve(Query("put a mug in shelf 1", f"{room}\n\nIt is day 85."))
    early = design.retrieve(Query("put a mug in shelf 1", f"{room}\n\nIt is day 8."))
    assert late.splitlines()[0] == "mug found in cabinet 1 (x1)"  # fresh beats 3 stale sightings
    assert early.splitlines()[0] == "mug found in drawer 5 (x3)"
