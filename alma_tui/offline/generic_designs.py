"""Domain-general designs the offline meta agent writes for every domain but the household.

Why this exists: the household mechanisms (:mod:`alma_tui.offline.mechanisms`) extract
"mug 1 from drawer 2" facts; on TextWorld, Baba Is AI or a plug-in domain they find nothing,
so a search there produced children no better than no memory. These designs work over the
facts every episode has, whatever the domain: the goal text, the action -> observation
steps, the places an observation names, which steps failed, and the outcome. They write
memory in the shape the generic acting agent reads (:mod:`alma_tui.offline.generic_policy`,
its memory-reading contract): ``Task:``/``Outcome:``/``Setting:`` lines and ``ACTION ->
OBSERVATION`` steps.

A design is a small **genome** (``MECHANISMS``, with ``"family": "generic"``) rendered into
one readable module whose code consults it; the next generation recovers the genome from
the parent's code alone. Keys:

- ``store``: ``none`` | ``episodes`` (whole episodes, the top ``top_k`` by goal similarity) |
  ``digest`` (aggregated over the stored episodes of the most similar goal, see below);
- ``source``: ``all`` | ``success`` (failed episodes are not stored);
- ``match``: ``words`` (goal-word overlap) | ``exact_first`` (the same goal text before
  any overlap);
- ``top_k``: episodes (``episodes``) or successful solutions (``digest``) returned;
- ``steps``: steps kept per episode;
- ``sightings`` (digest): the steps, from any episode of the goal, that met the goal's
  object (an action or observation naming it), each under the place it happened;
- ``map`` (digest): every move between two named places seen in those episodes, once;
- ``failures`` (digest): actions that failed there, so the agent tries them last;
- ``char_budget``: cap on the returned text (best evidence first).
"""

from __future__ import annotations

import json
import re
import textwrap
from typing import Any

from alma_tui import pysource

__all__ = [
    "GENERIC_CHOICES",
    "GENERIC_DEFAULT",
    "GENERIC_NONE",
    "default_title",
    "describe",
    "genome_from_code",
    "is_generic",
    "normalise",
    "render",
]

Genome = dict[str, Any]

GENERIC_DEFAULT: Genome = {
    "family": "generic",
    "store": "episodes",
    "source": "all",
    "match": "words",
    "top_k": 1,
    "steps": 80,
    "sightings": False,
    "map": False,
    "failures": False,
    "char_budget": 4000,
}
GENERIC_NONE: Genome = {**GENERIC_DEFAULT, "store": "none"}
GENERIC_CHOICES: dict[str, tuple[Any, ...]] = {
    "store": ("none", "episodes", "digest"),
    "source": ("all", "success"),
    "match": ("words", "exact_first"),
    "sightings": (False, True),
    "map": (False, True),
    "failures": (False, True),
}
_BOUNDS = {"top_k": (1, 8), "steps": (10, 120), "char_budget": (500, 12000)}
_MECHANISMS_RE = re.compile(r"^MECHANISMS\s*=\s*(\{.*?\n\})", re.DOTALL | re.MULTILINE)


def normalise(genome: Genome) -> Genome:
    """Fill missing keys and clamp or drop invalid values: any parent yields a valid child."""
    g = dict(GENERIC_DEFAULT)
    for k, v in genome.items():
        if k in GENERIC_CHOICES and v in GENERIC_CHOICES[k]:
            g[k] = v
        elif k in _BOUNDS and isinstance(v, int) and not isinstance(v, bool):
            lo, hi = _BOUNDS[k]
            g[k] = max(lo, min(hi, v))
    return g


def is_generic(code: str) -> bool:
    m = _MECHANISMS_RE.search(code or "")
    return bool(m and re.search(r"[\"']family[\"']\s*:\s*[\"']generic[\"']", m.group(1)))


def genome_from_code(code: str) -> Genome:
    """The genome of a generic design; for other code (the built-in baselines, household
    designs, hand-written ones) the closest start: nothing stored -> ``none``, else whole
    episodes, top 1, with the largest character budget (what trajectory retrieval does: it
    returns a whole episode, and a child that cut it would lose its end)."""
    m = _MECHANISMS_RE.search(code or "")
    if m and is_generic(code):
        try:
            value = pysource.literal_eval(m.group(1))
        except (ValueError, SyntaxError):
            value = None
        if isinstance(value, dict):
            return normalise(value)
    low = (code or "").lower()
    body = r"[^:]*:\s*(?:\"\"\"[\s\S]*?\"\"\"\s*)?"
    stores_nothing = (
        "def update" not in low
        or re.search(rf"def update\(self[^)]*\){body}(?:return(?: none)?|pass)\s*\n", low)
        or re.search(rf"def retrieve\(self[^)]*\){body}return (?:\"\"|'')\s*\n", low)
    )
    return dict(GENERIC_NONE) if stores_nothing else {**GENERIC_DEFAULT, "char_budget": _BOUNDS["char_budget"][1]}


def describe(g: Genome) -> list[str]:
    """One bullet per mechanism, for the module docstring (the why of each choice)."""
    if g["store"] == "none":
        return ["Stores nothing; the acting agent explores from scratch."]
    src = "successful episodes only" if g["source"] == "success" else "every episode"
    match = "the same goal text first, then goal-word overlap" if g["match"] == "exact_first" else "goal-word overlap"
    out = [f"Stores {src}: goal, the first {g['steps']} steps, the places observations name, outcome."]
    if g["store"] == "episodes":
        out.append(f"Returns the top {g['top_k']} whole episodes by {match}, successes first.")
    else:
        out.append(
            f"Aggregates the stored episodes of the most similar goal (by {match}): its "
            f"{g['top_k']} shortest successful solutions, without the steps that failed."
        )
        if g["sightings"]:
            out.append("Lists where the goal's object was met (steps naming it), under their place, first.")
        if g["map"]:
            out.append("Lists every move between two named places seen in those episodes, once: a map.")
        if g["failures"]:
            out.append("Lists actions that failed, under their place, so the agent tries them last.")
    out.append(f"Output is capped at {g['char_budget']} characters, best evidence first.")
    return out


def default_title(g: Genome) -> str:
    if g["store"] == "none":
        return "No memory"
    if g["store"] == "episodes":
        bits = [f"Episode retrieval (top-{g['top_k']}"]
        if g["source"] == "success":
            bits.append(", successes only")
        if g["match"] == "exact_first":
            bits.append(", same goal first")
        return "".join(bits) + ")"
    extras = [name for name in ("sightings", "map", "failures") if g[name]]
    return "Goal digest" + (f" + {' + '.join(extras)}" if extras else " of solutions")


_TEMPLATE = '''\
"""{title}

{bullets}

Written by the offline meta agent ({lineage}).
"""

from __future__ import annotations

import re

from alma_tui.design_api import Episode, MemoryDesign, Query, Services

# The mechanism choices this module implements; the code below reads them (the offline
# meta agent reads this constant back to write the next generation).
MECHANISMS = {mechanisms}

_WORD = re.compile(r"[a-z0-9][a-z0-9'-]*")
# Words that say nothing about what a goal is about.
_STOP = {{"a", "an", "the", "and", "to", "of", "in", "on", "it", "your", "task", "is", "find", "take", "put", "go"}}
# A place an observation names: an Inform/TextWorld room header, or "You are in X."
_PLACE = re.compile(
    r"-=\\s*([^=\\n]+?)\\s*=-|\\byou (?:arrive at|are in|are at|enter)\\s+(?:the |a |an )?([^.,;\\n]+)", re.I
)
# What games answer when an action did nothing.
_FAILED = re.compile(
    r"^(?:nothing happens|you can'?t|you cannot|that'?s not|i don'?t|you don'?t|you see no|there is no)|not admissible",
    re.I,
)


def _words(text: str) -> set[str]:
    return {{w for w in _WORD.findall((text or "").lower()) if w not in _STOP}}


def _first_line(text: str) -> str:
    return next((ln.strip() for ln in (text or "").splitlines() if ln.strip()), "")[:200]


def _place(text: str) -> str | None:
    """The place an observation names, written so the agent recognises it again."""
    m = _PLACE.search(text or "")
    if m is None:
        return None
    return f"-= {{m.group(1).strip()}} =-" if m.group(1) else f"You are in {{m.group(2).strip()}}."


class GenericMemory(MemoryDesign):
    """Episodes of any text domain, returned whole or digested per goal (see the docstring)."""

    def __init__(self, services: Services) -> None:
        super().__init__(services)
        self.items: list[dict] = []  # one per stored episode

    def update(self, episode: Episode) -> None:
        if MECHANISMS["store"] == "none":
            return
        if MECHANISMS["source"] == "success" and not episode.success:
            return  # a failed episode's actions are not a plan to copy
        place = _place(episode.initial_observation)
        steps = []
        for step in episode.steps[: MECHANISMS["steps"]]:
            after = _place(step.observation) or place
            steps.append(
                {{
                    "action": " ".join((step.action or "").split()),
                    "obs": _first_line(step.observation),
                    "full": " ".join((step.observation or "").split())[:300],
                    "before": place,
                    "after": after,
                    "failed": bool(_FAILED.search((step.observation or "").strip())),
                }}
            )
            place = after
        self.items.append(
            {{
                "goal": episode.goal.strip(),
                "words": sorted(_words(episode.goal)),
                "success": bool(episode.success),
                "setting": _first_line(episode.initial_observation),
                "steps": steps,
            }}
        )

    def _similarity(self, item: dict, goal: str, words: set[str]) -> tuple:
        other = set(item["words"])
        overlap = len(words & other) / (len(words | other) or 1)
        exact = MECHANISMS["match"] == "exact_first" and item["goal"].lower() == goal.strip().lower()
        return (exact, round(overlap, 6))

    @staticmethod
    def _block(item: dict, only_worked: bool) -> list[str]:
        outcome = "success" if item["success"] else "failure"
        lines = [f"Task: {{item['goal']}}", f"Outcome: {{outcome}} in {{len(item['steps'])}} steps"]
        lines.append(f"Setting: {{item['setting']}}")
        for s in item["steps"]:
            if only_worked and s["failed"]:
                continue
            lines.append(f"{{s['action']}} -> {{s['obs']}}")
        return lines

    def retrieve(self, query: Query) -> str:
        if not self.items:
            return ""
        words = _words(query.goal)
        sims = [self._similarity(it, query.goal, words) for it in self.items]
        # most similar first; successes, then newer episodes, first among equals
        order = sorted(range(len(self.items)), key=lambda i: (sims[i], self.items[i]["success"], i), reverse=True)
        budget = MECHANISMS["char_budget"]
        if MECHANISMS["store"] == "episodes":
            chosen = ["\\n".join(self._block(self.items[i], False)) for i in order[: MECHANISMS["top_k"]]]
            return "\\n\\n".join(chosen)[:budget]
        family = [i for i in order if sims[i] == sims[order[0]]]  # the episodes of the most similar goal
        parts: list[str] = []
        if MECHANISMS["sightings"]:
            lines = ["Goal: where the goal's object was met before"]
            seen = set()
            for i in family:
                for s in self.items[i]["steps"]:
                    key = (s["before"], s["action"])
                    if s["failed"] or key in seen or not (words & (_words(s["action"]) | _words(s["full"]))):
                        continue
                    seen.add(key)
                    where = s["before"] or self.items[i]["setting"]
                    lines += [f"Setting: {{where}}", f"{{s['action']}} -> {{s['full']}}"]
            if len(lines) > 1:
                parts.append("\\n".join(lines))
        wins = sorted((i for i in family if self.items[i]["success"]), key=lambda i: len(self.items[i]["steps"]))
        for i in wins[: MECHANISMS["top_k"]]:
            parts.append("\\n".join(self._block(self.items[i], True)))
        if MECHANISMS["map"]:
            lines = ["Goal: moves between places seen before (a map)"]
            seen = set()
            for i in family:
                for s in self.items[i]["steps"]:
                    if s["failed"] or not s["before"] or s["after"] == s["before"]:
                        continue
                    if (s["before"], s["after"]) in seen or (s["after"], s["before"]) in seen:
                        continue
                    seen.add((s["before"], s["after"]))
                    lines += [f"Setting: {{s['before']}}", f"{{s['action']}} -> {{s['after']}}"]
            if len(lines) > 1:
                parts.append("\\n".join(lines))
        if MECHANISMS["failures"]:
            lines = ["Goal: actions that did nothing before"]
            seen = set()
            for i in family:
                for s in self.items[i]["steps"]:
                    if s["failed"] and (s["before"], s["action"]) not in seen:
                        seen.add((s["before"], s["action"]))
                        where = s["before"] or self.items[i]["setting"]
                        lines += [f"Setting: {{where}}", f"{{s['action']}} -> {{s['obs']}}"]
            if len(lines) > 1:
                parts.append("\\n".join(lines))
        return "\\n\\n".join(parts)[:budget]

    def snapshot(self) -> dict:
        return {{
            "episodes": len(self.items),
            "successes": sum(1 for it in self.items if it["success"]),
            "goals": len({{it["goal"] for it in self.items}}),
            "recent_goals": [it["goal"] for it in self.items[-10:]],
        }}
'''


def render(g: Genome, title: str | None = None, lineage: str = "") -> str:
    """The full module for genome ``g``."""
    g = normalise(g)
    title = title or default_title(g)
    bullets = "\n".join(textwrap.fill(b, width=88, initial_indent="- ", subsequent_indent="  ") for b in describe(g))
    mech = json.dumps(g, indent=4).replace("true", "True").replace("false", "False")
    return _TEMPLATE.format(title=title, bullets=bullets, lineage=lineage or "seed", mechanisms=mech)
