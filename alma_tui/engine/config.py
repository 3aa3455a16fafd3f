"""Settings of one search: one typed, validated object, built once from all its sources.

``SearchConfig`` is the single source of truth for what a search runs with. Its field
annotations carry the valid ranges and choices (checked by pydantic, here and only here);
``FLAGS`` names the command-line flag of each user-settable field (the CLI derives its
``argparse`` flags from it, their types and choices from the annotations), and the same
name gives the environment variable (``ALMA_TUI_<FLAG>``) and the key in a settings file.

Precedence, lowest first (``resolve``)::

    defaults < settings stored in the repo (a resume keeps them) < --config FILE
             < ALMA_TUI_* environment variables < command-line flags

The run row stores the settings (``to_json``); the TUI hands the whole resolved object to
its engine process (``to_engine_json`` -> ``run --headless --settings-json``), so no flag
is ever re-listed by hand.
"""

from __future__ import annotations

import json
import os
import tomllib
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union, cast, get_args, get_origin, get_type_hints

from annotated_types import Ge, Gt, Le
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from alma_tui.agent.loop import HISTORY_STEPS
from alma_tui.engine.archive import SelectionParams
from alma_tui.engine.evaluator import EvalSettings

DEFAULT_REPO = Path("designs_repo")
DEFAULT_META_MODEL = "offline/meta"
DEFAULT_AGENT_MODEL = "offline/agent"
ENV_PREFIX = "ALMA_TUI_"
MAX_ITERATIONS = 1_000_000
DEFAULT_MERGE_RATE = 0.2

Reasoning = Literal["low", "medium", "high"]


class SettingsError(ValueError):
    """Settings that cannot be used; the message names where the bad value came from."""


class SearchConfig(BaseModel):
    # extra keys are refused when building from a source; from_json (stored rows) drops them first
    model_config = ConfigDict(extra="forbid")

    repo: Path = DEFAULT_REPO
    domain: str = "household"
    meta_model: str = DEFAULT_META_MODEL
    agent_model: str = DEFAULT_AGENT_MODEL
    design_model: str | None = None  # design-internal llm(); defaults to the agent model
    embedding_model: str | None = None  # None: fast local hashing embedding
    api_base: str | None = None
    iterations: Annotated[int, Ge(0), Le(MAX_ITERATIONS)] = 5  # total to reach; 0: only the seeds
    selection: Literal["open-ended", "greedy", "pareto"] = "open-ended"
    # children written from two parents; None: 0 in greedy, DEFAULT_MERGE_RATE otherwise
    merge_rate: Annotated[float, Ge(0), Le(1)] | None = None
    seed: Annotated[int, Ge(0), Le(2**32 - 1)] = 0
    max_repairs: Annotated[int, Ge(0), Le(100)] = 3
    budget_usd: Annotated[float, Gt(0), Le(1e9)] | None = None
    budget_tokens: Annotated[int, Ge(1), Le(10**15)] | None = None
    # real models (alma_tui/llm/client.py): per-role servers, generation settings, limits
    meta_api_base: str | None = None  # overrides api_base for the meta model
    agent_api_base: str | None = None  # overrides api_base for the agent, design and embedding models
    env_file: str | None = None  # KEY=VALUE file read into the environment (the path is stored, never keys)
    meta_reasoning: Reasoning | None = None  # reasoning_effort; dropped where unsupported
    agent_reasoning: Reasoning | None = None
    meta_temperature: Annotated[float, Ge(0), Le(2)] | None = None
    agent_temperature: Annotated[float, Ge(0), Le(2)] | None = None
    max_concurrent_llm: Annotated[int, Ge(1), Le(1024)] = 8  # requests in flight per model
    parallel_children: Annotated[int, Ge(1), Le(64)] | None = None  # None: parents, capped by max_concurrent_llm
    llm_timeout_s: Annotated[float, Gt(0), Le(86_400)] = 120.0
    llm_retries: Annotated[int, Ge(0), Le(100)] = 4  # retries on 429/5xx/timeouts before an outage pause
    skip_model_check: bool = False  # accept model names litellm does not know (this start only: not stored)
    allow_weak_sandbox: bool = False  # run designs without OS isolation where the machine has none (this start only)
    outage_wait_s: Annotated[float, Gt(0)] = 30.0  # first retry after an outage pause (doubles, capped)
    seed_designs: list[str] = Field(default_factory=list)  # user designs (.py) for a new search's initial archive
    # where evaluations run: "local" (this process and its sandbox children) or "ray" (Ray tasks;
    # alma_tui/engine/ray_executor.py); how a start runs, not what it finds, so never stored
    executor: Literal["local", "ray"] = "local"
    ray_address: str | None = None  # "auto", "ray://host:10001", or None: a local Ray on this machine
    params: SelectionParams = Field(default_factory=SelectionParams)
    eval: EvalSettings = Field(default_factory=EvalSettings)

    @model_validator(mode="after")
    def _eval_seed_follows_run_seed(self) -> SearchConfig:
        """The evaluation's task shuffle uses the run seed: one seed per search."""
        if self.eval.seed != self.seed:
            self.eval.seed = self.seed
        return self

    @property
    def effective_merge_rate(self) -> float:
        """The merge rate this search uses. Greedy keeps its meaning (the paper's ablation: always
        the best design, one parent) unless a rate is asked for; the others merge a fifth of
        their children, enough to combine two lines of the archive a few times per 20-iteration
        search while most children still refine one design."""
        if self.merge_rate is not None:
            return self.merge_rate
        return 0.0 if self.selection == "greedy" else DEFAULT_MERGE_RATE

    def to_json(self) -> str:
        """What the run row stores: everything but the settings of one start (``TRANSIENT``)."""
        data = self.model_dump(mode="json", exclude=set(TRANSIENT))
        return json.dumps(data, sort_keys=True)

    def to_engine_json(self) -> str:
        """The whole object, for the engine process the TUI starts (``--settings-json``)."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> SearchConfig:
        """Settings stored by any version: unknown keys are dropped, missing ones take defaults."""
        data = json.loads(text or "{}")
        if not isinstance(data, dict):
            raise ValueError("the settings are not a JSON object")
        ev = data.get("eval")
        if isinstance(ev, dict) and "agent_history" not in ev:
            # stored before the history policy existed: its scores came from the plain 20-step window
            data["eval"] = {**ev, "agent_history": str(HISTORY_STEPS)}
        return cls.model_validate(_known(data))


#: settings of one start, never stored in the repo (a resume does not inherit them); running
#: untrusted designs without OS isolation is a decision made each time, not a property of a repo
TRANSIENT = ("skip_model_check", "allow_weak_sandbox", "seed_designs", "executor", "ray_address")


# -- flags ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Flag:
    """The user-facing name of one setting: ``--flag``, ``ALMA_TUI_FLAG``, ``flag = ...`` in a file."""

    path: str  # attribute path in SearchConfig, e.g. "eval.n_collection"
    flag: str  # "--collection"
    help: str | None = None
    score: bool = False  # defines the scores of an archive: a resume may not change it

    @property
    def key(self) -> str:
        return self.flag.removeprefix("--")

    @property
    def dest(self) -> str:
        """Its attribute in the parsed arguments."""
        return self.key.replace("-", "_")

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.key.upper().replace("-", "_")


FLAGS: tuple[Flag, ...] = (
    Flag("repo", "--repo", "designs repo (git) holding the search; default ./designs_repo"),
    Flag("domain", "--domain", "domain to search on (default household; see `alma-tui domains`)"),
    Flag("meta_model", "--meta-model", "litellm model of the meta agent (default offline/meta)"),
    Flag("agent_model", "--agent-model", "litellm model of the acting agent (default offline/agent)", score=True),
    Flag("design_model", "--design-model", "model behind a design's llm() (default: agent model)"),
    Flag(
        "embedding_model",
        "--embedding-model",
        "litellm embedding model behind a design's embed() (default: local hashing embedding)",
    ),
    Flag("api_base", "--api-base", "base URL of an OpenAI-compatible server (ollama, vllm)"),
    Flag("meta_api_base", "--meta-api-base", "server of the meta model only (overrides --api-base)"),
    Flag(
        "agent_api_base", "--agent-api-base", "server of the agent, design and embedding models (overrides --api-base)"
    ),
    Flag("env_file", "--env-file", "KEY=VALUE file with API keys (the environment wins)"),
    Flag("meta_reasoning", "--meta-reasoning", "reasoning effort of the meta model (dropped if unsupported)"),
    Flag("agent_reasoning", "--agent-reasoning", "reasoning effort of the acting agent (dropped if unsupported)"),
    Flag("meta_temperature", "--meta-temperature"),
    Flag("agent_temperature", "--agent-temperature"),
    Flag("max_concurrent_llm", "--max-concurrent-llm", "requests in flight per model (default 8)"),
    Flag("llm_timeout_s", "--llm-timeout", "seconds per model request (default 120)"),
    Flag(
        "llm_retries", "--llm-retries", "retries on 429/5xx/timeouts before pausing for a provider outage (default 4)"
    ),
    Flag("skip_model_check", "--skip-model-check", "accept model names litellm does not know (keys are still checked)"),
    Flag(
        "iterations",
        "--iterations",
        "run until N iterations in total (default 5; 0: only evaluate the seeds of a new search)",
    ),
    Flag("params.k", "--parents", "parents (children) per iteration (default 2)"),
    Flag(
        "selection",
        "--selection",
        "how parents are chosen: open-ended (score + visit penalty; default), greedy (the best), "
        "pareto (designs best on at least one search task, by tasks led)",
    ),
    Flag(
        "merge_rate",
        "--merge-rate",
        "share of children written from two parents (a git merge commit); default 0 with greedy, 0.2 otherwise",
    ),
    Flag("seed", "--seed", score=True),
    Flag("budget_usd", "--budget-usd", "stop before the run would spend more"),
    Flag("budget_tokens", "--budget-tokens", "stop before the run would use more tokens"),
    Flag("eval.n_collection", "--collection", "collection tasks per evaluation (default 12)", score=True),
    Flag("eval.n_deployment", "--deployment", "deployment tasks per evaluation (default 12)", score=True),
    Flag("eval.runs", "--runs", "deployment runs per evaluation (default 3)", score=True),
    Flag("eval.concurrency", "--concurrency", "episodes run at once (default 4)"),
    Flag(
        "eval.protocol",
        "--protocol",
        "batched: memory frozen after collection (default); sequential: it keeps learning",
        score=True,
    ),
    Flag(
        "eval.agent_history",
        "--agent-history",
        "acting agent's chat history: N (last N exchanges), summary (last 2, older folded into a "
        "summary; default) or summary:N",
        score=True,
    ),
    Flag(
        "parallel_children",
        "--parallel-children",
        "children of an iteration proposed and evaluated at once (default: parents, capped by --max-concurrent-llm)",
    ),
    Flag(
        "seed_designs",
        "--seed-design",
        "a memory design (.py) to add to a new search's initial archive, validated in the sandbox first (repeatable)",
    ),
    Flag(
        "executor",
        "--executor",
        "where evaluations run: local (default) or ray (children and episode batches as Ray tasks; "
        'pip install "alma-tui[ray]")',
    ),
    Flag(
        "ray_address",
        "--ray-address",
        "Ray cluster to join with --executor ray: auto, ray://host:10001 (default: a local Ray)",
    ),
    Flag(
        "allow_weak_sandbox",
        "--allow-weak-sandbox",
        "run designs even where the OS cannot isolate them (see `alma-tui doctor`)",
    ),
)
FLAG_BY_PATH = {f.path: f for f in FLAGS}


def transient_flags(cfg: SearchConfig) -> list[str]:
    """This start's one-time settings (:data:`TRANSIENT`) as flags, for an engine started later
    on the same repo (the app's "continue"): a resume does not read them from the repo, so a
    search started with ``--allow-weak-sandbox`` would otherwise not continue at all. Seed
    designs only shape a new search, so they are left out."""
    out: list[str] = []
    for path in TRANSIENT:
        flag = FLAG_BY_PATH.get(path)
        value = getattr(cfg, path)
        if flag is None or path == "seed_designs" or value in (None, False, SearchConfig.model_fields[path].default):
            continue
        out += [flag.flag] if value is True else [flag.flag, str(value)]
    return out


#: settings with no flag, on purpose (tuned in code, or derived); a test keeps this list honest
INTERNAL = (
    "max_repairs",
    "outage_wait_s",
    "params.score_scale",
    "params.visit_penalty",
    "params.temperature",
    "eval.split",
    "eval.seed",
)
#: what `alma-tui eval` uses of the settings (it evaluates one design; no meta agent, no search)
EVAL_PATHS = (
    "repo",
    "domain",
    "agent_model",
    "api_base",
    "env_file",
    "agent_reasoning",
    "agent_temperature",
    "embedding_model",
    "eval.runs",
    "eval.n_collection",
    "eval.n_deployment",
    "seed",
    "eval.protocol",
    "eval.agent_history",
    "allow_weak_sandbox",
)
#: given on the command line only (it says where the stored settings are)
FLAG_ONLY = ("repo",)


@dataclass(frozen=True)
class FieldSpec:
    """What a flag accepts, read from the field's annotation: the one place of ranges and choices."""

    kind: type  # bool, int, float, str or Path
    choices: tuple[str, ...] | None = None
    check: Callable[[Any], Any] | None = None  # a text setting's own validator (its ValueError says why)
    ge: float | None = None
    gt: float | None = None
    le: float | None = None


def field_spec(path: str) -> FieldSpec:
    owner: Any = SearchConfig
    *parents, name = path.split(".")
    for part in parents:
        owner = get_type_hints(owner)[part]
    hint = get_type_hints(owner, include_extras=True)[name]
    ge = gt = le = None
    choices = None
    check = None
    while True:
        origin = get_origin(hint)
        if origin is Annotated:
            base, *meta = get_args(hint)
            for m in meta:
                ge = m.ge if isinstance(m, Ge) else ge
                gt = m.gt if isinstance(m, Gt) else gt
                le = m.le if isinstance(m, Le) else le
                check = cast("Callable[[Any], Any]", m.func) if isinstance(m, AfterValidator) else check
            hint = base
        elif origin in (Union, types.UnionType):
            hint = next(a for a in get_args(hint) if a is not type(None))
        elif origin is Literal:
            choices = tuple(str(a) for a in get_args(hint))
            hint = str
        elif origin is list:  # a repeatable flag
            hint = list
            break
        else:
            break
    # annotated-types types its bounds as "comparable"; on these fields they are numbers
    return FieldSpec(
        kind=hint,
        choices=choices,
        check=check,
        ge=cast("float | None", ge),
        gt=cast("float | None", gt),
        le=cast("float | None", le),
    )


def leaf_paths() -> list[str]:
    """Every setting's attribute path, nested sections included."""
    out = []
    for name, info in SearchConfig.model_fields.items():
        if is_dataclass(info.annotation):
            out += [f"{name}.{f.name}" for f in fields(info.annotation)]
        else:
            out.append(name)
    return out


def get_path(cfg: Any, path: str) -> Any:
    for part in path.split("."):
        cfg = getattr(cfg, part)
    return cfg


# -- sources ----------------------------------------------------------------------------------------
@dataclass
class Resolved:
    config: SearchConfig
    stored: SearchConfig | None  # what the repo's run was created with, if it has one
    origin: dict[str, str]  # path -> where its value came from ("--seed", "ALMA_TUI_SEED", "f.toml")


def env_values(env: Mapping[str, str], paths: tuple[str, ...] | None = None) -> dict[str, tuple[Any, str]]:
    """``ALMA_TUI_<FLAG>`` variables of the settings (other ALMA_TUI_ variables are not settings)."""
    out: dict[str, tuple[Any, str]] = {}
    for f in FLAGS:
        if f.path in FLAG_ONLY or (paths is not None and f.path not in paths):
            continue
        text = env.get(f.env)
        if text is None or text == "":
            continue
        value: Any = text
        if f.path == "env_file":
            value = str(Path(text).expanduser().resolve())
        if f.path == "seed_designs":  # several files, separated like PATH
            value = [str(Path(t).expanduser().resolve()) for t in text.split(os.pathsep) if t]
        out[f.path] = (value, f.env)
    return out


# keys of the user settings file that are the app's, not the search's (read by the CLI for the TUI)
UI_KEYS = ("keymap", "theme")
USER_CONFIG_ENV = "ALMA_TUI_CONFIG_FILE"  # another place for the user settings file ("" or "none": no file)


def user_config_path() -> Path | None:
    """``~/.config/alma-tui/config.toml`` (platformdirs: the platform's place for it), or the
    file ``ALMA_TUI_CONFIG_FILE`` names; None when that variable is ``none`` or empty."""
    override = os.environ.get(USER_CONFIG_ENV)
    if override is not None:
        return None if override.strip().lower() in ("", "none") else Path(override).expanduser()
    from platformdirs import user_config_path as platform_config_dir

    return platform_config_dir("alma-tui", appauthor=False) / "config.toml"


def read_toml(path: Path) -> dict[str, Any]:
    """A settings file's table, or SettingsError naming the file (one line)."""
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingsError(f"cannot read the settings file {path}: {exc.strerror or exc}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SettingsError(f"the settings file {path} is not valid TOML: {exc}") from exc


def file_values(
    path: Path, paths: tuple[str, ...] | None = None, *, ui_keys: tuple[str, ...] = ()
) -> dict[str, tuple[Any, str]]:
    """A TOML settings file: ``flag = value`` with the flags' names (``-`` or ``_``), top level.
    ``ui_keys`` are keys of the file that are not search settings (left to their reader)."""
    data = read_toml(path)
    by_key = {f.key: f for f in FLAGS if f.path not in FLAG_ONLY}
    out: dict[str, tuple[Any, str]] = {}
    for key, value in data.items():
        if key in ui_keys:
            continue
        f = by_key.get(key.replace("_", "-"))
        if f is None:
            known = ", ".join(sorted([*by_key, *ui_keys]))
            raise SettingsError(f"{path}: unknown setting {key!r} (known: {known})")
        if paths is not None and f.path not in paths:
            continue
        if f.path == "env_file" and isinstance(value, str):  # relative to the file, like an include
            value = str((Path(path).parent / Path(value).expanduser()).resolve())
        out[f.path] = (value, f"{path}: {key}")
    return out


def resolve(
    repo: Path,
    *,
    flags: Mapping[str, Any],
    env: Mapping[str, str] | None = None,
    file: Path | None = None,
    stored_json: str | None = None,
    paths: tuple[str, ...] | None = None,
    user_file: Path | None = None,
) -> Resolved:
    """The settings, built once: defaults < user file < stored < file < environment < flags.

    ``flags`` maps setting paths to values given on the command line (None: not given).
    ``paths`` limits the files and environment to the settings a command uses (``eval``).
    ``user_file`` (``~/.config/alma-tui/config.toml``) gives a user's own defaults: it shapes
    new searches, while a resume keeps what its repo stored. Raises SettingsError with the
    source of a bad value in its message.
    """
    stored = load_stored(repo, stored_json)
    data: dict[str, Any] = {}
    origin: dict[str, str] = {}
    if user_file is not None and user_file.is_file():
        for path, (value, source) in file_values(user_file, paths, ui_keys=UI_KEYS).items():
            _set(data, path, value)
            origin[path] = source
    if stored is not None:
        for name, value in stored.model_dump(exclude=set(TRANSIENT)).items():
            data[name] = value
        origin = {p: src for p, src in origin.items() if p.split(".")[0] in TRANSIENT}
    layers: list[dict[str, tuple[Any, str]]] = []
    if file is not None:
        layers.append(file_values(file, paths))
    layers.append(env_values(os.environ if env is None else env, paths))
    layers.append({p: (v, FLAG_BY_PATH[p].flag) for p, v in flags.items() if v is not None})
    for layer in layers:
        for path, (value, source) in layer.items():
            _set(data, path, value)
            origin[path] = source
    data["repo"] = Path(repo)
    origin["repo"] = "--repo"
    try:
        cfg = SearchConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        path = ".".join(str(p) for p in err["loc"] if not isinstance(p, int))
        where = origin.get(path) or (FLAG_BY_PATH[path].flag if path in FLAG_BY_PATH else path)
        raise SettingsError(f"{where}: {err['msg'].lower()} (got {err.get('input')!r})") from exc
    return Resolved(cfg, stored, origin)


def load_stored(repo: Path, stored_json: str | None) -> SearchConfig | None:
    """The settings a repo's run was created with (None: no run yet)."""
    if stored_json is None:
        return None
    try:
        return SearchConfig.from_json(stored_json)
    except (ValueError, TypeError) as exc:
        raise SettingsError(
            f"the settings stored in {Path(repo) / '.alma' / 'alma.db'} are unreadable ({describe_error(exc)}); "
            "start a new search with another --repo"
        ) from exc


def _set(data: dict[str, Any], path: str, value: Any) -> None:
    *parents, name = path.split(".")
    for part in parents:
        section = data.get(part)
        if section is None:
            section = data[part] = {}
        elif not isinstance(section, dict):  # a dataclass instance from the stored settings
            section = data[part] = {f.name: getattr(section, f.name) for f in fields(section)}
        data = section
    data[name] = value


def _known(data: dict[str, Any]) -> dict[str, Any]:
    """Drop keys this version does not know (settings stored by an older or newer one)."""
    out = {k: v for k, v in data.items() if k in SearchConfig.model_fields}
    for name in ("params", "eval"):
        section = out.get(name)
        if isinstance(section, dict):
            annotation = SearchConfig.model_fields[name].annotation
            known = {f.name for f in fields(annotation)}  # type: ignore[arg-type]
            out[name] = {k: v for k, v in section.items() if k in known}
    return out


def describe_error(exc: BaseException) -> str:
    """One line for a validation error (pydantic's own message spans several)."""
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        return f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
    return str(exc)
