"""Mutation operators: each maps an analysis suggestion to a genome change.

An analysis (the offline meta agent's own, or a real model's) suggests changes in
words; :data:`OPERATORS` maps each to a genome edit by keywords, and :func:`mutate`
draws which suggestion a child follows.
"""

from __future__ import annotations

import random
import re
from typing import Any

from alma_tui.offline.mechanisms.genome import DEFAULT_GENOME, WINDOWS, Genome, normalise


def _op_extract_facts(g: Genome, rng: random.Random) -> Genome:
    return {
        **g,
        "store": "facts",
        "rank": "count",
        "format": "counts",
        # Half the time the first extraction already reads observations too.
        "evidence": rng.choice(("take", "seen")),
        "top_k": max(g["top_k"], 3),
        "char_budget": min(g["char_budget"], 1200),
    }


def _op_success_only(g: Genome, rng: random.Random) -> Genome:
    return {**g, "source": "success"}


def _op_all_episodes(g: Genome, rng: random.Random) -> Genome:
    return {**g, "source": "all"}


def _op_shorter(g: Genome, rng: random.Random) -> Genome:
    if g["store"] in ("trajectory", "actions") and g["top_k"] <= 1 and g["char_budget"] <= 800:
        return {**g, "store": "actions"} if g["store"] == "trajectory" else g
    return {**g, "top_k": max(1, g["top_k"] - 1), "char_budget": max(300, g["char_budget"] // 2)}


def _op_more_recall(g: Genome, rng: random.Random) -> Genome:
    if g["store"] == "facts" and g["evidence"] == "take":
        return {**g, "evidence": "seen"}
    return {
        **g,
        "top_k": min(8, g["top_k"] + rng.choice((1, 2))),
        "char_budget": min(6000, int(g["char_budget"] * 1.5)),
    }


def _op_house(g: Genome, rng: random.Random) -> Genome:
    return {**g, "context": "house"} if g["store"] == "facts" else _op_extract_facts(g, rng)


def _op_negatives(g: Genome, rng: random.Random) -> Genome:
    return {**g, "negatives": True} if g["store"] == "facts" else g


def _op_tools(g: Genome, rng: random.Random) -> Genome:
    # Count only uses that worked: an attempt at a broken tool is a mistake, not a rule.
    return {**g, "tools": "worked"} if g["store"] == "facts" else g


def _op_failures(g: Genome, rng: random.Random) -> Genome:
    return {**g, "failures": True} if g["store"] == "facts" else g


def _op_plurals(g: Genome, rng: random.Random) -> Genome:
    return {**g, "plurals": True} if g["store"] == "facts" else g


def _op_recency(g: Genome, rng: random.Random) -> Genome:
    if g["store"] != "facts":
        return {**g, "rank": "recency"}
    # Facts: count only evidence from days near the task's; once on, tune how near
    # (narrow: little evidence; wide: stale evidence), one step either way.
    if not g["window"]:
        return {**g, "window": rng.choice((18, 25))}
    i = WINDOWS.index(g["window"])
    return {**g, "window": WINDOWS[max(1, min(len(WINDOWS) - 1, i + rng.choice((-1, 1))))]}


def _op_count(g: Genome, rng: random.Random) -> Genome:
    if g["store"] != "facts":
        return g
    return {**g, "rank": "count", "format": "counts"}


def _op_embed(g: Genome, rng: random.Random) -> Genome:
    if g["store"] == "facts":
        return g
    return {**g, "similarity": "embed", "rank": "similarity"}


def _op_object_filter(g: Genome, rng: random.Random) -> Genome:
    return {**g, "object_filter": True} if g["store"] != "facts" else g


def _op_actions(g: Genome, rng: random.Random) -> Genome:
    return {**g, "store": "actions", "source": "success"} if g["store"] == "trajectory" else g


def _op_seen(g: Genome, rng: random.Random) -> Genome:
    return {**g, "evidence": "seen"} if g["store"] == "facts" else g


def _op_example(g: Genome, rng: random.Random) -> Genome:
    return {**g, "example": not g["example"]} if g["store"] == "facts" else g


def _op_start_memory(g: Genome, rng: random.Random) -> Genome:
    if g["store"] != "none":
        return g
    return {
        **DEFAULT_GENOME,
        "similarity": rng.choice(("words", "embed")),
        "top_k": rng.choice((1, 2)),
    }


# (name, keyword pattern matched against a suggestion's what+why, operator).
# The patterns are deliberately broad so suggestions written by a real LLM map too.
OPERATORS: list[tuple[str, re.Pattern[str], Any]] = [
    ("plurals", re.compile(r"plural|two.object"), _op_plurals),
    (
        "failures",
        re.compile(r"broken|out.of.order|mistake|tools? that failed|failed tools?"),
        _op_failures,
    ),
    (
        "start_memory",
        re.compile(r"\b(store|start|add|begin)\b.*\b(memory|episodes?)\b|no memory"),
        _op_start_memory,
    ),
    (
        "extract_facts",
        re.compile(r"extract|aggregat|object.?(kind.?)?(->|to)?.?location|fact"),
        _op_extract_facts,
    ),
    ("house", re.compile(r"house|per.?(kind|family|context)|layout"), _op_house),
    ("negatives", re.compile(r"not found|negative|absent|avoid revisit|dead.?end"), _op_negatives),
    ("tools", re.compile(r"\btools?\b|clean|heat|cool|microwave|fridge|sinkbasin"), _op_tools),
    (
        "success_only",
        re.compile(r"success(ful)?.{0,20}only|only.{0,20}success|failed episodes|failures?.{0,40}evidence"),
        _op_success_only,
    ),
    ("seen", re.compile(r"observ|\bseen\b|sighting|every object"), _op_seen),
    (
        "shorter",
        re.compile(r"too long|shorter|truncat|fewer|reduce|compact|noise|noisy"),
        _op_shorter,
    ),
    (
        "more_recall",
        re.compile(r"empty|more (facts|lines|recall|episodes)|increase|widen|recall"),
        _op_more_recall,
    ),
    (
        "object_filter",
        re.compile(r"goal object|object word|filter|wrong object|irrelevant|same object"),
        _op_object_filter,
    ),
    ("actions", re.compile(r"action sequence|successful actions|drop observations"), _op_actions),
    ("count", re.compile(r"\bcounts?\b|frequen|most common|confidence"), _op_count),
    ("recency", re.compile(r"recen|latest|newest"), _op_recency),
    ("embed", re.compile(r"embed|semantic"), _op_embed),
    ("example", re.compile(r"example|demonstrat"), _op_example),
]
OPERATOR_NAMES = [name for name, _, _ in OPERATORS]


def operators_for(text: str) -> list[str]:
    """Names of the operators a suggestion text asks for, in table order."""
    low = (text or "").lower()
    return [name for name, pat, _ in OPERATORS if pat.search(low)]


def apply_operator(name: str, genome: Genome, rng: random.Random) -> Genome:
    for n, _, fn in OPERATORS:
        if n == name:
            return normalise(fn(dict(genome), rng))
    raise KeyError(name)


def mutate(genome: Genome, suggestions: list[tuple[int, str]], rng: random.Random) -> tuple[Genome, list[str]]:
    """Child genome and the names of the operators applied.

    ``suggestions`` are ``(priority, text)``, ranked by the evidence. One is drawn with
    weight ``1/priority^2`` (so the top one usually wins but siblings and re-asks explore
    the others); its first operator that changes the genome is applied. With
    probability 0.4 the next suggestion's change is combined with it (two problems the
    log shows, fixed at once), and with probability 0.1 one more random operator is
    applied (a model's own initiative). If nothing changed, random operators are tried
    so a child always differs from its parent.
    """
    parent = normalise(genome)
    child = dict(parent)
    applied: list[str] = []
    ranked = sorted(suggestions, key=lambda s: s[0])

    def apply_first(text: str) -> bool:
        nonlocal child
        for name in operators_for(text):
            cand = apply_operator(name, child, rng)
            if cand != child:
                child = cand
                applied.append(name)
                return True
        return False

    if ranked:
        weights = [1.0 / max(1, p) ** 2 for p, _ in ranked]
        order = list(range(len(ranked)))
        first = rng.choices(order, weights=weights, k=1)[0]
        order.remove(first)
        for idx in [first, *order]:
            if apply_first(ranked[idx][1]):
                rest = [i for i in range(len(ranked)) if i != idx]
                if rest and rng.random() < 0.4:
                    for j in rest:
                        if apply_first(ranked[j][1]):
                            break
                break
    if rng.random() < 0.1 or not applied:
        names = list(OPERATOR_NAMES)
        rng.shuffle(names)
        for name in names:
            cand = apply_operator(name, child, rng)
            if cand != child and cand != parent:
                child = cand
                applied.append(name)
                break
    return child, applied
