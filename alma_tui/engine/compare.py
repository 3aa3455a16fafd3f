"""`alma-tui compare`: several designs on identical task sets, one row each (the paper's table).

Every design is evaluated with the same :class:`EvalSettings` (so the same seed draws the
same collection and deployment tasks for all of them) by the caller's evaluation function,
which runs the design through the evaluator and its sandbox exactly as `alma-tui eval` does.
Finished rows are stored under a key of everything that makes scores comparable
(:func:`result_key`), so a repeated compare reuses them, and an interrupted one keeps what
finished. Designs run concurrently (each evaluation is seeded per phase, run and task, so
the numbers do not depend on the order they finish in).

Noise: each row is compared with the top row by an exact paired sign-flip permutation
test over the deployment tasks (each task's success averaged over runs; two-sided; Monte
Carlo with a fixed seed above :data:`EXACT_MAX_TASKS` tasks). A row whose p-value is at
least :data:`ALPHA` is marked as within noise of the top row.
"""

from __future__ import annotations

import hashlib
import json
import statistics
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from alma_tui.engine.designref import DesignRef
from alma_tui.engine.evaluator import EvalResult, EvalSettings, EvaluationFailed, Hooks
from alma_tui.store.models import CompareResult

__all__ = [
    "ALPHA",
    "NOISE_TEST",
    "CompareRow",
    "Evaluated",
    "paired_p_value",
    "rank",
    "result_key",
    "run_compare",
]

#: a row whose paired p-value against the top row is at least this is "within noise"
ALPHA = 0.05
#: up to this many tasks the sign-flip test enumerates all 2^n sign patterns
EXACT_MAX_TASKS = 16
MONTE_CARLO_SAMPLES = 20_000
NOISE_TEST = (
    "paired sign-flip permutation test vs the top row over the deployment tasks "
    f"(each task's success averaged over runs), two-sided, within noise when p >= {ALPHA:g}"
)


@dataclass
class Evaluated:
    """What the caller's evaluation function returns: the result and what its calls used."""

    result: EvalResult
    tokens: int = 0
    cost_usd: float = 0.0


#: evaluate(design, key, hooks, cancel) -> Evaluated: the design through the evaluator and its
#: sandbox; ``key`` names the row (charge its model calls to it); ``cancel`` stops it
EvaluateFn = Callable[[DesignRef, str, Hooks, threading.Event], Evaluated]


@dataclass
class CompareRow:
    label: str
    kind: str
    code_hash: str
    key: str
    score: float = 0.0
    score_se: float = 0.0
    run_scores: list[float] = field(default_factory=list)
    per_task: dict[str, list[float]] = field(default_factory=dict)  # task -> score per run
    episodes: int = 0
    #: episodes that crashed (the agent's model failed, ...): they count as 0, as in the search,
    #: but such a row is not stored, so a passing outage is not kept as the design's score
    episode_errors: int = 0
    tokens: int = 0
    cost_usd: float = 0.0
    wall_s: float = 0.0
    reused: bool = False
    error: str | None = None
    p_value: float | None = None  # vs the top row (None: the top row itself, or a failed one)
    within_noise: bool | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def tokens_per_episode(self) -> float:
        return self.tokens / self.episodes if self.episodes else 0.0

    @property
    def cost_per_episode(self) -> float:
        return self.cost_usd / self.episodes if self.episodes else 0.0

    def task_means(self) -> dict[str, float]:
        return {t: statistics.fmean(v) for t, v in self.per_task.items() if v}

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["tokens_per_episode"] = round(self.tokens_per_episode, 1)
        out["cost_per_episode"] = self.cost_per_episode
        out["wall_s"] = round(self.wall_s, 2)
        return out


def result_key(code_hash: str, domain: str, agent_model: str, settings: EvalSettings, extra: dict[str, Any]) -> str:
    """Everything that makes two scores comparable, hashed: the same key means the same measurement."""
    payload = {
        "code": code_hash,
        "domain": domain,
        "agent_model": agent_model,
        "split": settings.split,
        "runs": settings.runs,
        "n_collection": settings.n_collection,
        "n_deployment": settings.n_deployment,
        "seed": settings.seed,
        "protocol": settings.protocol,
        "agent_history": settings.agent_history,
        **extra,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def paired_p_value(a: Sequence[float], b: Sequence[float], *, seed: int = 0) -> float:
    """Two-sided p-value of the paired sign-flip permutation test on mean(a - b).

    Under "no difference" each task's difference is as likely to have either sign; the
    p-value is the share of sign patterns whose mean difference is at least as far from 0
    as the observed one (all 2^n patterns up to EXACT_MAX_TASKS tasks, else a seeded sample)."""
    if len(a) != len(b):
        raise ValueError("paired samples must have the same length")
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    n = len(d)
    observed = abs(float(d.sum()))
    if n == 0 or observed == 0.0:
        return 1.0
    if n <= EXACT_MAX_TASKS:
        patterns = np.arange(2**n, dtype=np.int64)[:, None] >> np.arange(n, dtype=np.int64)
        signs = 1.0 - 2.0 * (patterns & 1)
    else:
        rng = np.random.default_rng(seed)
        signs = rng.choice(np.array([-1.0, 1.0]), size=(MONTE_CARLO_SAMPLES, n))
    sums = np.abs(signs @ d)
    return float(np.mean(sums >= observed - 1e-9))


def rank(rows: Sequence[CompareRow], alpha: float = ALPHA) -> list[CompareRow]:
    """Rows sorted by score (ties: smaller s.e., then name), failed ones last, each finished one
    but the top marked with its paired p-value against the top row and whether that is noise."""
    ok = sorted((r for r in rows if r.ok), key=lambda r: (-r.score, r.score_se, r.label))
    failed = [r for r in rows if not r.ok]
    if ok:
        top = ok[0]
        top.p_value, top.within_noise = None, None
        top_means = top.task_means()
        for r in ok[1:]:
            means = r.task_means()
            tasks = sorted(set(top_means) & set(means))
            r.p_value = paired_p_value([top_means[t] for t in tasks], [means[t] for t in tasks])
            r.within_noise = r.p_value >= alpha
    return ok + failed


def _row_from_stored(design: DesignRef, key: str, s: CompareResult) -> CompareRow:
    return CompareRow(
        label=design.label,
        kind=design.kind,
        code_hash=design.code_hash,
        key=key,
        score=s.score,
        score_se=s.score_se,
        run_scores=list(json.loads(s.run_scores_json)),
        per_task={str(k): list(v) for k, v in json.loads(s.per_task_json).items()},
        episodes=s.episodes,
        tokens=s.tokens,
        cost_usd=s.cost_usd,
        wall_s=s.wall_s,
        reused=True,
    )


def _row_from_result(design: DesignRef, key: str, ev: Evaluated) -> CompareRow:
    per_task: dict[str, list[float]] = {}
    for e in sorted(ev.result.episodes, key=lambda e: (e.run, e.task_id)):
        if e.phase == "deployment":
            per_task.setdefault(e.task_id, []).append(e.score)
    return CompareRow(
        label=design.label,
        kind=design.kind,
        code_hash=design.code_hash,
        key=key,
        score=ev.result.score,
        score_se=ev.result.score_se,
        run_scores=list(ev.result.run_scores),
        per_task=per_task,
        episodes=len(ev.result.episodes),
        episode_errors=sum(1 for e in ev.result.episodes if e.error),
        tokens=ev.tokens,
        cost_usd=ev.cost_usd,
        wall_s=ev.result.wall_s,
    )


@dataclass
class Progress:
    """Where run_compare reports (the CLI draws a bar of designs x runs from it)."""

    reused: Callable[[CompareRow], None] = lambda row: None
    started: Callable[[DesignRef], None] = lambda design: None
    run_done: Callable[[DesignRef, int], None] = lambda design, run: None  # a deployment run finished
    finished: Callable[[CompareRow], None] = lambda row: None


def run_compare(
    designs: Sequence[DesignRef],
    evaluate: EvaluateFn,
    *,
    store: Any,
    domain: str,
    agent_model: str,
    settings: EvalSettings,
    n_deployment: int,
    extra_key: dict[str, Any] | None = None,
    jobs: int = 1,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> list[CompareRow]:
    """Evaluate each design not already stored under its key (``jobs`` at once), store each
    finished row at once, and return all rows ranked (see :func:`rank`).

    ``n_deployment`` is the number of deployment tasks per run (to see a run finish). A row
    with crashed episodes is returned but not stored (the next compare measures it again).
    ``store`` (``alma_tui.store.Store``) gives and keeps finished rows. On KeyboardInterrupt
    ``cancel`` is set, the running evaluations stop, the finished rows stay stored, and the
    interrupt propagates."""
    progress = progress or Progress()
    cancel = cancel or threading.Event()
    extra = dict(extra_key or {})
    rows: dict[str, CompareRow] = {}
    todo: list[tuple[DesignRef, str]] = []
    for d in designs:
        key = result_key(d.code_hash, domain, agent_model, settings, extra)
        if key in rows or any(k == key for _, k in todo):
            continue  # named twice (`best` and its id): one row, under the first name
        stored = store.compare_result(key)
        if stored is not None:
            rows[key] = _row_from_stored(d, key, stored)
            progress.reused(rows[key])
        else:
            todo.append((d, key))

    def one(design: DesignRef, key: str) -> CompareRow:
        progress.started(design)
        done_per_run: dict[int, int] = {}
        lock = threading.Lock()

        def on_episode(rec: Any) -> None:
            if rec.phase != "deployment":
                return
            with lock:
                done_per_run[rec.run] = done_per_run.get(rec.run, 0) + 1
                finished_run = done_per_run[rec.run] == n_deployment
            if finished_run:
                progress.run_done(design, rec.run)

        try:
            ev = evaluate(design, key, Hooks(on_episode=on_episode), cancel)
        except EvaluationFailed as exc:
            row = CompareRow(design.label, design.kind, design.code_hash, key, error=exc.reason)
            progress.finished(row)
            return row
        row = _row_from_result(design, key, ev)
        if row.episode_errors:
            progress.finished(row)
            return row
        store.save_compare_result(
            CompareResult(
                key=key,
                code_hash=design.code_hash,
                label=design.label,
                domain=domain,
                agent_model=agent_model,
                split=settings.split,
                runs=settings.runs,
                n_collection=settings.n_collection,
                n_deployment=settings.n_deployment,
                seed=settings.seed,
                protocol_json=json.dumps(
                    {"protocol": settings.protocol, "agent_history": settings.agent_history, **extra},
                    sort_keys=True,
                    default=str,
                ),
                score=row.score,
                score_se=row.score_se,
                run_scores_json=json.dumps(row.run_scores),
                per_task_json=json.dumps(row.per_task),
                episodes=row.episodes,
                tokens=row.tokens,
                cost_usd=row.cost_usd,
                wall_s=row.wall_s,
            )
        )
        progress.finished(row)
        return row

    if todo:
        pool = ThreadPoolExecutor(max_workers=max(1, min(jobs, len(todo))), thread_name_prefix="alma-compare")
        futures: dict[Future[CompareRow], str] = {pool.submit(one, d, k): k for d, k in todo}
        try:
            pending = set(futures)
            while pending:
                done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                for f in done:
                    rows[futures[f]] = f.result()
        except BaseException:
            cancel.set()  # the evaluations in flight stop at their next step; finished rows are stored
            for f in futures:
                f.cancel()
            pool.shutdown(wait=True)
            raise
        pool.shutdown(wait=True)
    # a design named twice (`best` and its id) is one row, under the first name it was given
    seen: dict[str, CompareRow] = {}
    for d in designs:
        key = result_key(d.code_hash, domain, agent_model, settings, extra)
        if key not in seen and key in rows:
            seen[key] = rows[key]
    return rank(list(seen.values()))
