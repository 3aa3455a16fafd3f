"""The offline meta agent's path for every domain but the household (TextWorld, Baba Is AI,
plug-ins): analyze / write / repair over domain-general designs.

Why a separate path: the household analysis and mechanisms read "mug 1 in drawer 2" facts
that no other domain has, so children written by them on TextWorld fell back to no-memory
scores. Here the evidence is what every episode has: the goal, whether memory was empty or
said nothing about the goal's words, whether the episode ran to the step limit, repeated
itself, or succeeded. The changes are those of :mod:`alma_tui.offline.generic_designs`
(whole episodes -> a per-goal digest of solutions, then where the goal's object was met,
a map of moves, failed actions; more recall; successes only; the same goal first).

:func:`alma_tui.offline.meta.respond` sends a prompt here when its DOMAIN section names a
domain other than ``household`` (and ``alfworld``, whose text the household mechanisms
were written for). Everything is a pure function of the prompt and the seed. Unlike the
household path no draft carries a deliberate bug (the household searches already exercise
the engine's repair loop); ``repair`` still rebuilds a failing module from its genome.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections import Counter
from typing import Any

from alma_tui.engine.prompts import (
    S_ANALYSIS,
    S_COMPARISON,
    S_FAILING_CODE,
    S_PARENT_CODE,
    S_PARENT_EVALUATION,
    S_PREVIOUS_SUGGESTION,
    S_SECOND_CODE,
    S_USER_HINTS,
    TASK_ANALYZE,
    TASK_MERGE,
    TASK_REPAIR,
    TASK_WRITE,
)
from alma_tui.offline import generic_designs as gd

__all__ = ["HOUSEHOLD_DOMAINS", "OPERATORS", "analyze", "merge", "operators_for", "repair", "respond", "write"]

#: domains whose text the household mechanisms (alma_tui.offline.mechanisms) were written for
HOUSEHOLD_DOMAINS = ("household", "alfworld")

_WORD = re.compile(r"[a-z0-9][a-z0-9'-]*")
_STOP = {"a", "an", "the", "and", "to", "of", "in", "on", "it", "your", "task", "is", "find", "take", "put", "go"}

Genome = dict[str, Any]

# operator -> (the words a suggestion uses for it, the change, what it does)
OPERATORS: dict[str, tuple[tuple[str, ...], str]] = {
    "store_episodes": (
        ("store whole episodes", "remember episodes"),
        "Store whole episodes and return the most similar",
    ),
    "digest": (("digest", "aggregate"), "Aggregate the episodes of the same goal into a digest of solutions"),
    "sightings": (("sighting", "where the goal"), "List where the goal's object was met, under its place"),
    "map": (("map", "moves between places"), "Add a map: every move between named places seen for the goal"),
    "failures": (("failed action", "did nothing"), "Remember actions that failed, so they are tried last"),
    "more_recall": (
        ("recall", "more episodes", "top_k"),
        "Increase recall: more episodes/solutions and a larger budget",
    ),
    "success_only": (("successes only", "success only"), "Store successful episodes only"),
    "exact_first": (("same goal", "exact"), "Rank episodes of the same goal text first"),
    "more_steps": (("more steps", "truncat"), "Keep more steps of each episode"),
    "larger_budget": (("character budget",), "Return more text: raise the character budget"),
}


def _rng(*parts: object) -> random.Random:
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()
    return random.Random(int(digest[:16], 16))


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall((text or "").lower()) if w not in _STOP}


def apply(op: str, g: Genome) -> Genome:
    """The genome after one operator (unchanged when it does not apply)."""
    g = gd.normalise(g)
    if op == "store_episodes":
        return {**g, "store": "episodes"} if g["store"] == "none" else g
    if g["store"] == "none":
        return g
    if op == "digest":
        return {**g, "store": "digest", "char_budget": max(g["char_budget"], 6000)}
    if op in ("sightings", "map", "failures"):
        if g["store"] != "digest":
            return {**g, "store": "digest", op: True, "char_budget": max(g["char_budget"], 6000)}
        return {**g, op: True}
    if op == "more_recall":
        return {**g, "top_k": min(8, g["top_k"] + 1), "char_budget": min(12000, g["char_budget"] + 2000)}
    if op == "success_only":
        return {**g, "source": "success"}
    if op == "exact_first":
        return {**g, "match": "exact_first"}
    if op == "more_steps":
        return {**g, "steps": min(120, g["steps"] + 40)}
    if op == "larger_budget":
        return {**g, "char_budget": min(12000, 2 * g["char_budget"])}
    return g


def operators_for(text: str) -> list[str]:
    """Operators a suggestion's text names, in the order of :data:`OPERATORS`."""
    low = (text or "").lower()
    return [op for op, (keys, what) in OPERATORS.items() if what.lower() in low or any(k in low for k in keys)]


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _classify(e: dict[str, Any]) -> str:
    memory = str(e.get("memory", ""))
    actions = [str(a) for a in e.get("last_actions", [])]
    if e.get("success"):
        return "success_with_memory" if memory.strip() else "success_without_memory"
    if any(actions[i] == actions[i + 1] == actions[i + 2] for i in range(len(actions) - 2)):
        return "repeated_action"
    if not memory.strip():
        return "memory_empty"
    if not (_words(str(e.get("goal", ""))) & _words(memory)):
        return "memory_off_goal"
    return "memory_not_enough"


DESCRIBE = {
    "success_with_memory": "succeeded with memory",
    "success_without_memory": "succeeded without memory",
    "repeated_action": "repeated one action three times",
    "memory_empty": "memory empty",
    "memory_off_goal": "memory never names the goal's words",
    "memory_not_enough": "memory about the goal, still ran out of steps",
}


def _ranked_ops(counts: Counter[str], g: Genome, cut: int = 0) -> list[tuple[str, str]]:
    """(operator, why) best first: what the log's failures call for, given the parent;
    ``cut`` sampled memories filled the parent's character budget (their ends were lost)."""
    n = max(1, sum(counts.values()))
    fails = n - counts["success_with_memory"] - counts["success_without_memory"]
    out: list[tuple[str, str]] = []
    if cut:  # seen in the log, not inferred: what came last in those memories never reached the agent
        out.append(
            (
                "larger_budget",
                f"{cut}/{n} memories filled the {g['char_budget']}-character budget, so their ends "
                "(often the steps that reached the goal) were cut off",
            )
        )
    if g["store"] == "none":
        out.append(("store_episodes", f"the design stores nothing; {fails}/{n} sampled episodes failed exploring"))
    if g["store"] == "episodes":
        out.append(
            (
                "digest",
                f"{counts['memory_not_enough'] + counts['memory_off_goal']}/{n} episodes had memory and still failed: "
                "one whole episode of another start is not a route; the goal's episodes together are",
            )
        )
    if g["store"] == "digest":
        for op, why in (
            ("sightings", "the digest does not say where the goal's object was met"),
            ("map", "the digest gives no way there from another start"),
            ("failures", f"{counts['repeated_action']}/{n} episodes repeated an action; failed actions are not listed"),
        ):
            if not g[op]:
                out.append((op, why))
    if counts["memory_empty"]:
        out.append(("more_recall", f"{counts['memory_empty']}/{n} episodes got empty memory"))
    if counts["memory_off_goal"] and g["match"] != "exact_first":
        out.append(("exact_first", f"{counts['memory_off_goal']}/{n} memories were about other goals"))
    if g["steps"] < 80 and counts["memory_not_enough"]:
        out.append(("more_steps", f"episodes are cut at {g['steps']} steps; the end of a long search is lost"))
    if g["source"] == "all" and g["store"] == "episodes":
        out.append(("success_only", "failed episodes are returned as if they were plans"))
    out.append(("more_recall", "widen what is returned"))
    ranked: list[tuple[str, str]] = []
    for op, why in out:
        if apply(op, g) != gd.normalise(g) and op not in {o for o, _ in ranked}:
            ranked.append((op, why))
    return ranked


def _load(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return {}
    return data if isinstance(data, dict) else {}


def analyze(sections: dict[str, str], seed: int) -> dict[str, Any]:
    """A schema-valid analysis of the parent from its log: episode classes decide the changes."""
    ev = _load(sections.get(S_PARENT_EVALUATION, ""))
    g = gd.genome_from_code(sections.get(S_PARENT_CODE, ""))
    episodes = [e for e in ev.get("episodes", []) if isinstance(e, dict)]
    counts: Counter[str] = Counter(_classify(e) for e in episodes)
    cut = sum(1 for e in episodes if _int(e.get("memory_chars")) >= 0.98 * g["char_budget"])
    assessments = []
    for e in episodes:
        cls = _classify(e)
        label = {
            "success_with_memory": "useful",
            "success_without_memory": "empty_or_bad_format",
            "memory_empty": "empty_or_bad_format",
            "memory_off_goal": "irrelevant",
        }.get(cls, "potentially_useful")
        assessments.append(
            {
                "task_id": str(e.get("task_id", "")),
                "memory_label": label,
                "how_it_could_help": f"{DESCRIBE[cls].capitalize()}; memory should say where the goal's object "
                "was met and how to get there from here.",
            }
        )
    n = max(1, len(episodes))
    summary = ", ".join(f"{DESCRIBE[k]} {v}" for k, v in counts.most_common()) or "none"
    ranked = _ranked_ops(counts, g, cut)
    previous = sections.get(S_PREVIOUS_SUGGESTION, "")
    verdict = re.search(r"improve the score over the grandparent:\s*(yes|no|unknown)", previous)
    prev_ops = set(operators_for(previous.split("Did it improve")[0])) if previous else set()
    if verdict and verdict.group(1) == "no" and prev_ops:
        ranked.sort(key=lambda c: c[0] in prev_ops)  # that direction did not pay off: others first
        lessons = (
            f"The previous suggestion ({', '.join(sorted(prev_ops))}) did not improve the score; "
            "other mechanisms first."
        )
    elif verdict and verdict.group(1) == "yes":
        lessons = "The previous suggestion improved the score; keep it and add the next mechanism."
    else:
        lessons = "No verdict on a previous suggestion."
    hints = sections.get(S_USER_HINTS, "").strip()
    if hints and not hints.startswith("(none"):
        wanted = set(operators_for(hints))
        ranked.sort(key=lambda c: c[0] not in wanted)  # a human hint outranks the log
        lessons += f" User hints considered: {hints[:200]}"
    score, base = ev.get("score"), ev.get("no_memory_score")
    if isinstance(score, int | float):
        lessons += f" (score {score:.3f} vs no-memory {base:.3f})" if isinstance(base, int | float) else ""
    changes: list[dict[str, Any]] = [
        {"priority": i + 1, "what": OPERATORS[op][1], "why": why} for i, (op, why) in enumerate(ranked[:4])
    ]
    return {
        "lessons_from_previous": lessons,
        "trajectory_assessments": assessments,
        "content_quality_issues": [f"{n} sampled deployment episodes: {summary}."],
        "structure_issues": [f"Design: {gd.default_title(g)}."],
        "suggested_changes": changes,
        "title_hint": str(changes[0]["what"])[:60] if changes else gd.default_title(g),
    }


def _suggestions(analysis: str) -> list[str]:
    data = _load(analysis)
    changes = data.get("suggested_changes", []) if data else []
    if not data:
        return [analysis] if analysis else []
    ordered = sorted(
        (c for c in changes if isinstance(c, dict)),
        key=lambda c: c.get("priority", 99) if isinstance(c.get("priority"), int) else 99,
    )
    return [f"{c.get('what', '')} {c.get('why', '')}" for c in ordered]


def _parent_id(sections: dict[str, str]) -> str:
    return str(_load(sections.get(S_PARENT_EVALUATION, "")).get("design_id", "parent"))


def _redo(hints: str) -> int:
    """How many earlier drafts the engine said duplicated archived designs."""
    return len(re.findall(r"duplicated archived design", hints))


def _changes(sections: dict[str, str], g: Genome, rng: random.Random) -> list[str]:
    """Operators that change ``g``, best first: the analysis' suggestions, minus as many as
    earlier drafts duplicated archived designs; with none left, all of them in a seeded order."""
    ops = [op for text in _suggestions(sections.get(S_ANALYSIS, "")) for op in operators_for(text)[:1]]
    ops = [op for op in dict.fromkeys(ops) if apply(op, g) != g][_redo(sections.get(S_USER_HINTS, "")) :]
    if not ops:
        ops = [op for op in OPERATORS if apply(op, g) != g]
        rng.shuffle(ops)
    return ops


def write(sections: dict[str, str], seed: int) -> str:
    """``TITLE: ...`` and the child module: the parent's genome with the analysis' first
    applicable change (its second, now and then, so siblings differ)."""
    parent_code = sections.get(S_PARENT_CODE, "")
    parent = gd.genome_from_code(parent_code)
    hints = sections.get(S_USER_HINTS, "")
    rng = _rng("generic-write", seed, parent_code, sections.get(S_ANALYSIS, ""), hints)
    ops = _changes(sections, parent, rng)
    if len(ops) > 1 and rng.random() < 0.25:
        ops = ops[1:]
    child, used = parent, []
    if ops:
        child, used = apply(ops[0], parent), [ops[0]]
    title = gd.default_title(child)
    lineage = f"child of {_parent_id(sections)}; operators: {', '.join(used) or 'none'}"
    return f"TITLE: {title}\n```python\n{gd.render(child, title, lineage)}```\n"


def repair(sections: dict[str, str], seed: int) -> str:
    """Rebuild the failing module from its genome (the parent's when it has none)."""
    failing = sections.get(S_FAILING_CODE, "")
    source = failing if gd.is_generic(failing) else sections.get(S_PARENT_CODE, "")
    genome = gd.genome_from_code(source)
    title = gd.default_title(genome)
    return f"TITLE: {title}\n```python\n{gd.render(genome, title, 'repaired after a validation error')}```\n"


_STORE_RANK = {"none": 0, "episodes": 1, "digest": 2}
_FLAGS = ("sightings", "map", "failures")


def merge(sections: dict[str, str], seed: int) -> str:
    """One generic module combining two parents, guided by where each is better.

    The base is the parent better on more search tasks (ties: the higher mean); the other
    is the donor. When the donor wins any task its memory is worth keeping: the richer store
    of the two (a digest holds what whole episodes hold), the donor's extra facts (sightings,
    map, failed actions) and the larger recall. When it wins none, only the store is taken,
    so a merge never loses what the better parent remembers."""
    first_code, second_code = sections.get(S_PARENT_CODE, ""), sections.get(S_SECOND_CODE, "")
    genomes = (gd.genome_from_code(first_code), gd.genome_from_code(second_code))
    comp = _load(sections.get(S_COMPARISON, ""))
    ids = (str(comp.get("first") or _parent_id(sections)), str(comp.get("second") or "second"))
    wins = (int(comp.get("first_better") or 0), int(comp.get("second_better") or 0))
    scores = (float(comp.get("first_score") or 0.0), float(comp.get("second_score") or 0.0))
    b, d = (0, 1) if (wins[0], scores[0]) >= (wins[1], scores[1]) else (1, 0)
    base, donor = genomes[b], genomes[d]
    child, taken = dict(base), []
    if _STORE_RANK[donor["store"]] > _STORE_RANK[base["store"]]:
        child["store"] = donor["store"]
        taken.append(f"store={donor['store']}")
    if wins[d] > 0:
        for flag in _FLAGS:
            if donor[flag] and not base[flag]:
                child[flag] = True
                taken.append(flag)
        for key in ("top_k", "steps", "char_budget"):
            if donor[key] > base[key]:
                child[key] = donor[key]
                taken.append(f"{key}={donor[key]}")
    child = gd.normalise(child)
    # a merge that adds nothing would duplicate a parent (the engine rejects it): like the
    # household merge, it then also takes a change, the analysis' (skipping those the engine
    # said were duplicates), else one the seed picks
    hints = sections.get(S_USER_HINTS, "")
    used: list[str] = []
    if child in (gd.normalise(dict(base)), gd.normalise(dict(donor))) or _redo(hints):
        ops = _changes(sections, child, _rng("generic-merge", seed, first_code, second_code, hints))
        if ops:
            child, used = apply(ops[0], child), [ops[0]]
    title = gd.default_title(child)
    lineage = f"merge of {ids[b]} (base) and {ids[d]}; taken: {', '.join(taken) or 'nothing'}"
    lineage += f"; operators: {', '.join(used)}" if used else ""
    return f"TITLE: {title}\n```python\n{gd.render(child, title, lineage)}```\n"


def respond(task: str, sections: dict[str, str], seed: int) -> str:
    """Answer an analyze / write / merge / repair prompt of a non-household domain."""
    if task == TASK_ANALYZE:
        return json.dumps(analyze(sections, seed), indent=1)
    if task == TASK_WRITE:
        return write(sections, seed)
    if task == TASK_REPAIR:
        return repair(sections, seed)
    if task == TASK_MERGE:
        return merge(sections, seed)
    return "offline/meta only answers the meta agent's analyze / write / merge / repair prompts."
