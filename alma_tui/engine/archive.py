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
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Annotated

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


def select_parents(
    cands: list[Candidate],
    no_memory_score: float,
    rng: random.Random,
    params: SelectionParams = SelectionParams(),
    mode: str = "open-ended",
) -> list[str]:
    """Pinned designs first (always), then fill up to k: sampled or greedy. Vetoed never."""
    eligible = [c for c in cands if not c.vetoed]
    chosen = [c.id for c in eligible if c.pinned]
    slots = max(0, params.k - len(chosen))
    rest = [c for c in eligible if c.id not in chosen]
    if slots == 0 or not rest:
        return chosen
    if mode == "greedy":
        rest.sort(key=lambda c: (-c.score, c.id))
        return chosen + [c.id for c in rest[:slots]]
    if mode != "open-ended":
        raise ValueError(f"unknown selection mode {mode!r} (open-ended or greedy)")
    probs = probabilities(rest, no_memory_score, params)
    pool = dict(probs)
    for _ in range(min(slots, len(pool))):
        total = sum(pool.values())
        r = rng.random() * total
        acc = 0.0
        pick = next(iter(pool))
        for cid, w in pool.items():
            acc += w
            if r <= acc:
                pick = cid
                break
        chosen.append(pick)
        del pool[pick]
    return chosen
