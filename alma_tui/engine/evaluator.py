"""Fitness of a memory design: the batched ALMA protocol (DESIGN.md section 4).

1. the split's tasks are shuffled with the run seed; the first half is the collection
   set, the second the deployment set;
2. collection: the agent runs every collection task with an empty memory (concurrently),
   then ``update`` is called for each finished episode, serially, in task order;
3. deployment: the deployment tasks run ``runs`` times against the frozen memory;
   ``retrieve`` is called before each episode and its text goes into the agent's prompt;
4. fitness = mean over runs of the mean deployment reward, with its standard error.

The design itself runs in a sandbox child; a design failure (raise, hang, memory)
aborts the evaluation with a clear reason, while a crash of a single episode (e.g.
the model provider failing) counts as reward 0 and is logged.
"""

from __future__ import annotations

import random
import statistics
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Annotated, Any, Literal

from annotated_types import Ge, Le
from pydantic import AfterValidator

from alma_tui.agent.loop import DEFAULT_HISTORY, parse_history_policy, run_episode
from alma_tui.design_api import Episode, Query
from alma_tui.domains.base import Domain, Env, TaskSpec
from alma_tui.sandbox import DesignFailure, SandboxedDesign, SandboxLimits

#: complete(messages, seed) -> answer text of the acting model
AgentFn = Callable[[list[dict[str, Any]], int], str]


def _history(value: str) -> str:
    parse_history_policy(value)  # ValueError names what is accepted
    return value


@dataclass
class EvalSettings:
    # ranges are checked where settings are read (alma_tui/engine/config.py validates them with pydantic)
    n_collection: Annotated[int, Ge(1), Le(10_000)] = 12
    n_deployment: Annotated[int, Ge(1), Le(10_000)] = 12
    runs: Annotated[int, Ge(1), Le(1000)] = 3
    split: str = "train"
    seed: Annotated[int, Ge(0), Le(2**32 - 1)] = 0
    concurrency: Annotated[int, Ge(1), Le(256)] = 4
    protocol: Literal["batched", "sequential"] = "batched"
    # the acting agent's chat history: N | summary | summary:N (alma_tui.agent.loop.parse_history_policy)
    agent_history: Annotated[str, AfterValidator(_history)] = DEFAULT_HISTORY

    @property
    def n_tasks(self) -> int:
        return self.n_collection + self.n_deployment


@dataclass
class EpisodeRecord:
    phase: str
    run: int
    task_id: str
    goal: str
    success: bool
    score: float
    steps: int
    retrieved: str = ""
    trajectory: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    wall_s: float = 0.0


@dataclass
class EvalResult:
    score: float
    score_se: float
    run_scores: list[float]
    episodes: list[EpisodeRecord]
    memory: dict[str, Any]
    wall_s: float

    def per_task(self) -> dict[str, float]:
        out: dict[str, list[float]] = {}
        for e in self.episodes:
            if e.phase == "deployment":
                out.setdefault(e.task_id, []).append(e.score)
        return {k: sum(v) / len(v) for k, v in out.items()}


class EvaluationCancelled(Exception):
    """The user stopped the search mid-evaluation; nothing of it is kept."""


class EvaluationFailed(Exception):
    def __init__(self, reason: str, detail: str = "", kind: str = "error") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail
        self.kind = kind


@dataclass
class Hooks:
    """Where the evaluator reports progress (events for the store/TUI/progress bar)."""

    on_step: Callable[[str, int, str, int, str, str, float], None] | None = None
    on_episode: Callable[[EpisodeRecord], None] | None = None
    design_log: Callable[[str], None] | None = None
    design_llm: Callable[[str, str | None], str] | None = None
    design_embed: Callable[[list[str]], list[list[float]]] | None = None
    #: the acting agent for this evaluation (each design its own, so concurrent children's calls
    #: are charged to the right design); None: the evaluator's
    agent: AgentFn | None = None
    #: the design these hooks report for (a Ray executor names it in its own events)
    design_id: str | None = None
    #: the same hooks for reports from a worker node (a Ray executor labels each line with it)
    at: Callable[[str], Hooks] | None = None


def split_tasks(domain: Domain, settings: EvalSettings) -> tuple[list[TaskSpec], list[TaskSpec]]:
    tasks = list(domain.tasks(settings.split, settings.seed, settings.n_tasks))
    random.Random(f"split:{settings.seed}").shuffle(tasks)
    if len(tasks) < 2:
        raise EvaluationFailed(f"domain {domain.name!r} gave only {len(tasks)} task(s) for split {settings.split!r}")
    # fewer tasks than asked for (a small domain): split what there is in half
    n_col = settings.n_collection if len(tasks) >= settings.n_tasks else len(tasks) // 2
    return tasks[:n_col], tasks[n_col : n_col + settings.n_deployment]


def episode_seed(seed: int, phase: str, run: int, task_id: str) -> int:
    """Distinct, reproducible agent seeds per (phase, run, task)."""
    return random.Random(f"{seed}:{phase}:{run}:{task_id}").randrange(2**31)


#: runs a phase's episodes elsewhere (a Ray executor's episode batches): (phase, run,
#: [(task, memory text)], settings) -> [(record, episode or None)] in the tasks' order
EpisodeBatches = Callable[
    [str, int, list[tuple[TaskSpec, str]], EvalSettings], list[tuple[EpisodeRecord, Episode | None]]
]


class Evaluator:
    def __init__(
        self,
        domain: Domain,
        agent: AgentFn,
        *,
        limits: SandboxLimits | None = None,
        batches: EpisodeBatches | None = None,
    ) -> None:
        self.domain = domain
        self.agent = agent
        self.limits = limits or SandboxLimits()
        self.batches = batches

    def evaluate(
        self,
        code: str,
        settings: EvalSettings,
        hooks: Hooks | None = None,
        cancel: threading.Event | None = None,
    ) -> EvalResult:
        hooks = hooks or Hooks()
        if hooks.design_embed is None:  # offline default: the fast local hashing embedding
            from alma_tui.llm.local_embed import hash_embed

            hooks.design_embed = hash_embed
        cancel = cancel or threading.Event()
        started = time.perf_counter()
        collection, deployment = split_tasks(self.domain, settings)
        design = SandboxedDesign(
            code,
            llm=hooks.design_llm,
            embed=hooks.design_embed,
            log=hooks.design_log,
            limits=self.limits,
        )
        records: list[EpisodeRecord] = []
        try:
            design.start()
            col = self._phase("collection", 0, collection, lambda q: "", settings, hooks, cancel)
            records += [r for r, _ in col]
            for _, ep in col:  # serial, in task order
                if ep is not None:
                    design.update(ep)
            run_scores: list[float] = []
            for run in range(settings.runs):
                if settings.protocol == "sequential" and run > 0:
                    design.close()
                    design = SandboxedDesign(
                        code, llm=hooks.design_llm, embed=hooks.design_embed, log=hooks.design_log, limits=self.limits
                    )
                    design.start()
                    for _, ep in col:
                        if ep is not None:
                            design.update(ep)
                dep = self._phase(
                    "deployment",
                    run,
                    deployment,
                    design.retrieve,
                    settings,
                    hooks,
                    cancel,
                    update=design.update if settings.protocol == "sequential" else None,
                )
                records += [r for r, _ in dep]
                run_scores.append(statistics.fmean(r.score for r, _ in dep) if dep else 0.0)
            memory = design.snapshot()
        except DesignFailure as exc:
            raise EvaluationFailed(exc.reason, exc.detail, exc.kind) from exc
        finally:
            design.close()
        score = statistics.fmean(run_scores) if run_scores else 0.0
        se = statistics.stdev(run_scores) / len(run_scores) ** 0.5 if len(run_scores) > 1 else 0.0
        return EvalResult(score, se, run_scores, records, memory, time.perf_counter() - started)

    def recall(self, task: TaskSpec, retrieve: Callable[[Query], str], env: Env | None = None) -> str:
        """What the design's memory gives the agent before ``task`` (its first observation)."""
        obs0 = (env or self.domain.make_env(task)).reset()
        return retrieve(
            Query(
                goal=task.goal,
                observation=obs0,
                steps=[],
                step_index=0,
                domain=self.domain.name,
                task_id=task.task_id,
            )
        )

    def play(
        self,
        phase: str,
        run: int,
        task: TaskSpec,
        memory: str,
        settings: EvalSettings,
        hooks: Hooks,
        stopped: Callable[[], bool],
        update: Callable[[Episode], None] | None = None,
        env: Env | None = None,
    ) -> tuple[EpisodeRecord, Episode | None]:
        """One episode with ``memory`` in the agent's prompt: its record, and the episode for
        ``update`` (None when the agent or its provider failed: reward 0, logged). Runs where the
        episodes run: in this process, or in a Ray executor's episode batch on a worker."""
        t0 = time.perf_counter()
        env = env or self.domain.make_env(task)
        seed = episode_seed(settings.seed, phase, run, task.task_id)
        agent = hooks.agent or self.agent

        def step_hook(i: int, action: str, obs: str, reward: float) -> None:
            if stopped():
                raise EvaluationCancelled()
            if hooks.on_step:
                hooks.on_step(phase, run, task.task_id, i, action, obs, reward)

        try:
            episode, _info = run_episode(
                env,
                task,
                self.domain,
                memory,
                lambda msgs: agent(msgs, seed),
                on_step=step_hook,
                history=settings.agent_history,
            )
        except (EvaluationCancelled, DesignFailure):
            raise
        except Exception as exc:  # the agent or provider failed: reward 0, logged
            rec = EpisodeRecord(
                phase,
                run,
                task.task_id,
                task.goal,
                False,
                0.0,
                0,
                memory,
                error=f"{type(exc).__name__}: {exc}"[:500],
                wall_s=time.perf_counter() - t0,
            )
            if hooks.on_episode:
                hooks.on_episode(rec)
            return rec, None
        rec = EpisodeRecord(
            phase,
            run,
            task.task_id,
            episode.goal,
            episode.success,
            episode.score,
            episode.step_count,
            memory,
            [asdict(s) for s in episode.steps],
            wall_s=time.perf_counter() - t0,
        )
        if update is not None:
            update(episode)
        if hooks.on_episode:
            hooks.on_episode(rec)
        return rec, episode

    def _phase(
        self,
        phase: str,
        run: int,
        tasks: list[TaskSpec],
        retrieve: Callable[[Query], str],
        settings: EvalSettings,
        hooks: Hooks,
        cancel: threading.Event,
        update: Callable[[Episode], None] | None = None,
    ) -> list[tuple[EpisodeRecord, Episode | None]]:
        # A failing episode stops its siblings through `abort`, never through the caller's
        # `cancel` (that one means "the user stopped the search").
        abort = threading.Event()

        def stopped() -> bool:
            return cancel.is_set() or abort.is_set()

        def one(task: TaskSpec) -> tuple[EpisodeRecord, Episode | None]:
            if stopped():
                raise EvaluationCancelled()
            env = self.domain.make_env(task)
            memory = self.recall(task, retrieve, env)
            return self.play(phase, run, task, memory, settings, hooks, stopped, update, env=env)

        if self.batches is not None and update is None and tasks:
            # elsewhere (a Ray executor's episode batches): what memory gives each episode is read
            # here, where the design runs, in task order; the episodes themselves run remotely
            memories = []
            for t in tasks:
                if stopped():
                    raise EvaluationCancelled()
                memories.append(self.recall(t, retrieve))
            return self.batches(phase, run, list(zip(tasks, memories, strict=True)), settings)
        workers = max(1, min(settings.concurrency, len(tasks)))
        if workers == 1 or update is not None:
            return [one(t) for t in tasks]
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"alma-{phase}") as pool:
            futures = [pool.submit(one, t) for t in tasks]
            errors: list[BaseException] = []
            for f in futures:
                try:
                    f.result()
                except BaseException as exc:
                    abort.set()
                    errors.append(exc)
        if errors:
            # the real cause, not a sibling's EvaluationCancelled that it provoked
            real = [e for e in errors if not isinstance(e, EvaluationCancelled)]
            raise real[0] if real else errors[0]
        return [f.result() for f in futures]


def synthetic_episodes(
    domain: Domain, agent: AgentFn, n: int = 2, seed: int = 0, history: str = DEFAULT_HISTORY
) -> tuple[list[Episode], list[Query]]:
    """Real episodes on a few train tasks, for validating a new design quickly."""
    tasks = list(domain.tasks("train", seed + 7919, n + 1))
    eps: list[Episode] = []

    def act(messages: list[dict[str, Any]]) -> str:
        return agent(messages, seed)

    for t in tasks[:n]:
        ep, _ = run_episode(domain.make_env(t), t, domain, "", act, history=history)
        eps.append(ep)
    queries = []
    for t in tasks[n:] or tasks[:1]:
        obs0 = domain.make_env(t).reset()
        queries.append(Query(goal=t.goal, observation=obs0, domain=domain.name, task_id=t.task_id))
    return eps, queries
