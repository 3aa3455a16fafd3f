"""Tables of the run store: the single source of truth shared by engine, CLI and TUI.

Everything a user may want to look at later (why a design was rejected, what a
deployment episode retrieved, what a call cost) is a row here, so a crashed or
killed process loses at most the step in flight. JSON-ish columns are stored as
text to keep the schema boring and portable.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class Run(SQLModel, table=True):
    """One search in one repo. A repo holds one run; resuming continues it."""

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(default_factory=utcnow)
    domain: str
    meta_model: str
    agent_model: str
    selection: str = "open-ended"
    seed: int = 0
    iterations_target: int = 0
    iterations_done: int = 0
    status: str = "running"  # running | paused | stopping | done | stopped | budget | error
    status_detail: str = ""
    settings_json: str = "{}"
    no_memory_score: float | None = None
    pid: int | None = None
    heartbeat_at: datetime | None = None


class Design(SQLModel, table=True):
    id: str = Field(primary_key=True)  # "d001", ...
    run_id: int = Field(foreign_key="run.id", index=True)
    seq: int = Field(index=True)
    parent_id: str | None = Field(default=None, index=True)
    # a merge child's other parent (its lineage commit is a git merge of both designs' commits)
    second_parent_id: str | None = None
    iteration: int = 0
    origin: str = "meta"  # builtin | meta | user
    title: str = ""
    code: str = ""
    status: str = "proposed"  # proposed | validating | evaluating | accepted | rejected
    error: str | None = None
    error_detail: str | None = None
    repairs: int = 0
    score: float | None = None
    score_se: float | None = None
    run_scores_json: str = "[]"
    visits: int = 0
    pinned: bool = False
    vetoed: bool = False
    commit: str | None = None
    analysis_json: str | None = None  # the meta agent's reflection on the parent that produced this design
    analysis_raw: str | None = None
    memory_json: str | None = None  # snapshot() after collection
    tokens: int = 0
    cost_usd: float = 0.0
    created_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
    # Held-out score: the design's fitness on the domain's test split, measured when it
    # became the best (the archive's `score` is on the search split, which steers the search).
    test_score: float | None = None
    test_score_se: float | None = None
    duplicate_of: str | None = None  # a child whose normalised code equals this archived design's


class Evaluation(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    design_id: str = Field(index=True)
    kind: str = "search"  # search | eval
    domain: str = ""
    agent_model: str = ""
    split: str = "train"
    seed: int = 0
    runs: int = 3
    status: str = "running"  # running | done | failed
    score: float | None = None
    score_se: float | None = None
    run_scores_json: str = "[]"
    error: str | None = None
    started_at: datetime = Field(default_factory=utcnow)
    wall_s: float | None = None


class Episode(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    evaluation_id: int = Field(index=True)
    design_id: str = Field(index=True)
    phase: str  # collection | deployment
    run: int = 0
    task_id: str = ""
    goal: str = ""
    success: bool = False
    score: float = 0.0
    steps: int = 0
    retrieved: str = ""
    trajectory_json: str = "[]"
    error: str | None = None
    wall_s: float = 0.0


class Event(SQLModel, table=True):
    """Append-only log the TUI tails by id."""

    id: int | None = Field(default=None, primary_key=True)
    ts: datetime = Field(default_factory=utcnow)
    run_id: int | None = Field(default=None, index=True)
    design_id: str | None = Field(default=None, index=True)
    kind: str = Field(index=True)
    message: str = ""
    data_json: str = "{}"


class LLMCall(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    ts: datetime = Field(default_factory=utcnow)
    run_id: int | None = Field(default=None, index=True)
    design_id: str | None = Field(default=None, index=True)
    role: str  # meta | agent | design | embed
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0  # of prompt_tokens, read from the provider's prompt cache (priced lower)
    cost_usd: float = 0.0
    cost_known: bool = True
    latency_s: float = 0.0
    retries: int = 0
    ok: bool = True
    error: str | None = None
    task: str | None = None  # analyze | write | repair | act | design | embed
    prompt_version: str | None = None  # engine.prompts.PROMPT_VERSION / agent.prompt.AGENT_PROMPT_VERSION


class Command(SQLModel, table=True):
    """A steering command from the CLI or the TUI, applied by the engine."""

    id: int | None = Field(default=None, primary_key=True)
    ts: datetime = Field(default_factory=utcnow)
    kind: str  # pin | unpin | veto | unveto | pause | resume | hint | stop
    design_id: str | None = None
    text: str = ""
    source: str = "cli"
    applied_at: datetime | None = None


class CompareResult(SQLModel, table=True):
    """One finished row of `alma-tui compare`: a design evaluated under one protocol.

    ``key`` hashes everything that makes two scores comparable (the design's exact code, the
    domain, the agent model, the split, runs, pool sizes, seed and the rest of the protocol),
    so repeating a compare reuses the row instead of evaluating again. A row is written as soon
    as its design finishes: an interrupted compare keeps the finished ones."""

    __tablename__ = "compare_result"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(index=True, unique=True)
    code_hash: str = Field(index=True)
    label: str = ""  # the name it was first compared under (tables show the name given now)
    domain: str = ""
    agent_model: str = ""
    split: str = "test"
    runs: int = 3
    n_collection: int = 0
    n_deployment: int = 0
    seed: int = 0
    protocol_json: str = "{}"  # the other settings in the key (protocol, agent history, ...)
    score: float = 0.0
    score_se: float = 0.0
    run_scores_json: str = "[]"
    per_task_json: str = "{}"  # deployment task id -> its score in each run (for paired tests)
    episodes: int = 0
    tokens: int = 0
    cost_usd: float = 0.0
    wall_s: float = 0.0
    created_at: datetime = Field(default_factory=utcnow)
