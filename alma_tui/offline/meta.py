"""Deterministic offline stand-in for the meta LLM (``offline/meta``).

It reads the very prompts a real model gets (:mod:`alma_tui.engine.prompts`) and
answers them for real, without a network:

- **analyze**: computes an analysis from the PARENT EVALUATION JSON (how often
  the retrieved memory was empty, irrelevant to the goal's object, long, raw;
  which goals failed) and from the parent's mechanism genome, and answers JSON
  valid against the meta agent's schema, with suggested changes that name
  concrete mechanisms;
- **write**: recovers the parent's genome from its code, mutates it as the
  ANALYSIS asks (any analysis, also a real model's: suggestions are matched by
  keywords), and renders a readable module (:mod:`alma_tui.offline.mechanisms`). About one
  first draft in ten carries a realistic bug (NameError, KeyError on an unseen
  key) so the engine's repair path runs in ordinary searches;
- **repair**: regenerates the failing module's genome without the bug.

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
    S_FAILING_CODE,
    S_PARENT_CODE,
    S_PARENT_EVALUATION,
    S_PREVIOUS_SUGGESTION,
    S_USER_HINTS,
    TASK_ANALYZE,
    TASK_REPAIR,
    TASK_WRITE,
    parse_prompt,
)
from alma_tui.offline import mechanisms as dm

__all__ = ["BUG_RATE", "analyze", "repair", "respond", "write"]

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
    """A schema-valid analysis computed from the parent's evaluation log and code."""
    ev = _load_eval(sections.get(S_PARENT_EVALUATION, ""))
    genome = dm.genome_from_code(sections.get(S_PARENT_CODE, ""))
    episodes = [e for e in ev.get("episodes", []) if isinstance(e, dict)]
    score, base = ev.get("score"), ev.get("no_memory_score")

    assessments: list[dict[str, str]] = []
    n_empty = n_irrelevant = n_raw = n_fail = n_fail_uninformed = n_tool_fail = 0
    lengths: list[int] = []
    for e in episodes:
        memory = str(e.get("memory", ""))
        obj = _goal_object(str(e.get("goal", "")))
        ok = bool(e.get("success"))
        n_fail += not ok
        lengths.append(int(e.get("memory_chars", len(memory)) or 0))
        if any(m in memory.lower() for m in _RAW_MARKERS):
            n_raw += 1
        if not memory.strip():
            label, how = "empty_or_bad_format", f"Should have named where a {obj} was found before."
            n_empty += 1
            n_fail_uninformed += not ok
        elif not _mentions_object(memory, obj):
            label = "irrelevant"
            how = (
                f"Talks about other objects or tasks; a line like "
                f"'{obj} found in <receptacle> (xN)' would direct the search."
            )
            n_irrelevant += 1
            n_fail_uninformed += not ok
        elif ok:
            label, how = "useful", f"Pointed at receptacles where a {obj} had been found."
        else:
            label = "potentially_useful"
            how = (
                f"Mentions the {obj} but the agent still failed: the places may be wrong "
                "for this house "
                "kind, buried in noise, or not ranked by how often they held the object."
            )
        if not ok and _GOAL_VERB.search(str(e.get("goal", "")).lower()):
            n_tool_fail += 1
        assessments.append({"task_id": str(e.get("task_id", "")), "memory_label": label, "how_it_could_help": how})

    n = max(1, len(episodes))
    avg_len = sum(lengths) / n
    content: list[str] = []
    structure: list[str] = []
    if n_empty:
        content.append(f"{n_empty}/{n} sampled episodes retrieved nothing.")
    if n_irrelevant:
        content.append(f"{n_irrelevant}/{n} retrieved memory that never mentions the goal's object with a place.")
    if n_raw and genome["store"] in ("trajectory", "actions"):
        content.append(f"{n_raw}/{n} memories are raw step dumps; the location of the object is buried in them.")
    if genome["source"] == "all" and genome["store"] in ("trajectory", "actions"):
        content.append("Failed episodes are stored and retrieved like successes, so their detours read as advice.")
    if avg_len > 1500:
        structure.append(f"Retrieved text averages {avg_len:.0f} chars: too long for best-first reading.")
    if genome["store"] in ("trajectory", "actions"):
        structure.append("No aggregation across episodes: one episode's luck is presented as the rule.")
    if genome["store"] == "facts" and genome["context"] == "global":
        structure.append("Counts are pooled across house kinds although placements differ per house kind.")
    if genome["store"] == "none":
        structure.append("The design stores nothing, so the agent explores every receptacle blindly.")

    # Candidate suggestions in order of expected value for this parent; only
    # those that would actually change the parent's mechanisms are kept.
    cands: list[tuple[str, str, str]] = []  # (operator, what, why)
    if genome["store"] == "none":
        cands.append(
            (
                "start_memory",
                "Start storing episodes in memory and retrieve the most similar one",
                "With no memory every episode starts from zero.",
            )
        )
        cands.append(
            (
                "extract_facts",
                "Extract object-location facts (object kind -> receptacle where it was taken) "
                "and aggregate them as counts",
                "Object placement is regular, so counts predict where to look.",
            )
        )
    if genome["store"] in ("trajectory", "actions"):
        why = (
            f"{n_irrelevant + n_empty}/{n} memories did not say where the goal object was; "
            f"average memory length {avg_len:.0f} chars."
        )
        cands.append(
            (
                "extract_facts",
                "Extract object-location facts (object kind -> receptacle where it was taken) "
                "and aggregate them as counts, best first",
                why,
            )
        )
        if n_irrelevant:
            cands.append(
                (
                    "object_filter",
                    "Filter retrieved episodes to the goal object (same object kind)",
                    f"{n_irrelevant}/{n} retrieved episodes were about other objects.",
                )
            )
        if genome["source"] == "all":
            cands.append(
                (
                    "success_only",
                    "Store successful episodes only; failed episodes are not evidence",
                    "Failures record detours, not where things are.",
                )
            )
        if avg_len > 1200:
            cands.append(
                (
                    "shorter",
                    "Return fewer, shorter memories (lower top_k and char budget)",
                    f"Average memory is {avg_len:.0f} chars of mostly noise.",
                )
            )
        if genome["similarity"] == "words":
            cands.append(
                (
                    "embed",
                    "Rank episodes by embedding similarity (semantic), word overlap as fallback",
                    "Word overlap ranks by incidental words of the goal.",
                )
            )
    if genome["store"] == "facts":
        if genome["evidence"] == "take":
            cands.append(
                (
                    "seen",
                    "Also record every object seen (observations of opened receptacles), not only pick-ups",
                    f"{n_empty + n_irrelevant}/{n} goals had no fact for their object.",
                )
            )
        if genome["context"] == "global":
            cands.append(
                (
                    "house",
                    "Keep the counts per house kind (read from the first observation) with a global fallback",
                    "The same object kind lives in different places in "
                    "different house kinds; pooled counts point to the wrong receptacle.",
                )
            )
        if not genome["tools"]:
            cands.append(
                (
                    "tools",
                    "Remember which receptacle was used to clean/heat/cool (tool rules)",
                    f"{n_tool_fail} failed goals needed a transformation; the agent tried decoy tools.",
                )
            )
        if not genome["negatives"]:
            cands.append(
                (
                    "negatives",
                    "Also record where the goal object was looked for and not found",
                    "Misses prune receptacles the agent would otherwise re-open.",
                )
            )
        if genome["format"] == "plain":
            cands.append(
                (
                    "count",
                    "Show counts (xN) on each fact line so confidence is visible",
                    "Without counts a one-off sighting weighs as much as a regular place.",
                )
            )
        if n_fail and genome["top_k"] < 4:
            cands.append(
                (
                    "more_recall",
                    "Increase recall: return more receptacles per object kind (higher top_k)",
                    f"{n_fail}/{n} sampled episodes still failed; the second and third places matter.",
                )
            )
        if genome["evidence"] == "take" and genome["source"] == "all":
            cands.append(
                (
                    "success_only",
                    "Use successful episodes only as evidence",
                    "Fewer but cleaner facts.",
                )
            )
        if genome["rank"] == "count":
            cands.append(
                (
                    "recency",
                    "Rank places by recency instead of counts",
                    "Layouts may drift over time.",
                )
            )
    if genome["store"] == "trajectory" and avg_len > 800:
        cands.append(
            (
                "actions",
                "Keep only the successful actions (action sequence), drop observations",
                "Observations are long and mostly about other objects.",
            )
        )
    cands = [c for c in cands if _changes_genome(c[0], genome)]

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
    summary = f"score {score} vs no-memory {base}" if score is not None else "no score"
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


def write(sections: dict[str, str], seed: int) -> str:
    """``TITLE: ...`` plus a fenced module: the parent's genome, mutated as asked."""
    parent_code = sections.get(S_PARENT_CODE, "")
    parent = dm.genome_from_code(parent_code)
    rng = _rng("write", seed, parent_code, sections.get(S_ANALYSIS, ""))
    child, ops = dm.mutate(parent, _suggestions(sections.get(S_ANALYSIS, "")), rng)
    changed = [k for k in child if child[k] != parent.get(k)]
    lineage = f"child of {_parent_id(sections)}; operators: {', '.join(ops)}; changed: {', '.join(changed)}"
    bug = rng.choice(dm.BUGS) if rng.random() < BUG_RATE and child["store"] != "none" else None
    title = dm.default_title(child)
    return f"TITLE: {title}\n```python\n{dm.render(child, title, lineage, bug)}```\n"


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


def respond(messages: list[dict], seed: int) -> str:
    """Answer a meta-agent prompt (analyze / write / repair) deterministically."""
    task, sections = parse_prompt(messages)
    if task == TASK_ANALYZE:
        return json.dumps(analyze(sections, seed), indent=1)
    if task == TASK_WRITE:
        return write(sections, seed)
    if task == TASK_REPAIR:
        return repair(sections, seed)
    return "offline/meta only answers the meta agent's analyze / write / repair prompts."
