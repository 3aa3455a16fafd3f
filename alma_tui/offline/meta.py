"""Deterministic offline stand-in for the meta LLM (``offline/meta``).

It reads the very prompts a real model gets (:mod:`alma_tui.engine.prompts`) and
answers them for real, without a network:

- **analyze**: classifies every sampled deployment episode of the PARENT
  EVALUATION JSON (memory silent, misled, wrong tool, step limit, ...;
  :mod:`alma_tui.offline.evidence`), counts the classes, ranks the changes the
  parent's mechanisms admit by that evidence, and answers JSON valid against the
  meta agent's schema whose suggestions cite the counts;
- **write**: recovers the parent's genome from its code, mutates it as the
  ANALYSIS asks (any analysis, also a real model's: suggestions are matched by
  keywords), and renders a readable module (:mod:`alma_tui.offline.mechanisms`). About one
  first draft in ten carries a realistic bug (NameError, KeyError on an unseen
  key) so the engine's repair path runs in ordinary searches;
- **repair**: regenerates the failing module's genome without the bug;
- **merge**: combines two parents' genomes using the PER-TASK COMPARISON: the parent
  better on more tasks is the base, and the other's mechanisms that explain the tasks
  it wins (tools for clean/heat/cool chores, plurals for two-object chores, ...) are
  brought in (:func:`merge`).

Everything is a pure function of the prompt and the seed.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from typing import Any

from alma_tui.engine.prompts import (
    S_ANALYSIS,
    S_COMPARISON,
    S_DOMAIN,
    S_FAILING_CODE,
    S_OTHER_DESIGN,
    S_PARENT_CODE,
    S_PARENT_EVALUATION,
    S_PREVIOUS_SUGGESTION,
    S_SECOND_CODE,
    S_USER_HINTS,
    TASK_ANALYZE,
    TASK_MERGE,
    TASK_REPAIR,
    TASK_WRITE,
    parse_prompt,
)
from alma_tui.offline import mechanisms as dm
from alma_tui.offline.evidence import DESCRIBE, WHAT, count_classes, rank_changes
from alma_tui.offline.evidence import classify as ev_classify
from alma_tui.offline.generic_meta import HOUSEHOLD_DOMAINS
from alma_tui.offline.generic_meta import respond as generic_respond

__all__ = ["BUG_RATE", "analyze", "merge", "repair", "respond", "write"]

BUG_RATE = 0.10

_GOAL_OBJECT = re.compile(
    r"put (?:a |an |some |the |two )?"
    r"(?:(?:clean|hot|cool|cold|heated|cooled|cleaned) )?([a-z]+) (?:in|on)"
)
_GOAL_VERB = re.compile(r"\b(clean|hot|cool|cold|heat)\b")
_RAW_MARKERS = ("->", "you arrive", "you open", "outcome:", "> ")


def _rng(*parts: object) -> random.Random:
    """A private RNG keyed by the inputs, so answers never depend on call order."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()
    return random.Random(int(digest[:16], 16))


def _goal_object(goal: str) -> str:
    m = _GOAL_OBJECT.search((goal or "").lower())
    if m:
        return m.group(1)
    words = [w for w in re.findall(r"[a-z]+", (goal or "").lower()) if len(w) > 2]
    return words[1] if len(words) > 1 else (words[0] if words else "")


def _mentions_object(memory: str, obj: str) -> bool:
    if not obj:
        return False
    pat = re.compile(rf"\b{re.escape(obj)}(?:s|es)?\b")
    return any(pat.search(line) and re.search(r"\b[a-z]+ \d+\b", line) for line in memory.lower().splitlines())


def _load_eval(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return {}
    return data if isinstance(data, dict) else {}


# ---------------------------------------------------------------------------
# analyze
# ---------------------------------------------------------------------------


def _changes_genome(op: str, genome: dm.Genome) -> bool:
    return dm.apply_operator(op, genome, random.Random(0)) != dm.normalise(genome)


def analyze(sections: dict[str, str], seed: int) -> dict[str, Any]:
    """A schema-valid analysis computed from the parent's evaluation log and code.

    Each sampled deployment episode is classified (:mod:`alma_tui.offline.evidence`);
    the class counts rank the suggested changes, and every ``why`` cites them, so a
    different log leads to a different change for the same parent code."""
    ev = _load_eval(sections.get(S_PARENT_EVALUATION, ""))
    genome = dm.genome_from_code(sections.get(S_PARENT_CODE, ""))
    episodes = [e for e in ev.get("episodes", []) if isinstance(e, dict)]
    score, base = ev.get("score"), ev.get("no_memory_score")

    assessments: list[dict[str, str]] = []
    n_raw = 0
    lengths: list[int] = []
    for e in episodes:
        memory = str(e.get("memory", ""))
        obj = _goal_object(str(e.get("goal", "")))
        ok = bool(e.get("success"))
        cls = ev_classify(e)
        lengths.append(int(e.get("memory_chars", len(memory)) or 0))
        if any(m in memory.lower() for m in _RAW_MARKERS):
            n_raw += 1
        if not memory.strip():
            label, how = "empty_or_bad_format", f"Should have named where a {obj} was found before."
        elif cls in ("memory_silent", "memory_silent_plural") or not _mentions_object(memory, obj):
            label = "irrelevant"
            how = (
                f"Talks about other objects or tasks ({DESCRIBE[cls]}); a line like "
                f"'{obj} found in <receptacle> (xN)' would direct the search."
            )
        elif ok:
            label, how = "useful", f"{DESCRIBE[cls].capitalize()}."
        else:
            label = "potentially_useful"
            how = f"Mentions the {obj} but the agent failed: {DESCRIBE[cls]}."
        assessments.append({"task_id": str(e.get("task_id", "")), "memory_label": label, "how_it_could_help": how})

    n = max(1, len(episodes))
    counts = count_classes(episodes)
    fails = sum(v for k, v in counts.items() if not k.startswith("success"))
    avg_len = sum(lengths) / n
    summary = ", ".join(f"{DESCRIBE[k]} {v}" for k, v in counts.most_common())
    content: list[str] = [f"{n} sampled deployment episodes, {fails} failed: {summary or 'none'}."]
    structure: list[str] = []
    if n_raw and genome["store"] in ("trajectory", "actions"):
        content.append(f"{n_raw}/{n} memories are raw step dumps; the location of the object is buried in them.")
    if avg_len > 1500:
        structure.append(f"Retrieved text averages {avg_len:.0f} chars: too long for best-first reading.")
    if genome["store"] in ("trajectory", "actions"):
        structure.append("No aggregation across episodes: one episode's luck is presented as the rule.")
    if genome["store"] == "none":
        structure.append("The design stores nothing, so the agent explores every receptacle blindly.")

    ranked = rank_changes(counts, genome, n)
    cands: list[tuple[str, str, str]] = [(c.op, c.what, c.why) for c in ranked]
    cands = [c for c in cands if _changes_genome(c[0], genome)]
    if not cands and genome["store"] != "none":  # the log names no failure this parent could fix
        fallback = "more_recall" if genome["store"] == "facts" else "extract_facts"
        cands = [(fallback, WHAT[fallback], f"{fails}/{n} sampled episodes failed with no dominant cause.")]

    previous = sections.get(S_PREVIOUS_SUGGESTION, "")
    improved = re.search(r"improve the score over the grandparent:\s*(yes|no|unknown)", previous)
    verdict = improved.group(1) if improved else None
    prev_ops = set(dm.operators_for(previous.split("Did it improve")[0])) if previous else set()
    if verdict == "no" and prev_ops:
        # The last push in this direction did not pay off: try the others first.
        cands.sort(key=lambda c: c[0] in prev_ops)
        lessons = (
            f"The previous suggestion ({', '.join(sorted(prev_ops))}) did not improve the score; "
            "this analysis prioritises other mechanisms."
        )
    elif verdict == "yes":
        lessons = "The previous suggestion improved the score; keep it and push further in related directions."
    elif previous and not previous.startswith("(none"):
        lessons = "The previous suggestion's effect is unknown; judge it by the assessments below."
    else:
        lessons = "The parent is a seed design; there is no previous suggestion to judge."

    hints = sections.get(S_USER_HINTS, "").strip()
    if hints and not hints.startswith("(none"):
        hint_ops = set(dm.operators_for(hints))
        # A human hint outranks the log: move matching suggestions to the front.
        cands.sort(key=lambda c: c[0] not in hint_ops)
        lessons += f" User hints considered: {hints[:200]}"

    suggestions = [{"priority": i + 1, "what": what, "why": why} for i, (_, what, why) in enumerate(cands[:4])]
    if not suggestions:
        suggestions = [
            {
                "priority": 1,
                "what": "Increase recall: return more lines per object kind",
                "why": "All known mechanisms are already in place; widen what is returned.",
            }
        ]
    # rounded as the archive shows scores: raw floats ("0.7777777777777777") read as noise
    base_text = f"{base:.3f}" if isinstance(base, int | float) else "unknown"
    summary = f"score {score:.3f} vs no-memory {base_text}" if isinstance(score, int | float) else "no score"
    title = str(suggestions[0]["what"]).split(" (")[0].split(";")[0][:60]
    return {
        "lessons_from_previous": f"{lessons} ({summary}).",
        "trajectory_assessments": assessments,
        "content_quality_issues": content,
        "structure_issues": structure,
        "suggested_changes": suggestions,
        "title_hint": title,
    }


# ---------------------------------------------------------------------------
# write / repair
# ---------------------------------------------------------------------------


def _suggestions(analysis_text: str) -> list[tuple[int, str]]:
    """(priority, text) of each suggested change; the ``what`` alone when it names
    a mechanism we know, else ``what + why`` (a real model may put it there)."""
    try:
        data = json.loads(analysis_text)
    except (json.JSONDecodeError, TypeError):
        return [(1, analysis_text)] if analysis_text else []
    out: list[tuple[int, str]] = []
    for i, c in enumerate(data.get("suggested_changes", []) if isinstance(data, dict) else []):
        if not isinstance(c, dict):
            continue
        what, why = str(c.get("what", "")), str(c.get("why", ""))
        text = what if dm.operators_for(what) else f"{what} {why}"
        try:
            prio = int(c.get("priority", i + 1))
        except (TypeError, ValueError):
            prio = i + 1
        out.append((prio, text))
    return out


def _parent_id(sections: dict[str, str]) -> str:
    return str(_load_eval(sections.get(S_PARENT_EVALUATION, "")).get("design_id", "parent"))


def _combine(
    child: dm.Genome, parent: dm.Genome, other_text: str, suggestions: list[tuple[int, str]], rng: random.Random
) -> tuple[dm.Genome, str]:
    """Crossover: take from ANOTHER ARCHIVED DESIGN the mechanisms the analysis asks for
    that it already has (and, half the time, one more of its fact mechanisms), so two
    lines of the archive that each solved one problem meet in one child."""
    other_id = re.search(r"^id: (\S+)", other_text, re.MULTILINE)
    if not other_id or not dm.MECHANISMS_RE.search(other_text):
        return child, ""
    other = dm.genome_from_code(other_text)
    if other["store"] != "facts" or child["store"] != "facts":
        return child, ""
    wanted = {op for _, text in suggestions for op in dm.operators_for(text)}
    # operator -> (genome key, the value that does more)
    rich = {
        "plurals": ("plurals", True),
        "failures": ("failures", True),
        "negatives": ("negatives", True),
        "tools": ("tools", "worked"),
        "house": ("context", "house"),
        "seen": ("evidence", "seen"),
    }
    has = {op: k for op, (k, v) in rich.items() if other[k] == v and child[k] != v}
    take = [k for op, k in has.items() if op in wanted]
    extra = sorted(k for k in has.values() if k not in take)
    if extra and rng.random() < 0.5:
        take.append(rng.choice(extra))
    if not take:
        return child, ""
    merged = dm.normalise({**child, **{k: other[k] for k in take}})
    return merged, other_id.group(1)


def write(sections: dict[str, str], seed: int) -> str:
    """``TITLE: ...`` plus a fenced module: the parent's genome, mutated as asked."""
    parent_code = sections.get(S_PARENT_CODE, "")
    parent = dm.genome_from_code(parent_code)
    hints = sections.get(S_USER_HINTS, "")
    rng = _rng("write", seed, parent_code, sections.get(S_ANALYSIS, ""), hints)
    suggestions = _suggestions(sections.get(S_ANALYSIS, ""))
    # The engine says the last draft duplicated an archived design: skip as many of the
    # top suggestions as drafts were duplicates (none left: a random change, see mutate).
    suggestions = sorted(suggestions)[len(re.findall(r"duplicated archived design", hints)) :]
    child, ops = dm.mutate(parent, suggestions, rng)
    child, partner = _combine(child, parent, sections.get(S_OTHER_DESIGN, ""), suggestions, rng)
    changed = [k for k in child if child[k] != parent.get(k)]
    lineage = f"child of {_parent_id(sections)}; operators: {', '.join(ops)}; changed: {', '.join(changed)}"
    if partner:
        lineage += f"; combined with {partner}"
    bug = rng.choice(dm.BUGS) if rng.random() < BUG_RATE and child["store"] != "none" else None
    title = dm.default_title(child)
    return f"TITLE: {title}\n```python\n{dm.render(child, title, lineage, bug)}```\n"


#: mechanism -> (genome key, the value that does more, what in a task's goal it helps with)
_MERGEABLE: dict[str, tuple[str, Any, re.Pattern[str] | None]] = {
    "tools": ("tools", "worked", re.compile(r"\b(clean|hot|heat|cool|cold)\w*")),
    "failures": ("failures", True, re.compile(r"\b(clean|hot|heat|cool|cold)\w*")),
    "plurals": ("plurals", True, re.compile(r"\b(two|both|some)\b")),
    "house": ("context", "house", None),
    "seen": ("evidence", "seen", None),
    "negatives": ("negatives", True, None),
    "example": ("example", True, None),
}


def _comparison(text: str) -> dict[str, Any]:
    data = _load_eval(text)
    tasks = [t for t in data.get("tasks", []) if isinstance(t, dict)]
    return {**data, "tasks": tasks}


def merge(sections: dict[str, str], seed: int) -> str:
    """One module combining two parents, guided by where each is better.

    The base is the parent better on more search tasks (ties: the higher mean); the other
    is the donor. A donor mechanism the base lacks is taken when the goals of the tasks the
    donor wins call for it (tools for clean/heat/cool chores, plurals for two-object
    chores), and the general ones (per-house counts, sightings, absences) when the donor
    wins any task; with stores of different kinds only the fact store can carry facts, so
    the fact-based parent is the base. A merge that would equal a parent, or a draft the
    engine called a duplicate, also follows the ANALYSIS' top suggestion."""
    first_code, second_code = sections.get(S_PARENT_CODE, ""), sections.get(S_SECOND_CODE, "")
    first, second = dm.genome_from_code(first_code), dm.genome_from_code(second_code)
    comp = _comparison(sections.get(S_COMPARISON, ""))
    ids = (str(comp.get("first") or _parent_id(sections)), str(comp.get("second") or "second"))
    wins = (int(comp.get("first_better") or 0), int(comp.get("second_better") or 0))
    scores = (float(comp.get("first_score") or 0.0), float(comp.get("second_score") or 0.0))
    order = (0, 1) if (wins[0], scores[0]) >= (wins[1], scores[1]) else (1, 0)
    genomes = (first, second)
    if (first["store"] == "facts") != (second["store"] == "facts"):  # facts carry the mechanisms
        order = (0, 1) if first["store"] == "facts" else (1, 0)
    base, donor = genomes[order[0]], genomes[order[1]]
    base_id, donor_id = ids[order[0]], ids[order[1]]
    donor_side = ("first", "second")[order[1]]
    donor_goals = [str(t.get("goal", "")).lower() for t in comp["tasks"] if t.get("better") == donor_side]
    hints = sections.get(S_USER_HINTS, "")
    rng = _rng("merge", seed, first_code, second_code, sections.get(S_COMPARISON, ""), hints)
    child = dict(base)
    taken: list[str] = []
    if base["store"] == "facts" and donor["store"] == "facts":
        for name, (key, value, goal_re) in _MERGEABLE.items():
            if donor[key] != value or base[key] == value:
                continue
            evidence = any(goal_re.search(g) for g in donor_goals) if goal_re is not None else bool(donor_goals)
            if evidence or rng.random() < 0.25:
                child[key] = value
                taken.append(name)
    elif base["store"] == donor["store"]:  # two episode stores: the donor's retrieval settings
        for key in ("source", "similarity", "object_filter", "rank"):
            if donor[key] != base[key] and (donor_goals or rng.random() < 0.5):
                child[key] = donor[key]
                taken.append(key)
    child = dm.normalise(child)
    redo = len(re.findall(r"duplicated archived design", hints))
    ops: list[str] = []
    if child in (dm.normalise(first), dm.normalise(second)) or redo:
        suggestions = sorted(_suggestions(sections.get(S_ANALYSIS, "")))[redo:]
        child, ops = dm.mutate(child, suggestions, rng)
    note = (
        f"merge of {ids[0]} and {ids[1]}; base {base_id} (better on {max(wins)} tasks), "
        f"from {donor_id}: {', '.join(taken) or 'nothing it lacks'}"
        + (f" (the tasks {donor_id} wins: {len(donor_goals)})" if donor_goals else "")
        + (f"; operators: {', '.join(ops)}" if ops else "")
    )
    bug = rng.choice(dm.BUGS) if rng.random() < BUG_RATE and child["store"] != "none" else None
    title = dm.default_title(child)
    return f"TITLE: {title}\n```python\n{dm.render(child, title, note, bug)}```\n"


def repair(sections: dict[str, str], seed: int) -> str:
    """Regenerate the failing module from its own genome, without the bug.

    The genome is read from the failing code (the draft's intent); a module
    without one (e.g. written by another model) falls back to the parent's.
    """
    failing = sections.get(S_FAILING_CODE, "")
    source = failing if dm.MECHANISMS_RE.search(failing) else sections.get(S_PARENT_CODE, "")
    genome = dm.genome_from_code(source)
    doc = re.search(r'^"""(.+?)\n', failing)
    title = doc.group(1).strip() if doc else dm.default_title(genome)
    lineage = re.search(r"Written by the offline meta agent \((.*?)\)\.", failing)
    note = (lineage.group(1) + "; " if lineage else "") + "repaired after a validation error"
    return f"TITLE: {title}\n```python\n{dm.render(genome, title, note)}```\n"


def _domain(sections: dict[str, str]) -> str:
    """The domain name of the prompt's DOMAIN section ("" when absent)."""
    m = re.match(r"\s*name:\s*(\S+)", sections.get(S_DOMAIN, ""))
    return m.group(1).lower() if m else ""


def respond(messages: list[dict], seed: int) -> str:
    """Answer a meta-agent prompt (analyze / write / repair) deterministically."""
    task, sections = parse_prompt(messages)
    if _domain(sections) not in ("", *HOUSEHOLD_DOMAINS):
        return generic_respond(task, sections, seed)  # no household facts there: the domain-general path
    if task == TASK_ANALYZE:
        return json.dumps(analyze(sections, seed), indent=1)
    if task == TASK_WRITE:
        return write(sections, seed)
    if task == TASK_REPAIR:
        return repair(sections, seed)
    if task == TASK_MERGE:
        return merge(sections, seed)
    return "offline/meta only answers the meta agent's analyze / write / merge / repair prompts."
