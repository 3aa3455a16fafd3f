"""Settings of one search, persisted in the run row so a resume uses the same ones."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from alma_tui.engine.archive import SelectionParams
from alma_tui.engine.evaluator import EvalSettings

DEFAULT_REPO = Path("designs_repo")
DEFAULT_META_MODEL = "offline/meta"
DEFAULT_AGENT_MODEL = "offline/agent"


@dataclass
class SearchConfig:
    repo: Path = DEFAULT_REPO
    domain: str = "household"
    meta_model: str = DEFAULT_META_MODEL
    agent_model: str = DEFAULT_AGENT_MODEL
    design_model: str | None = None  # design-internal llm(); defaults to the agent model
    embedding_model: str | None = None  # None: fast local hashing embedding
    api_base: str | None = None
    iterations: int = 5
    selection: str = "open-ended"
    seed: int = 0
    max_repairs: int = 3
    budget_usd: float | None = None
    budget_tokens: int | None = None
    # real models (alma_tui/llm/client.py): per-role servers, generation settings, limits
    meta_api_base: str | None = None  # overrides api_base for the meta model
    agent_api_base: str | None = None  # overrides api_base for the agent, design and embedding models
    env_file: str | None = None  # KEY=VALUE file read into the environment (the path is stored, never keys)
    meta_reasoning: str | None = None  # reasoning_effort low|medium|high; dropped where unsupported
    agent_reasoning: str | None = None
    meta_temperature: float | None = None
    agent_temperature: float | None = None
    max_concurrent_llm: int = 8  # requests in flight per model
    llm_timeout_s: float = 120.0
    llm_retries: int = 4  # retries per call on 429/5xx/timeouts before the provider counts as unavailable
    allow_weak_sandbox: bool = False  # run designs without OS isolation where the machine has none
    outage_wait_s: float = 30.0  # first automatic retry after an outage pause (doubles, capped at 10 min)
    params: SelectionParams = field(default_factory=SelectionParams)
    eval: EvalSettings = field(default_factory=EvalSettings)

    def to_json(self) -> str:
        data = asdict(self)
        data["repo"] = str(self.repo)
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> SearchConfig:
        data = json.loads(text or "{}")
        known = {f.name for f in fields(cls)}
        data = {k: v for k, v in data.items() if k in known}
        if "params" in data:
            data["params"] = SelectionParams(**data["params"])
        if "eval" in data:
            data["eval"] = EvalSettings(**data["eval"])
        if "repo" in data:
            data["repo"] = Path(data["repo"])
        return cls(**data)
