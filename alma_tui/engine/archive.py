"""Parent selection: the whole formula lives here, with its knobs explicit.

Open-ended selection (ALMA): a design's priority rises with its score relative to
the no-memory normaliser and falls with how often it has already been expanded:

    normalized = sigmoid((score - score_no_memory) / score_scale)
    priority   = normalized - visit_penalty * log(1 + visits)
    p(design)  = softmax(priority / temperature)

and ``k`` parents are drawn without replacement. Two bugs of the reference code are
fixed: visits accumulate across iterations (they live in the store), and the RNG is
derived once per (run seed, iteration) instead of being reset to a constant on every
call, so draws differ across iterations yet a resumed run repeats them exactly.
The reference used score_scale=1, which squeezes `normalized` into ~0.27-0.73 so the
visit penalty dominates; our default scale makes a 10-point gain visible.
Greedy selection (the paper's ablation) always takes the best designs.

Pareto selection (GEPA's candidate selector, beyond the paper) reads the per-task
deployment results instead of the mean: a design is on the frontier when it has the
best mean reward on at least one search task (every design tied for the best shares
that task; a task nobody solved is led by nobody), and

    credit(design) = sum over the tasks it leads of 1 / (designs tied on that task)
    weight(design) = credit * exp(-visit_penalty * log(1 + visits) / temperature)

so a design that is the only one to solve "cool" chores keeps a real chance even when
its mean is low, and the visit penalty is the very factor open-ended selection applies
(its softmax of ``-visit_penalty*log(1+visits)/temperature``). Parents are drawn
without replacement from the frontier; when the frontier has fewer designs than free
slots, the rest are drawn from the frontier again (a design off the frontier leads no
task). With no per-task results (every task unsolved) it falls back to open-ended.

Merging (``merge_partners``): each child is, with probability ``merge_rate``, written
from two parents; the second is the design that leads most of the tasks the first
does not (its complement), else the best other design by mean score.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

from annotated_types import Ge, Gt, Le


@dataclass(frozen=True)
class Candidate:
    id: str
    score: float
    visits: int = 0
    pinned: bool = False
    vetoed: bool = False


@dataclass(frozen=True)
class SelectionParams:
    # ranges are checked where settings are read (alma_tui/engine/config.py validates them with pydantic)
    k: Annotated[int, Ge(1), Le(100)] = 2
    score_scale: Annotated[float, Gt(0)] = 0.1
    visit_penalty: Annotated[float, Ge(0)] = 0.5
    temperature: Annotated[float, Gt(0)] = 0.25

    def describe_pareto(self) -> str:
        return (
            f"p ~ tasks led (a tie shared) * exp(-{self.visit_penalty:g}*log(1+visits)/{self.temperature:g}), "
            f"k={self.k}"
        )

    def describe(self) -> str:
        return (
            f"p ~ softmax((sigmoid((s - s0)/{self.score_scale:g}) - {self.visit_penalty:g}"
            f"*log(1+visits)) / {self.temperature:g}), k={self.k}"
        )


def iteration_rng(seed: int, iteration: int) -> random.Random:
    """One RNG per (run seed, iteration): independent draws, reproducible on resume."""
    return random.Random(f"alma:{seed}:{iteration}")


def priority(c: Candidate, no_memory_score: float, params: SelectionParams) -> float:
    z = (c.score - no_memory_score) / params.score_scale
    normalized = 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))
    return normalized - params.visit_penalty * math.log1p(c.visits)


def probabilities(cands: list[Candidate], no_memory_score: float, params: SelectionParams) -> dict[str, float]:
    eligible = [c for c in cands if not c.vetoed]
    if not eligible:
        return {}
    logits = [priority(c, no_memory_score, params) / params.temperature for c in eligible]
    top = max(logits)
    weights = [math.exp(v - top) for v in logits]
    total = sum(weights)
    return {c.id: w / total for c, w in zip(eligible, weights, strict=True)}


MODES = ("open-ended", "greedy", "pareto")
#: a reward within this of a task's best counts as tied for it (floats averaged over runs)
TIE_EPS = 1e-9

#: design id -> task id -> mean deployment reward of that design on that search task
TaskTable = Mapping[str, Mapping[str, float]]


@dataclass(frozen=True)
class Choice:
    """One chosen parent and why: what the selection event and the TUI show."""

    id: str
    why: str  # pinned | sampled | greedy | frontier | frontier-again | open-ended fallback
    score: float
    visits: int
    probability: float | None = None  # of the draw that picked it (None: not drawn)
    tasks_led: int = 0  # search tasks on which it has the best mean reward (ties included)
    credit: float = 0.0  # tasks led, a tie counting 1/(designs tied)

    def explain(self) -> dict[str, Any]:
        out: dict[str, Any] = {"why": self.why, "score": round(self.score, 4), "visits": self.visits}
        if self.probability is not None:
            out["p"] = round(self.probability, 4)
        if self.why.startswith("frontier") or self.tasks_led:
            out["tasks_led"] = self.tasks_led
            out["credit"] = round(self.credit, 3)
        return out


@dataclass(frozen=True)
class Frontier:
    """The per-task Pareto frontier: who leads which task."""

    leaders: dict[str, list[str]] = field(default_factory=dict)  # task -> designs tied for its best
    led: dict[str, list[str]] = field(default_factory=dict)  # design -> tasks it leads
    credit: dict[str, float] = field(default_factory=dict)  # design -> shared credit

    @property
    def members(self) -> list[str]:
        return sorted(self.led)


def frontier(table: TaskTable, eligible: Sequence[str] | None = None) -> Frontier:
    """Who leads each task among ``eligible`` designs (all of ``table`` when None).

    A task's leaders are the designs whose mean reward is its best (ties shared); a task
    whose best reward is 0 (nobody solved it) has no leader: it says nothing about who is
    better. A design that never ran a task does not compete on it."""
    ids = [d for d in (eligible if eligible is not None else list(table)) if d in table]
    tasks = sorted({t for d in ids for t in table[d]})
    leaders: dict[str, list[str]] = {}
    led: dict[str, list[str]] = {}
    credit: dict[str, float] = {}
    for t in tasks:
        scored = [(d, float(table[d][t])) for d in ids if t in table[d]]
        if not scored:
            continue
        best = max(v for _, v in scored)
        if best <= 0.0:
            continue
        tied = sorted(d for d, v in scored if v >= best - TIE_EPS)
        leaders[t] = tied
        for d in tied:
            led.setdefault(d, []).append(t)
            credit[d] = credit.get(d, 0.0) + 1.0 / len(tied)
    return Frontier(leaders, led, credit)


def pareto_weights(cands: list[Candidate], front: Frontier, params: SelectionParams) -> dict[str, float]:
    """Sampling probabilities over the frontier: shared credit times the open-ended visit factor."""
    raw = {
        c.id: front.credit[c.id] * math.exp(-params.visit_penalty * math.log1p(c.visits) / params.temperature)
        for c in cands
        if not c.vetoed and front.credit.get(c.id, 0.0) > 0
    }
    total = sum(raw.values())
    return {k: v / total for k, v in raw.items()} if total > 0 else {}


def _draw(pool: dict[str, float], rng: random.Random) -> str:
    total = sum(pool.values())
    r = rng.random() * total
    acc = 0.0
    for cid, w in pool.items():
        acc += w
        if r <= acc:
            return cid
    return next(reversed(pool))


def choose_parents(
    cands: list[Candidate],
    no_memory_score: float,
    rng: random.Random,
    params: SelectionParams = SelectionParams(),
    mode: str = "open-ended",
    table: TaskTable | None = None,
) -> list[Choice]:
    """Pinned designs first (always), then fill up to k: sampled, greedy or from the frontier.
    Vetoed never. Each choice says why it was made (see :class:`Choice`)."""
    if mode not in MODES:
        raise ValueError(f"unknown selection mode {mode!r} ({', '.join(MODES)})")
    eligible = [c for c in cands if not c.vetoed]
    by_id = {c.id: c for c in eligible}
    front = frontier(table or {}, [c.id for c in eligible])

    def choice(c: Candidate, why: str, p: float | None = None) -> Choice:
        return Choice(c.id, why, c.score, c.visits, p, len(front.led.get(c.id, [])), front.credit.get(c.id, 0.0))

    chosen = [choice(c, "pinned") for c in eligible if c.pinned]
    slots = max(0, params.k - len(chosen))
    rest = [c for c in eligible if c.id not in {x.id for x in chosen}]
    if slots == 0 or not rest:
        return chosen
    if mode == "greedy":
        rest.sort(key=lambda c: (-c.score, c.id))
        return chosen + [choice(c, "greedy") for c in rest[:slots]]
    probs = pareto_weights(rest, front, params) if mode == "pareto" else {}
    why = "frontier"
    if not probs:  # open-ended, or a pareto search with no solved task yet
        probs = probabilities(rest, no_memory_score, params)
        why = "sampled" if mode == "open-ended" else "open-ended fallback"
    pool = dict(probs)
    for _ in range(min(slots, len(pool))):
        pick = _draw(pool, rng)
        chosen.append(choice(by_id[pick], why, probs[pick]))
        del pool[pick]
    if mode == "pareto" and why == "frontier":  # fewer frontier designs than slots: draw them again
        for _ in range(slots - len(probs)):
            pick = _draw(dict(probs), rng)
            chosen.append(choice(by_id[pick], "frontier-again", probs[pick]))
    return chosen


def distribution(
    cands: list[Candidate],
    no_memory_score: float,
    params: SelectionParams,
    mode: str,
    table: TaskTable | None = None,
) -> dict[str, float]:
    """The probabilities a draw uses over the unpinned designs (empty for greedy): shown in the log."""
    rest = [c for c in cands if not c.pinned and not c.vetoed]
    if mode == "greedy":
        return {}
    if mode == "pareto":
        probs = pareto_weights(rest, frontier(table or {}, [c.id for c in rest]), params)
        if probs:
            return probs
    return probabilities(rest, no_memory_score, params)


def describe_choice(c: Choice) -> str:
    """Why a parent was chosen, in one line: ``d004: frontier, leads 5 tasks (credit 2.50), ...``."""
    parts = [c.why]
    if c.tasks_led:
        parts.append(f"leads {c.tasks_led} task{'s' if c.tasks_led != 1 else ''} (credit {c.credit:.2f})")
    parts.append(f"score {c.score:.3f}")
    parts.append(f"visits {c.visits}")
    if c.probability is not None:
        parts.append(f"p {c.probability:.2f}")
    return f"{c.id}: " + ", ".join(parts)


def select_parents(
    cands: list[Candidate],
    no_memory_score: float,
    rng: random.Random,
    params: SelectionParams = SelectionParams(),
    mode: str = "open-ended",
    table: TaskTable | None = None,
) -> list[str]:
    """The ids of :func:`choose_parents`' choices, in order."""
    return [c.id for c in choose_parents(cands, no_memory_score, rng, params, mode, table)]


def merge_rng(seed: int, iteration: int) -> random.Random:
    """The merge draws' own RNG: turning merging on or off never changes which parents are drawn."""
    return random.Random(f"alma-merge:{seed}:{iteration}")


def merge_partner(first: str, cands: list[Candidate], table: TaskTable | None = None) -> str | None:
    """The second parent of a merge child of ``first``: the design leading most of the tasks
    ``first`` does not (ties: higher mean score, then older id), so the child meets the
    mechanism that solves what ``first`` misses; with no such task, the best other design
    by mean score. None when ``first`` is the only eligible design."""
    others = [c for c in cands if not c.vetoed and c.id != first]
    if not others:
        return None
    front = frontier(table or {}, [first] + [c.id for c in others])
    mine = set(front.led.get(first, []))
    complement = {
        c.id: sum(1 for t in front.led.get(c.id, []) if t not in mine) for c in others
    }  # tasks it leads and ``first`` does not
    best = max(others, key=lambda c: (complement[c.id], c.score, -_age(c.id)))
    if complement[best.id] == 0:
        best = max(others, key=lambda c: (c.score, -_age(c.id)))
    return best.id


def _age(design_id: str) -> int:
    digits = "".join(ch for ch in design_id if ch.isdigit())
    return int(digits) if digits else 0


def merge_partners(
    parents: Sequence[str],
    cands: list[Candidate],
    rng: random.Random,
    rate: float,
    table: TaskTable | None = None,
) -> list[str | None]:
    """For each parent, its merge partner (None: an ordinary child). One draw per parent, always
    made, so the same (seed, iteration) decides the same merges whatever the archive holds."""
    out: list[str | None] = []
    for pid in parents:
        hit = rng.random() < rate
        out.append(merge_partner(pid, cands, table) if hit else None)
    return out


def compare_tasks(table: TaskTable, a: str, b: str) -> dict[str, list[str]]:
    """Where ``a`` and ``b`` differ, per search task: the tasks each is better on, and the ties."""
    ta, tb = table.get(a, {}), table.get(b, {})
    out: dict[str, list[str]] = {"a_better": [], "b_better": [], "tied": []}
    for t in sorted(set(ta) & set(tb)):
        va, vb = float(ta[t]), float(tb[t])
        key = "tied" if abs(va - vb) <= TIE_EPS else ("a_better" if va > vb else "b_better")
        out[key].append(t)
    return out
