"""The genome: a design's mechanism choices as a small dict, and how to read it back from code.

Generated designs embed their genome as ``MECHANISMS = {...}``; the next
generation recovers it from the parent code alone (``ast.literal_eval`` of that
constant) and :func:`normalise` makes any genome, also a hand-edited one, valid.

Genome keys and their values:

- ``store``: what is remembered. ``none`` | ``trajectory`` (whole episodes,
  observations included) | ``actions`` (action sequences only) | ``facts``
  (extracted "object kind -> receptacle where it was found" counts).
- ``source``: which episodes feed memory: ``all`` | ``success``.
- ``evidence`` (facts): ``take`` (only where the object was picked up) |
  ``seen`` (also every object seen in an opened/visited receptacle).
- ``negatives`` (facts): also count where the goal object was looked for and
  absent, and say so ("mug not found in drawer 2").
- ``tools`` (facts): remember which receptacle cleaned/heated/cooled: ``False`` |
  ``"used"`` (every attempt counts, failed ones too) | ``"worked"`` (only uses
  whose observation says it worked).
- ``failures`` (facts): also remember tool attempts that failed ("heat: microwave 1
  failed"), which the acting agent then tries last.
- ``plurals`` (facts): read a plural goal word ("two mugs", "knives") as its object
  kind; without it a two-object chore finds no fact.
- ``context`` (facts): ``global`` | ``house`` (keep counts per house kind, falling
  back to global counts for an unseen house kind).
- ``rank``: facts: ``count`` | ``recency``; episodes: ``similarity`` | ``recency``.
- ``window`` (facts): ``0`` (off) or a number of days: count only sightings made within
  that many days of the task's day ("It is day 37."), all of them when none is that close
  (object locations drift over time, so recent evidence is the right evidence).
- ``similarity`` (episodes): ``words`` (goal word overlap) | ``embed``
  (``services.embed`` cosine, word overlap as fallback).
- ``object_filter`` (episodes): only episodes that handled the goal's object kind.
- ``top_k``: how many episodes / receptacles per object kind are returned.
- ``char_budget``: hard cap on the retrieved text.
- ``format`` (facts): ``counts`` ("(x3)") | ``plain``.
- ``example`` (facts): append the most similar successful action sequence.
"""

from __future__ import annotations

import re
from typing import Any

from alma_tui import pysource

Genome = dict[str, Any]

DEFAULT_GENOME: Genome = {
    "store": "trajectory",
    "source": "all",
    "evidence": "take",
    "negatives": False,
    "tools": False,
    "failures": False,
    "plurals": False,
    "context": "global",
    "rank": "similarity",
    "similarity": "embed",
    "object_filter": False,
    "top_k": 1,
    "char_budget": 4000,
    "format": "plain",
    "example": False,
    "window": 0,
}

NO_MEMORY_GENOME: Genome = {**DEFAULT_GENOME, "store": "none", "similarity": "words"}

# Valid values, used to normalise a genome read from (possibly hand-edited) code.
CHOICES: dict[str, tuple[Any, ...]] = {
    "store": ("none", "trajectory", "actions", "facts"),
    "source": ("all", "success"),
    "evidence": ("take", "seen"),
    "negatives": (False, True),
    "tools": (False, "used", "worked"),
    "failures": (False, True),
    "plurals": (False, True),
    "context": ("global", "house"),
    "rank": ("similarity", "recency", "count"),
    "similarity": ("words", "embed"),
    "object_filter": (False, True),
    "format": ("plain", "counts"),
    "example": (False, True),
    "window": (0, 6, 9, 12, 18, 25, 35),
}
WINDOWS = CHOICES["window"]

MECHANISMS_RE = re.compile(r"^MECHANISMS\s*=\s*(\{.*?\n\})", re.DOTALL | re.MULTILINE)


def normalise(genome: Genome) -> Genome:
    """Fill missing keys and coerce invalid values, so any parent yields a valid child."""
    g = dict(DEFAULT_GENOME)
    if genome.get("tools") is True:  # designs written before tools had two modes
        genome = {**genome, "tools": "used"}
    for k, v in genome.items():
        if k in CHOICES and v in CHOICES[k]:
            g[k] = v
        elif k == "top_k" and isinstance(v, int):
            g[k] = max(1, min(8, v))
        elif k == "char_budget" and isinstance(v, int):
            g[k] = max(200, min(6000, v))
    if g["store"] != "facts":
        g["window"] = 0
    if g["store"] == "facts" and g["rank"] == "similarity":
        g["rank"] = "count"
    if g["store"] in ("trajectory", "actions") and g["rank"] == "count":
        g["rank"] = "similarity"
    return g


def genome_from_code(code: str) -> Genome:
    """Recover a design's mechanism choices from its code alone.

    Generated designs carry ``MECHANISMS = {...}``. Designs without it (the
    built-in baselines, hand-written or LLM-written code) map to the closest
    starting genome by what the code visibly does.
    """
    m = MECHANISMS_RE.search(code or "")
    if m:
        try:
            value = pysource.literal_eval(m.group(1))
            if isinstance(value, dict):
                return normalise(value)
        except (ValueError, SyntaxError):
            pass
    low = (code or "").lower()
    stores_nothing = "def update" not in low or re.search(
        r"def update\(self[^)]*\)[^:]*:\s*(?:\"\"\"[\s\S]*?\"\"\"\s*)?(?:return(?: none)?|pass)\s*\n",
        low,
    )
    if stores_nothing:
        return dict(NO_MEMORY_GENOME)
    g = dict(DEFAULT_GENOME)
    if "embed" not in low:
        g["similarity"] = "words"
    if "success" in low and "if not episode.success" in low:
        g["source"] = "success"
    return g
