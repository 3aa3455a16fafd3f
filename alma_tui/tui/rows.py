"""Plain rows the UI works with (no sqlmodel here: imported before the first frame)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

HEARTBEAT_STALE_S = 10.0


# -- rows -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunInfo:
    id: int
    status: str
    status_detail: str
    domain: str
    meta_model: str
    agent_model: str
    selection: str
    iterations_target: int
    iterations_done: int
    no_memory_score: float | None
    heartbeat_at: datetime | None
    pid: int | None
    sandbox_strong: bool | None = None  # from the engine's last run.sandbox event; None before it
    budget_usd: float | None = None  # from the run's stored settings (--budget-usd); None: no budget
    budget_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class DesignRow:
    id: str
    parent_id: str | None
    seq: int
    iteration: int
    origin: str
    title: str
    status: str
    score: float | None
    score_se: float | None
    visits: int
    pinned: bool
    vetoed: bool
    commit: str | None
    repairs: int
    error: str | None
    tokens: int
    cost_usd: float
    test_score: float | None = None  # held-out (test split), measured when it became the best
    second_parent_id: str | None = None  # a merge design's other parent


@dataclass(frozen=True, slots=True)
class EventRow:
    id: int
    ts: datetime | None
    design_id: str | None
    kind: str
    message: str
    data_json: str

    def data(self) -> dict[str, Any]:
        try:
            value = json.loads(self.data_json or "{}")
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}


@dataclass(frozen=True, slots=True)
class Totals:
    tokens: int = 0
    cost_usd: float = 0.0
    calls: int = 0
    unknown_cost_calls: int = 0
    by_role: tuple[tuple[str, int, float], ...] = ()


@dataclass(slots=True)
class Update:
    """What changed since the previous poll (None fields: unchanged)."""

    run: RunInfo | None = None
    run_changed: bool = False
    designs: list[DesignRow] | None = None
    events: list[EventRow] = field(default_factory=list)
    totals: Totals | None = None
    first: bool = False

    @property
    def empty(self) -> bool:
        return not (self.run_changed or self.designs is not None or self.events or self.totals)


@dataclass(slots=True)
class EpisodeRow:
    phase: str
    run: int
    task_id: str
    goal: str
    success: bool
    score: float
    steps: int
    retrieved_chars: int
    error: str | None


@dataclass(slots=True)
class DesignDetail:
    id: str
    title: str
    status: str
    origin: str
    parent_id: str | None
    iteration: int
    code: str
    parent_code: str | None
    parent_title: str | None
    parent_score: float | None
    score: float | None
    score_se: float | None
    run_scores: list[float]
    error: str | None
    error_detail: str | None
    repairs: int
    commit: str | None
    analysis: dict[str, Any] | None
    analysis_raw: str | None
    memory: Any
    memory_raw: str | None
    tokens: int
    cost_usd: float
    evaluation_status: str | None = None
    evaluation_wall_s: float | None = None
    evaluation_error: str | None = None
    episodes: list[EpisodeRow] = field(default_factory=list)
    # a merge design: its other parent (the Diff tab diffs against either)
    second_parent_id: str | None = None
    second_parent_code: str | None = None
    second_parent_title: str | None = None
    second_parent_score: float | None = None
    # why its parents were chosen: parent id -> the selection event's reasons (score, visits, ...)
    chosen_because: dict[str, dict[str, Any]] = field(default_factory=dict)
    no_memory_score: float | None = None
    test_score: float | None = None  # held-out (test split), measured when it became the best
    test_score_se: float | None = None


def heartbeat_age(run: RunInfo | None, now: datetime) -> float | None:
    if run is None or run.heartbeat_at is None:
        return None
    hb = run.heartbeat_at
    if hb.tzinfo is None:
        hb = hb.replace(tzinfo=UTC)
    return (now - hb).total_seconds()
