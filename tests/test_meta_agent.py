"""Meta agent: prompts, JSON retry, code extraction, and the offline meta LLM.

Fast (no LLM, no sandbox process): designs are exec'd in-process here; the
sandbox has its own tests.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from alma_tui.design_api import Episode, MemoryDesign, Query, Services, Step
from alma_tui.engine import prompts
from alma_tui.engine.meta_agent import (
    Analysis,
    MetaAgent,
    MetaAgentError,
    ParentInfo,
    extract_code,
    extract_json,
    extract_title,
)
from alma_tui.offline import mechanisms as dm
from alma_tui.offline.meta import respond

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------
# fixtures: synthetic household-like episodes
# ---------------------------------------------------------------------------


def _episode(i: int, kind: str, place: str, house: str, verb: str = "", success: bool = True) -> Episode:
    recs = "a cabinet 1, a cabinet 2, a drawer 1, a countertop 1, a microwave 1, a sinkbasin 1, a fridge 1"
    adj = {"heat": "hot ", "cool": "cool ", "clean": "clean "}.get(verb, "")
    goal = f"put a {adj}{kind} in countertop 1"
    obs0 = (
        f"You are in the middle of a room in a {house}. Looking quickly around you, "
        f"you see {recs}.\n\nYour task is to: {goal}."
    )
    steps = [
        Step("You arrive at drawer 1. The drawer 1 is closed.", "go to drawer 1"),
        Step("You open the drawer 1. The drawer 1 is open. In it, you see a pen 1.", "open drawer 1"),
        Step(
            f"You arrive at {place}. On the {place}, you see a {kind} 1, and a apple 2.",
            f"go to {place}",
        ),
    ]
    if success:
        steps.append(Step(f"You pick up the {kind} 1 from the {place}.", f"take {kind} 1 from {place}"))
        if verb:
            tool = {"heat": "microwave 1", "cool": "fridge 1", "clean": "sinkbasin 1"}[verb]
            steps.append(Step(f"You arrive at {tool}.", f"go to {tool}"))
            steps.append(Step(f"You {verb} the {kind} 1 using the {tool}.", f"{verb} {kind} 1 with {tool}"))
        steps.append(Step("You put it.", f"put {kind} 1 in/on countertop 1", 1.0))
    return Episode("household", f"t{i}", goal, obs0, steps, success, float(success), len(steps))


SYNTHETIC = [
    _episode(0, "mug", "cabinet 2", "cottage", "heat"),
    _episode(1, "mug", "cabinet 2", "cottage"),
    _episode(2, "apple", "countertop 1", "apartment", "cool"),
    _episode(3, "mug", "drawer 1", "farmhouse", success=False),
    _episode(4, "egg", "cabinet 1", "apartment", "clean"),
]


def _household_episodes(n: int = 4) -> list[Episode]:
    """Real episodes from the household domain with the offline policy, if both exist."""
    try:
        from alma_tui.agent.loop import run_episode
        from alma_tui.domains.household import HouseholdDomain
        from alma_tui.offline.policy import choose_action
    except ImportError:
        return []
    dom = HouseholdDomain()
    out = []
    for i, t in enumerate(dom.tasks("train", 3, n)):
        ep, _ = run_episode(dom.make_env(t), t, dom, "", lambda m, s=i: choose_action(m, s))
        out.append(ep)
    return out


def _parent(code: str, design_id: str = "p1", **kw) -> ParentInfo:
    eps = []
    for i, e in enumerate(SYNTHETIC * 2):
        eps.append(
            {
                "task_id": f"d{i}",
                "goal": e.goal,
                "success": i % 3 == 0,
                "step_count": 12,
                "memory": "" if i % 4 == 0 else f"Task: x\n> go to cabinet {i % 3 + 1}\nYou arrive at cabinet 1.",
                "actions": [s.action for s in e.steps],
            }
        )
    base = dict(
        design_id=design_id,
        title="parent",
        code=code,
        score=0.4,
        run_scores=[0.4, 0.35, 0.45],
        no_memory_score=0.3,
        episodes=eps,
        errors=[],
        domain_name="household",
        domain_description="ALFWorld-like text households",
    )
    base.update(kw)
    return ParentInfo(**base)


def _builtin(name: str) -> str:
    path = ROOT / "alma_tui" / "designs" / f"{name}.py"
    if path.exists():
        return path.read_text()
    return dm.render(dm.NO_MEMORY_GENOME if name == "no_memory" else dm.DEFAULT_GENOME)


def _load(code: str) -> type[MemoryDesign]:
    ns: dict = {"__name__": "child"}
    exec(compile(code, "<child>", "exec"), ns)
    classes = [v for v in ns.values() if isinstance(v, type) and issubclass(v, MemoryDesign) and v is not MemoryDesign]
    assert len(classes) == 1
    return classes[0]


def _exercise(code: str, episodes: list[Episode]) -> list[str]:
    """update/retrieve/snapshot like the validator; returns the retrieved texts."""
    calls: list[list[str]] = []

    def embed(texts: list[str]) -> list[list[float]]:
        calls.append(texts)
        return [[float(len(t) % 7), float(t.count("mug")), 1.0] for t in texts]

    design = _load(code)(Services(embed=embed))
    for e in episodes:
        design.update(e)
    outs = []
    for goal in (
        "put a hot mug in countertop 1",
        "put a pan in shelf 2",
        "put a cool apple in diningtable 1",
    ):
        obs = "You are in the middle of a room in a cottage. Looking quickly around you, you see a cabinet 1."
        out = design.retrieve(Query(goal, obs))
        assert isinstance(out, str)
        outs.append(out)
    json.dumps(design.snapshot())
    return outs


def _offline(seed: int):
    return lambda messages: respond(messages, seed)


# ---------------------------------------------------------------------------
# prompts
# ---------------------------------------------------------------------------


def test_prompts_have_sections_and_round_trip() -> None:
    parent = _parent(
        _builtin("trajectory_retrieval"),
        previous_suggestion="Do X",
        previous_improved=False,
        hints=["prefer short memories"],
    )
    schema = Analysis.model_json_schema()
    cases = {
        "analyze": prompts.analyze_messages(parent, schema),
        "write": prompts.write_messages(parent, '{"suggested_changes": []}'),
        "repair": prompts.repair_messages(parent, "class X: pass", "NameError: boom"),
    }
    for task, msgs in cases.items():
        assert msgs[0]["role"] == "system" and msgs[1]["role"] == "user"
        user = msgs[1]["content"]
        assert user.startswith(f"### TASK: {task}\n")
        assert prompts.PROMPT_VERSION in user
        got_task, sections = prompts.parse_prompt(msgs)
        assert got_task == task
        assert "class MemoryDesign" in sections["DESIGN API"]
        assert "USER HINTS" in sections and "prefer short memories" in sections["USER HINTS"]
    _, s = prompts.parse_prompt(cases["analyze"])
    for name in (
        "DOMAIN",
        "PARENT CODE",
        "PARENT EVALUATION",
        "PREVIOUS SUGGESTION",
        "OUTPUT SCHEMA",
    ):
        assert name in s
    ev = json.loads(s["PARENT EVALUATION"])
    assert ev["score"] == 0.4 and ev["no_memory_score"] == 0.3 and ev["run_scores"]
    assert {True, False} <= {e["success"] for e in ev["episodes"]}  # stratified
    assert all(len(e["memory"]) <= prompts.MAX_MEMORY_CHARS + 40 for e in ev["episodes"])
    assert "Did it improve the score over the grandparent: no" in s["PREVIOUS SUGGESTION"]
    assert "memory_label" in s["OUTPUT SCHEMA"]
    assert s["PARENT CODE"] == parent.code.rstrip()
    _, w = prompts.parse_prompt(cases["write"])
    assert json.loads(w["ANALYSIS"]) == {"suggested_changes": []}
    _, r = prompts.parse_prompt(cases["repair"])
    assert r["FAILING CODE"] == "class X: pass" and "NameError" in r["ERROR"]


# ---------------------------------------------------------------------------
# JSON retry and extraction
# ---------------------------------------------------------------------------

VALID = {
    "lessons_from_previous": "n/a",
    "trajectory_assessments": [{"task_id": 7, "memory_label": "Potentially Useful", "how_it_could_help": "x"}],
    "content_quality_issues": [],
    "structure_issues": [],
    "suggested_changes": [{"priority": 1, "what": "aggregate counts", "why": "noise"}],
    "title_hint": "t",
}


def test_analyze_retries_on_invalid_json_then_succeeds() -> None:
    answers = iter(["Sure! here is my analysis: {not json", "```json\n" + json.dumps(VALID) + "\n```"])
    seen: list[list[dict]] = []

    def complete(messages: list[dict]) -> str:
        seen.append(messages)
        return next(answers)

    analysis, _raw = MetaAgent(complete).analyze(_parent("x = 1"))
    assert analysis.trajectory_assessments[0].task_id == "7"
    assert analysis.trajectory_assessments[0].memory_label == "potentially_useful"
    assert len(seen) == 2
    retry = seen[1]
    assert retry[-2]["role"] == "assistant" and "not valid" in retry[-1]["content"]


def test_analyze_retries_on_schema_violation_and_gives_up_clearly() -> None:
    bad = json.dumps({**VALID, "trajectory_assessments": [{"task_id": "1", "memory_label": "great"}]})
    calls = []

    def complete(messages: list[dict]) -> str:
        calls.append(1)
        return bad

    with pytest.raises(MetaAgentError, match="after 3 attempts"):
        MetaAgent(complete, max_json_retries=2).analyze(_parent("x = 1"))
    assert len(calls) == 3


def test_analysis_defaults_tolerate_missing_fields() -> None:
    a = Analysis.model_validate({"suggested_changes": [{"what": "x"}]})
    assert a.lessons_from_previous == "" and a.suggested_changes[0].priority == 1
    assert a.top_suggestion() == "x"
    assert "# Analysis" in a.to_markdown()


def test_extract_code_variants() -> None:
    mod = "import re\n\n\nclass A:\n    pass\n"
    assert extract_code(f"TITLE: t\n```python\n{mod}```\nDone.") == mod
    assert extract_code(f"Here:\n```\n{mod}```") == mod
    assert "class A" in extract_code(f"TITLE: t\nSure, the module:\n{mod}\nHope this helps!")
    with pytest.raises(MetaAgentError):
        extract_code("I cannot do that.")
    assert extract_json('prose {"a": [1, 2]} more prose') == {"a": [1, 2]}
    assert extract_json('```json\n{"b": 1}\n```') == {"b": 1}
    with pytest.raises(ValueError):
        extract_json("nope")


# ---------------------------------------------------------------------------
# offline meta LLM
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("base", ["no_memory", "trajectory_retrieval"])
def test_offline_analyze_is_schema_valid(base: str) -> None:
    agent = MetaAgent(_offline(0))
    analysis, raw_answer = agent.analyze(_parent(_builtin(base)))
    assert json.loads(raw_answer)  # the offline answer is plain valid JSON
    assert analysis.suggested_changes and analysis.title_hint
    assert len(analysis.trajectory_assessments) == len(_parent("").episodes[: prompts.MAX_EPISODES])
    labels = {t.memory_label for t in analysis.trajectory_assessments}
    if base == "trajectory_retrieval":
        assert "empty_or_bad_format" in labels
        assert any("fact" in c.what.lower() for c in analysis.suggested_changes)


def test_offline_write_children_are_valid_designs() -> None:
    real = _household_episodes()
    agent = MetaAgent(_offline(0))
    code = _builtin("trajectory_retrieval")
    parent_id = "trajectory_retrieval"
    facts_seen = False
    for gen in range(6):  # a chain: each child becomes the next parent
        parent = _parent(code, parent_id)
        analysis, _ = agent.analyze(parent)
        title, child, _ = agent.write(parent, analysis)
        for _attempt in range(3):
            try:
                outs = _exercise(child, SYNTHETIC + real)
                break
            except Exception as exc:  # an injected first-draft bug: repair must fix it
                title, child, _ = agent.repair(parent, child, f"{type(exc).__name__}: {exc}")
        else:  # pragma: no cover
            pytest.fail("repair never produced a working design")
        assert title and child != code
        assert "MECHANISMS = {" in child
        assert dm.genome_from_code(child) != dm.genome_from_code(code)
        if dm.genome_from_code(child)["store"] == "facts":
            facts_seen = True
            assert any("mug" in o for o in outs[:1])
        code, parent_id = child, f"g{gen}"
    assert facts_seen


def test_offline_write_is_deterministic_per_seed_and_varies_across_seeds() -> None:
    parent = _parent(_builtin("trajectory_retrieval"))
    analysis, _ = MetaAgent(_offline(0)).analyze(parent)
    a1 = MetaAgent(_offline(5)).write(parent, analysis)
    a2 = MetaAgent(_offline(5)).write(parent, analysis)
    assert a1 == a2
    children = {MetaAgent(_offline(s)).write(parent, analysis)[1] for s in range(8)}
    assert len(children) > 1


def test_repair_fixes_injected_bugs() -> None:
    genomes = [
        {"store": "facts", "evidence": "seen", "tools": True, "negatives": True},
        {"store": "facts", "context": "house"},
        {"store": "trajectory"},
        {"store": "actions", "similarity": "words", "object_filter": True},
    ]
    agent = MetaAgent(_offline(0))
    for g in genomes:
        for bug in dm.BUGS:
            buggy = dm.render(g, bug=bug)
            with pytest.raises((NameError, KeyError)):
                _exercise(buggy, SYNTHETIC)
            _, fixed, _ = agent.repair(_parent(dm.render(dm.DEFAULT_GENOME)), buggy, "NameError: x")
            _exercise(fixed, SYNTHETIC)
            assert dm.genome_from_code(fixed) == dm.normalise(g)
    # Bugs must fire even when memory stays empty (successes-only, all failed),
    # so validation always catches them instead of the full evaluation.
    failed_only = [e for e in SYNTHETIC if not e.success]
    for bug in dm.BUGS:
        with pytest.raises((NameError, KeyError)):
            _exercise(dm.render({"store": "actions", "source": "success"}, bug=bug), failed_only)


def test_offline_drafts_sometimes_carry_a_bug() -> None:
    parent = _parent(_builtin("trajectory_retrieval"))
    analysis, _ = MetaAgent(_offline(0)).analyze(parent)
    broken = 0
    for s in range(60):
        _, code, _ = MetaAgent(_offline(s)).write(parent, analysis)
        try:
            _exercise(code, SYNTHETIC)
        except (NameError, KeyError):
            broken += 1
    assert 1 <= broken <= 15


def test_random_genomes_render_to_working_modules() -> None:
    rng = random.Random(1)
    for _ in range(60):
        g = {k: rng.choice(v) for k, v in dm.CHOICES.items()}
        g["top_k"] = rng.randint(1, 8)
        g["char_budget"] = rng.choice([200, 900, 5000])
        code = dm.render(g)
        compile(code, "<g>", "exec")
        _exercise(code, SYNTHETIC)
        assert dm.genome_from_code(code) == dm.normalise(g)


def test_write_prompt_shows_builtin_examples_and_a_real_episode() -> None:
    from alma_tui.designs import builtin_source
    from alma_tui.engine import prompts
    from alma_tui.engine.meta_agent import ParentInfo

    parent = ParentInfo(
        design_id="d002",
        title="t",
        code=builtin_source("trajectory_retrieval"),
        example_episode={
            "episode": {"goal": "put a clean mug in coffeemachine 1"},
            "query": {"goal": "put a hot apple in fridge 1"},
        },
    )
    messages = prompts.write_messages(parent, "{}")
    text = messages[1]["content"]
    assert "### EXAMPLE DESIGNS" in text and "built-in design `dynamic_cheatsheet`" in text
    assert "### EXAMPLE EPISODE" in text and "put a clean mug in coffeemachine 1" in text
    # prompt caching: the first user message is the same for every parent, the parent comes after it
    other = ParentInfo(design_id="d007", title="u", code="class X: pass", example_episode=parent.example_episode)
    assert prompts.write_messages(other, '{"x": 1}')[:2] == messages[:2]
    assert "### PARENT CODE" in messages[2]["content"] and "### PARENT CODE" not in text
    task, sections = prompts.parse_prompt(prompts.write_messages(parent, "{}"))
    assert task == "write" and "PARENT CODE" in sections and "ANALYSIS" in sections


# ---------------------------------------------------------------------------
# near misses real models answer: accepted and normalised, not refused
# ---------------------------------------------------------------------------

# the answer that was refused three times in a real run (issue "Real models: accept what real
# models answer"): a string where a list is expected and a priority as a word
REAL_NEAR_MISS = {
    "lessons_from_previous": "No previous suggestion.",
    "trajectory_assessments": [{"task_id": "t1", "memory_label": "useful", "how_it_could_help": "route"}],
    "content_quality_issues": "The memory stores whole trajectories, which are too long.",
    "structure_issues": [],
    "suggested_changes": [{"priority": "High", "what": "keep only successful actions", "why": "shorter"}],
    "title_hint": "successful actions",
}


def _analyze(*answers: str) -> tuple[Analysis, list[list[dict]]]:
    it = iter(answers)
    seen: list[list[dict]] = []

    def complete(messages: list[dict]) -> str:
        seen.append(messages)
        return next(it)

    analysis, _raw = MetaAgent(complete).analyze(_parent("x = 1"))
    return analysis, seen


def test_real_near_miss_analysis_is_accepted_first_time() -> None:
    a, seen = _analyze(json.dumps(REAL_NEAR_MISS))
    assert len(seen) == 1
    assert a.content_quality_issues == ["The memory stores whole trajectories, which are too long."]
    assert a.suggested_changes[0].priority == 1
    assert a.top_suggestion() == "keep only successful actions (why: shorter)"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("High", 1),
        ("high", 1),
        ("HIGH priority", 1),
        ("critical", 1),
        ("Medium", 2),
        ("moderate", 2),
        ("low", 3),
        ("Low priority", 3),
        ("P1", 1),
        ("p2", 2),
        ("P3", 3),
        ("2", 2),
        (" 3 ", 3),
        ("2.0", 2),
        ("1 (high)", 1),
        ("priority: 2", 2),
        ("#2", 2),
        (2.0, 2),
        (0, 1),
        (None, 1),
    ],
)
def test_priority_words_and_numeric_strings(given: object, expected: int) -> None:
    a = Analysis.model_validate({"suggested_changes": [{"priority": given, "what": "x"}]})
    assert a.suggested_changes[0].priority == expected


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("one issue", ["one issue"]),
        ("- first\n- second", ["first", "second"]),
        ("* first\n* second\n", ["first", "second"]),
        ("1. first\n2) second", ["first", "second"]),
        ("\u2022 first\n\u2022 second", ["first", "second"]),
        ("- first that\n  wraps\n- second", ["first that wraps", "second"]),
        ("a paragraph\nthat wraps over lines", ["a paragraph\nthat wraps over lines"]),
        ("", []),
        (None, []),
        ([1, "two", None], ["1", "two"]),
    ],
)
def test_string_where_a_list_of_strings_is_expected(given: object, expected: list[str]) -> None:
    a = Analysis.model_validate({"content_quality_issues": given, "structure_issues": given})
    assert a.content_quality_issues == expected and a.structure_issues == expected


def test_other_schema_near_misses() -> None:
    a = Analysis.model_validate(
        {
            "lessons_from_previous": ["it helped", "a bit"],  # a list where a string is expected
            "trajectory_assessments": {"task_id": 3, "memory_label": "Not useful", "extra": 1},  # one object
            "suggested_changes": {"change": "dedupe", "reason": "noise", "impact": "big"},  # one object, synonyms
            "confidence": 0.9,  # an extra field
        }
    )
    assert a.lessons_from_previous == "it helped\na bit"
    assert a.trajectory_assessments[0].task_id == "3" and a.trajectory_assessments[0].memory_label == "irrelevant"
    assert a.suggested_changes[0].what == "dedupe" and a.suggested_changes[0].why == "noise"
    assert a.content_quality_issues == [] and a.title_hint == ""  # missing optional fields default
    # changes as strings (a list or a bulleted string) keep the order given as priority
    b = Analysis.model_validate({"suggested_changes": ["first", "second"]})
    assert [(c.priority, c.what) for c in b.suggested_changes] == [(1, "first"), (2, "second")]
    c = Analysis.model_validate({"suggested_changes": "- first\n- second"})
    assert [(c.priority, c.what) for c in c.suggested_changes] == [(1, "first"), (2, "second")]
    # one wrapping key around the analysis
    d = Analysis.model_validate({"analysis": REAL_NEAR_MISS})
    assert d.title_hint == "successful actions"


@pytest.mark.parametrize(
    "answer",
    [
        "```json\n" + json.dumps(REAL_NEAR_MISS) + "\n```",
        "```\n" + json.dumps(REAL_NEAR_MISS, indent=2) + "\n```\nLet me know if you need more.",
        json.dumps(REAL_NEAR_MISS) + "\n\nThis analysis focuses on {the memory} structure.",
        "Here is my analysis:\n" + json.dumps(REAL_NEAR_MISS) + "\nHope it helps!",
        json.dumps(REAL_NEAR_MISS, indent=2).replace('"successful actions"\n}', '"successful actions",\n}'),
        '{"content_quality_issues": ["a", "b",], "suggested_changes": [{"what": "x", "priority": "low",},],}',
        "[" + json.dumps(REAL_NEAR_MISS) + "]",
    ],
    ids=[
        "json-fence",
        "bare-fence-then-prose",
        "prose-with-braces-after",
        "prose-around",
        "trailing-comma",
        "trailing-commas-everywhere",
        "one-element-list",
    ],
)
def test_json_near_misses_are_accepted_without_a_retry(answer: str) -> None:
    a, seen = _analyze(answer)
    assert len(seen) == 1 and a.suggested_changes


def test_what_cannot_be_understood_is_refused_and_the_retry_quotes_the_problem() -> None:
    bad = json.dumps({"suggested_changes": [{"priority": "whenever", "what": "x"}]})
    good = json.dumps(VALID)
    a, seen = _analyze(bad, good)
    assert len(seen) == 2 and a.title_hint == "t"
    retry = seen[1][-1]["content"]
    assert "suggested_changes.0.priority" in retry and '"whenever"' in retry


def test_refusal_is_one_readable_line_never_cut_mid_word() -> None:
    bad = json.dumps({"trajectory_assessments": [{"memory_label": "great"}] * 30, "suggested_changes": "x"})
    with pytest.raises(MetaAgentError) as info:
        MetaAgent(lambda _m: bad).analyze(_parent("x = 1"))
    msg = str(info.value)
    assert "\n" not in msg and msg.endswith("…") and "trajectory_assessments.0.memory_label" in msg
    last_word = msg[:-1].rsplit(" ", 1)[-1]
    assert last_word.strip('(),;:"') in msg.replace("…", "")  # a whole word, not "shoul"
    assert not msg[:-1].endswith(("Input shoul", "shoul"))


def test_one_line_cuts_at_a_word_boundary() -> None:
    from alma_tui.sanitize import one_line

    text = "2 validation errors for Analysis\ncontent_quality_issues\n  Input should be a valid list " * 10
    out = one_line(text, 100)
    assert len(out) <= 100 and "\n" not in out and out.endswith("…")
    assert text.replace("\n", " ").split()[: len(out[:-1].split())][-1] == out[:-1].split()[-1]
    assert one_line("short\ntext", 100) == "short text"


def test_code_and_title_near_misses() -> None:
    mod = "import re\n\n\nclass RouteMemory(MemoryDesign):\n    pass\n"
    assert extract_code(f"~~~python\n{mod}~~~") == mod
    assert extract_code(f"```python filename=design.py\n{mod}```") == mod
    assert extract_code(f"```Python\n{mod}```") == mod
    assert extract_code(f"Sure:\n```text\n{mod}```\ndone") == mod
    only = "x = 1\n\n\nclass RouteMemory(MemoryDesign):\n    pass\n"  # unfenced, starts with lowercase code
    assert extract_code(only) == only
    assert extract_code("TITLE: t\n" + only) == only
    assert extract_title("**Title:** Route memory", mod) == "Route memory"
    assert extract_title("## Title - Route memory", mod) == "Route memory"
    assert extract_title("no title line", mod) == "Route memory"  # from the class name
    assert extract_title("", '"""Keeps routes.\n\nMore."""\n' + mod) == "Keeps routes"


def test_write_without_a_title_line_derives_one() -> None:
    mod = "class SuccessfulRoutes(MemoryDesign):\n    pass\n"
    title, code, _raw = MetaAgent(lambda _m: mod).write(_parent("x = 1"), Analysis())
    assert code == mod and title == "Successful routes"
