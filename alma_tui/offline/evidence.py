"""The offline meta agent's reading of an evaluation log: why each episode failed or worked.

Why this exists: an analysis that proposes the same change whatever the log says is
not learning from evidence. Here every sampled deployment episode of the parent is
classified from what the log holds (goal, success, steps, retrieved memory, actions),
reading the memory exactly as the acting agent does (:func:`alma_tui.offline.policy.memory_votes`),
and the counts decide which change comes first (:func:`rank_changes`).

Failure classes, checked in this order (the first that fits):

- ``repeated_action``: the same action three times in a row;
- ``wrong_tool``: the goal's transformation was tried at two or more receptacles
  (the first ones failed: a broken tool);
- ``memory_silent_plural``: a two-object chore ("put two mugs ...") whose memory
  says nothing about the object kind (singular or plural);
- ``memory_silent``: the memory is empty or never places the goal's object;
- ``memory_misled``: the memory placed the object, the agent went to its first
  place and did not find it there (the place is wrong for this house kind, or stale: in
  ``household`` places drift with the seasons, so a house-aware parent is told to weigh
  recent evidence);
- ``step_limit_after_take``: the object was taken but the chore was not finished;
- ``step_limit_exploring``: the object was never taken (the search ran out of steps).

Successes are ``success_guided`` (the first place visited was the memory's first
choice) or ``success_explored``.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from alma_tui.offline.policy import memory_votes, parse_goal

__all__ = ["FAILURES", "Change", "classify", "count_classes", "rank_changes"]

FAILURES = (
    "repeated_action",
    "wrong_tool",
    "memory_silent_plural",
    "memory_silent",
    "memory_misled",
    "step_limit_after_take",
    "step_limit_exploring",
)
DESCRIBE = {
    "repeated_action": "repeated the same action three times",
    "wrong_tool": "tried a tool that did not work in that house",
    "memory_silent_plural": "two-object chore with memory silent about the object",
    "memory_silent": "memory silent about the goal's object",
    "memory_misled": "goal object not where memory said",
    "step_limit_after_take": "ran out of steps after taking the object",
    "step_limit_exploring": "ran out of steps exploring, object never taken",
    "success_guided": "succeeded where memory pointed",
    "success_explored": "succeeded by exploring",
}
_MENTION = re.compile(r"\b([a-z]+ \d+)\b")
_VERBS = ("clean", "heat", "cool")


def _actions(ep: dict[str, Any]) -> list[str]:
    acts = ep.get("last_actions") or ep.get("actions") or []
    return [" ".join(str(a).lower().split()) for a in acts]


def classify(ep: dict[str, Any]) -> str:
    """The class of one deployment episode (see the module docstring)."""
    goal_text = str(ep.get("goal", ""))
    goal = parse_goal(f"Your task is to: {goal_text}")
    actions = _actions(ep)
    memory = str(ep.get("memory") or "")
    places = set(_MENTION.findall(memory.lower())) | {a[6:] for a in actions if a.startswith("go to ")}
    votes: dict[str, float] = {}
    if goal is not None and memory.strip():
        votes, _ = memory_votes(memory, goal.kind, goal.verb, goal.target, frozenset(places))
    top = max((p for p in votes if votes[p] > 0), key=lambda p: votes[p], default=None)
    first_go = next((a[6:] for a in actions if a.startswith("go to ")), None)
    if ep.get("success"):
        return "success_guided" if top is not None and first_go == top else "success_explored"
    for i in range(len(actions) - 2):
        if actions[i] == actions[i + 1] == actions[i + 2]:
            return "repeated_action"
    if goal is not None and goal.verb:
        tried = {a.rsplit(" with ", 1)[-1] for a in actions if a.startswith(goal.verb + " ") and " with " in a}
        if len(tried) >= 2:
            return "wrong_tool"
    if goal is not None and not any(v > 0 for v in votes.values()):
        return "memory_silent_plural" if goal.count == 2 else "memory_silent"
    kind = goal.kind if goal is not None else ""
    took = [a for a in actions if a.startswith(f"take {kind} ")] if kind else []
    if top is not None and f"go to {top}" in actions:
        at = actions.index(f"go to {top}")
        following = actions[at + 1 : at + 3]
        if not any(a.startswith(f"take {kind} ") and a.endswith(f" from {top}") for a in following):
            return "memory_misled"
    return "step_limit_after_take" if took else "step_limit_exploring"


def count_classes(episodes: list[dict[str, Any]]) -> Counter[str]:
    return Counter(classify(e) for e in episodes)


@dataclass(frozen=True)
class Change:
    """A suggested change: the operator that implements it, its text, and the evidence."""

    op: str
    what: str
    why: str
    weight: float  # how many classified episodes it addresses (ties: earlier first)


# The text of each change names its mechanism in words the writer maps back to the
# operator (alma_tui.offline.mechanisms.operators); a test keeps the two in step.
WHAT = {
    "start_memory": "Start storing episodes in memory and retrieve the most similar one",
    "extract_facts": "Extract object-location facts (object kind -> receptacle where it was taken) "
    "and aggregate them as counts, best first",
    "seen": "Also record every object seen in opened receptacles (sightings), not only pick-ups",
    "plurals": "Read plural goal words (two-object chores) as their object kind",
    "house": "Keep the counts per house kind, told apart by the receptacle layout",
    "negatives": "Also record where the goal object was looked for and was absent",
    "more_recall": "Increase recall: return more receptacles per object kind (higher top_k)",
    "failures": "Remember tools that failed or carry an out-of-order sign (mistakes), and say so",
    "tools": "Remember which receptacle worked to clean/heat/cool (tool rules)",
    "object_filter": "Filter retrieved episodes to the goal object (same object kind)",
    "success_only": "Store successful episodes only; failed episodes are not evidence",
    "shorter": "Return fewer, shorter memories (lower top_k and char budget)",
    "recency": "Rank places by the evidence from days near the task's day: places drift over time, so recency matters",
}


def _pct(n: int, total: int) -> str:
    return f"{n}/{total}"


def rank_changes(counts: Counter[str], genome: dict[str, Any], n: int) -> list[Change]:
    """Changes addressing the counted failures, most evidence first; each ``why`` cites its counts.

    ``genome`` is the parent's mechanism choices; a change is proposed only where it would
    apply to them (extracting facts is the answer to silence for an episode store, recording
    sightings for a fact store, and so on).
    """
    facts = genome.get("store") == "facts"
    store = genome.get("store")
    cands: dict[str, tuple[float, list[str]]] = {}

    def add(op: str, cls: str, weight: float = 1.0) -> None:
        k = counts.get(cls, 0)
        if not k:
            return
        w, why = cands.get(op, (0.0, []))
        cands[op] = (w + weight * k, [*why, f"{_pct(k, n)} sampled episodes: {DESCRIBE[cls]}"])

    silent = ("memory_silent", "memory_silent_plural")
    if store == "none":
        for c in (*silent, "step_limit_exploring"):
            add("start_memory", c)
    elif not facts:
        for c in (*silent, "memory_misled", "step_limit_exploring"):
            add("extract_facts", c)
        add("object_filter", "memory_misled", 0.5)
        add("success_only", "repeated_action", 0.5)
        add("success_only", "wrong_tool", 0.5)
    else:
        if not genome.get("plurals"):
            add("plurals", "memory_silent_plural", 1.5)
        if genome.get("evidence") == "take":
            add("seen", "memory_silent")
            add("seen", "step_limit_exploring", 0.5)
        if genome.get("context") == "global":
            add("house", "memory_misled")
        if not genome.get("failures"):
            add("failures", "wrong_tool", 1.2)
            add("failures", "repeated_action", 1.0)
        if genome.get("tools") != "worked":
            add("tools", "wrong_tool", 0.8)
            add("tools", "step_limit_after_take", 1.0)
        if genome.get("context") == "house":
            # Misled within the right house kind: the place may be stale (places drift), so
            # weigh recent evidence; once on, keep tuning how recent (a weaker suggestion).
            add("recency", "memory_misled", 0.3 if genome.get("window") else 0.8)
        if not genome.get("negatives"):
            add("negatives", "memory_misled", 0.6)
        if int(genome.get("top_k", 1)) < 4:
            add("more_recall", "memory_misled", 0.4)
            add("more_recall", "step_limit_exploring", 0.4)
            add("more_recall", "memory_silent_plural", 0.3)
    ranked = sorted(cands.items(), key=lambda kv: -kv[1][0])
    return [Change(op, WHAT[op], "; ".join(why) + ".", w) for op, (w, why) in ranked]
