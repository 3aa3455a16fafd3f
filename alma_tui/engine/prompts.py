"""Versioned prompt templates for the meta agent (analyze, write, repair).

Why a module of its own: the same text is read by two very different consumers.
A frontier model (GPT-5, Claude) must get everything it needs to do excellent
work: the exact design API, the rules of the sandbox, the parent's code and a
faithful sample of how it behaved. The deterministic offline meta agent
(:mod:`alma_tui.offline.meta`) must be able to parse the very same prompt. So
every user message has a rigid skeleton::

    ### TASK: analyze|write|repair
    ### SECTION NAME
    ...body...

and :func:`parse_prompt` is the one parser both sides agree on.

For provider-side prompt caching each chat is two user messages: first what is the
same for every design of a run (task, design API, domain, examples, schema,
instructions), then what is about this parent (its code, evaluation, hints, the
analysis or the failing code). A provider caches the longest prefix it has seen,
so the stable message is paid in full once and read from the cache after that;
the client marks it for providers that want explicit cache markers. Any change to
the wording bumps :data:`PROMPT_VERSION`, which the engine records with each LLM
call so results stay attributable to a prompt revision.
"""

from __future__ import annotations

import inspect
import json
import random
import re
from typing import Any, Protocol

PROMPT_VERSION = "2026.3"

TASK_ANALYZE = "analyze"
TASK_WRITE = "write"
TASK_REPAIR = "repair"
TASK_MERGE = "merge"

# Section names (the header text after "### "). Kept as constants so the
# offline meta agent and the tests never drift from the prompt builder.
S_DESIGN_API = "DESIGN API"
S_DOMAIN = "DOMAIN"
S_PARENT_CODE = "PARENT CODE"
S_PARENT_EVALUATION = "PARENT EVALUATION"
S_PREVIOUS_SUGGESTION = "PREVIOUS SUGGESTION"
S_USER_HINTS = "USER HINTS"
S_ANALYSIS = "ANALYSIS"
S_FAILING_CODE = "FAILING CODE"
S_ERROR = "ERROR"
S_OUTPUT_SCHEMA = "OUTPUT SCHEMA"
S_INSTRUCTIONS = "INSTRUCTIONS"
S_EXAMPLES = "EXAMPLE DESIGNS"
S_EXAMPLE_EPISODE = "EXAMPLE EPISODE"
S_OTHER_DESIGN = "ANOTHER ARCHIVED DESIGN"
S_SECOND_CODE = "SECOND PARENT CODE"
S_SECOND_EVALUATION = "SECOND PARENT EVALUATION"
S_COMPARISON = "PER-TASK COMPARISON"

#: Built-in designs shown to the model as worked examples of the API (write/repair).
EXAMPLE_DESIGNS = ("trajectory_retrieval", "dynamic_cheatsheet")
MAX_EXAMPLE_CHARS = 7_000

# Truncation limits: large enough for the model to see what the memory looked
# like, small enough that a 12-episode sample stays well under ~12k tokens.
MAX_EPISODES = 12
MAX_MEMORY_CHARS = 600
MAX_LAST_ACTIONS = 14  # whole household episodes: the offline analysis classifies them
MAX_CODE_CHARS = 24_000
MAX_ERROR_CHARS = 4_000

_SECTION_NAMES = (
    "DESIGN API",
    "DOMAIN",
    "PARENT CODE",
    "PARENT EVALUATION",
    "PREVIOUS SUGGESTION",
    "USER HINTS",
    "ANALYSIS",
    "FAILING CODE",
    "ERROR",
    "OUTPUT SCHEMA",
    "INSTRUCTIONS",
    "EXAMPLE DESIGNS",
    "EXAMPLE EPISODE",
    "ANOTHER ARCHIVED DESIGN",
    "SECOND PARENT CODE",
    "SECOND PARENT EVALUATION",
    "PER-TASK COMPARISON",
)
# Only known section names count as headers, so a "### comment" inside quoted
# code can never split a section.
_HEADER_RE = re.compile(r"^### (" + "|".join(re.escape(n) for n in _SECTION_NAMES) + r")\s*$", re.MULTILINE)
_TASK_RE = re.compile(r"^### TASK:\s*(\w+)", re.MULTILINE)


class ParentLike(Protocol):
    """The fields of :class:`alma_tui.engine.meta_agent.ParentInfo` the prompts use.

    A protocol (not an import) so this module has no dependency on the agent and
    the two can be edited independently.
    """

    design_id: str
    title: str
    code: str
    score: float | None
    run_scores: list[float]
    no_memory_score: float | None
    episodes: list[dict[str, Any]]
    errors: list[str]
    previous_suggestion: str | None
    previous_improved: bool | None
    hints: list[str]
    domain_name: str
    domain_description: str


DESIGN_RULES = """\
Rules for a memory design module (violations are rejected by the validator):
1. Exactly one class that subclasses `MemoryDesign` (import it with
   `from alma_tui.design_api import MemoryDesign, Episode, Query, Services`).
   Its constructor takes `services: Services` and must call `super().__init__(services)`.
2. Only the Python standard library and numpy. No files, no network, no
   subprocesses, no threads, no `eval`/`exec`, no reading environment variables.
   The code runs in a sandbox with memory and CPU limits.
3. `update(episode)` is called once per finished collection episode, serially.
   `retrieve(query)` is called before each deployment episode; the returned
   string is inserted verbatim into the acting agent's prompt. Return "" when you
   have nothing relevant: an empty memory is better than a misleading one.
4. `snapshot()` returns a JSON-serialisable dict (str/int/float/bool/None, lists,
   dicts with str keys) that shows a human what the memory holds. Keep it small.
5. `self.services.llm(prompt, system=None)` and `self.services.embed(texts)` are
   brokered, budgeted and may raise; wrap them in try/except and degrade
   gracefully (e.g. fall back to word overlap). Never call them in a tight loop.
6. Never raise from `update`, `retrieve` or `snapshot` on unexpected input (an
   unseen object, an empty episode, a missing field): a crash scores 0.
7. Keep `retrieve` output short and best-first: the acting agent reads it line
   by line and weighs earlier lines more. Put concrete, checkable facts first.
"""

SYSTEM_ANALYZE = """\
You are the meta agent of ALMA, a search over agent memory designs written as \
Python code. You are an expert in agent memory, retrieval and experimental \
analysis. You study one parent design: its code and the log of its evaluation \
(deployment episodes, each with the memory it retrieved). You diagnose why the \
memory did or did not help the acting agent and propose concrete, testable code \
changes. Be specific: name the mechanism (what is stored, how it is keyed and \
ranked, how much is returned, how it is formatted) and the evidence in the log. \
Answer with one JSON object only, matching the schema you are given."""

SYSTEM_WRITE = """\
You are the meta agent of ALMA, a search over agent memory designs written as \
Python code. You are a senior Python engineer. You write one complete, \
self-contained memory design module that implements the requested changes on top \
of the parent design. The code must be correct on the first run: it is executed \
in a sandbox and any exception scores zero. Prefer simple, robust mechanisms \
over clever fragile ones. Answer with a line `TITLE: <short title>` followed by \
the full module in a single ```python fenced block, and nothing else."""

SYSTEM_REPAIR = """\
You are the meta agent of ALMA. A memory design module you wrote failed \
validation. Fix the root cause of the error without dropping the design's \
intent, and check the rest of the module for the same class of bug. Answer with \
a line `TITLE: <short title>` followed by the full fixed module in a single \
```python fenced block, and nothing else."""


def design_api_source() -> str:
    """Source of :mod:`alma_tui.design_api`, pasted verbatim into prompts.

    Verbatim because a model writes better code against the real signatures than
    against a paraphrase, and the module is deliberately tiny.
    """
    from alma_tui import design_api

    try:
        return inspect.getsource(design_api)
    except (OSError, TypeError):  # pragma: no cover - frozen/zip installs
        return "# design_api source unavailable; see MemoryDesign, Episode, Query, Services"


def example_designs(exclude: str = "") -> str:
    """Built-in baselines as worked examples: real modules written against the same API."""
    from alma_tui.designs import BUILTIN, builtin_source

    parts = []
    for name in EXAMPLE_DESIGNS:
        if name in BUILTIN:
            code = builtin_source(name)
            if code.strip() != exclude.strip():
                parts.append(f"# --- built-in design `{name}` ---\n" + _truncate(code, MAX_EXAMPLE_CHARS))
    return _fenced("\n\n".join(parts)) if parts else "(none)"


def example_episode(parent: ParentLike) -> str | None:
    """One real Episode and Query of this domain as JSON, so the model sees the fields' contents."""
    ep = getattr(parent, "example_episode", None)
    if not ep:
        return None
    return _fenced(_truncate(json.dumps(ep, indent=1, default=str), 6_000), "json")


def _truncate(text: str, limit: int) -> str:
    text = text or ""
    if len(text) <= limit:
        return text
    return text[:limit] + f"... [truncated, {len(text) - limit} more chars]"


def _episode_view(ep: dict[str, Any]) -> dict[str, Any]:
    """The compact, JSON-safe view of one deployment episode the meta agent sees.

    Accepts the engine's episode dicts tolerantly (several key spellings), since
    the evaluator and the store may evolve independently of the prompts.
    """
    actions = ep.get("last_actions") or ep.get("actions") or []
    if not actions and isinstance(ep.get("steps"), list):
        actions = [s.get("action", "") if isinstance(s, dict) else getattr(s, "action", "") for s in ep["steps"]]
    steps = ep.get("step_count")
    if steps is None:
        steps = len(ep["steps"]) if isinstance(ep.get("steps"), list) else ep.get("steps", 0)
    memory = ep.get("memory")
    if memory is None:
        memory = ep.get("retrieved", "")
    view: dict[str, Any] = {
        "task_id": str(ep.get("task_id", "")),
        "goal": str(ep.get("goal", "")),
        "success": bool(ep.get("success", False)),
        "steps": int(steps or 0),
        "memory_chars": len(memory or ""),
        "memory": _truncate(str(memory or ""), MAX_MEMORY_CHARS),
        "last_actions": [str(a) for a in list(actions)[-MAX_LAST_ACTIONS:]],
    }
    if ep.get("run") is not None:
        view["run"] = ep["run"]
    if ep.get("error"):
        view["error"] = _truncate(str(ep["error"]), 300)
    return view


def sample_episodes(episodes: list[dict[str, Any]], k: int = MAX_EPISODES, seed: int = 0) -> list[dict[str, Any]]:
    """A stratified sample: about half failures, half successes, distinct tasks first.

    Why stratified: a log dominated by one outcome hides the contrast the meta
    agent learns most from (what did the memory say when it worked vs when not).
    Deterministic for the seed so prompts are reproducible.
    """
    rng = random.Random(seed)
    fails = [e for e in episodes if not e.get("success")]
    wins = [e for e in episodes if e.get("success")]

    def pick(pool: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
        pool = list(pool)
        rng.shuffle(pool)
        seen: set[str] = set()
        first: list[dict[str, Any]] = []
        rest: list[dict[str, Any]] = []
        for e in pool:
            tid = str(e.get("task_id"))
            (rest if tid in seen else first).append(e)
            seen.add(tid)
        return (first + rest)[:n]

    n_fail = min(len(fails), max(k - min(len(wins), k // 2), k // 2))
    chosen = pick(fails, n_fail)
    chosen += pick(wins, k - len(chosen))
    return [_episode_view(e) for e in chosen]


def evaluation_json(parent: ParentLike, seed: int = 0) -> str:
    """The PARENT EVALUATION section body: one JSON object, pretty-printed."""
    data = {
        "design_id": parent.design_id,
        "title": parent.title,
        "score": parent.score,
        "run_scores": list(parent.run_scores or []),
        "no_memory_score": parent.no_memory_score,
        "n_episodes_total": len(parent.episodes or []),
        "n_success_total": sum(1 for e in parent.episodes or [] if e.get("success")),
        "episodes": sample_episodes(list(parent.episodes or []), MAX_EPISODES, seed),
        "errors": [_truncate(str(e), 500) for e in (parent.errors or [])[:5]],
    }
    return json.dumps(data, indent=1, ensure_ascii=False)


def _previous_suggestion_text(parent: ParentLike) -> str:
    if not parent.previous_suggestion:
        return "(none: the parent is a seed design)"
    if parent.previous_improved is None:
        verdict = "unknown (no score for the grandparent)"
    else:
        verdict = "yes" if parent.previous_improved else "no"
    return f"{parent.previous_suggestion.strip()}\n\nDid it improve the score over the grandparent: {verdict}"


def _hints_text(parent: ParentLike) -> str:
    hints = [h.strip() for h in parent.hints or [] if h and h.strip()]
    return "\n".join(f"- {h}" for h in hints) if hints else "(none)"


def _section(name: str, body: str) -> str:
    return f"### {name}\n{body.rstrip()}\n"


def _fenced(code: str, lang: str = "python") -> str:
    return f"```{lang}\n{code.rstrip()}\n```"


def _stable_sections(parent: ParentLike) -> list[str]:
    """What every analyze/write/repair prompt of a run shares: the cacheable prefix."""
    return [
        _section(S_DESIGN_API, _fenced(design_api_source()) + "\n\n" + DESIGN_RULES),
        _section(S_DOMAIN, f"name: {parent.domain_name}\n{parent.domain_description.strip()}"),
    ]


def _parent_sections(parent: ParentLike, seed: int) -> list[str]:
    """What is about this parent: the variable part, sent after the stable one."""
    return [
        _section(S_PARENT_CODE, _fenced(_truncate(parent.code, MAX_CODE_CHARS))),
        _section(S_PARENT_EVALUATION, _fenced(evaluation_json(parent, seed), "json")),
        _section(S_PREVIOUS_SUGGESTION, _previous_suggestion_text(parent)),
        _section(S_USER_HINTS, _hints_text(parent)),
    ]


ANALYZE_INSTRUCTIONS = """\
Study the parent design and its evaluation, then answer with ONE JSON object
matching the OUTPUT SCHEMA (no prose outside it; a ```json fence is fine).

- lessons_from_previous: did the PREVIOUS SUGGESTION help (compare scores)? What
  does that teach about which direction to push?
- trajectory_assessments: one entry per sampled episode (use its task_id). Label
  the memory it retrieved: "useful" (it pointed at the right place/tool/plan),
  "potentially_useful" (relevant but noisy, too long, or not actionable),
  "irrelevant" (about other objects/tasks), "empty_or_bad_format" (nothing, or
  unparseable). Say in how_it_could_help what the memory should have said.
- content_quality_issues: problems with WHAT is stored (raw dumps vs extracted
  facts, failed episodes stored as if they were evidence, stale or wrong facts).
- structure_issues: problems with HOW it is keyed, ranked, aggregated, truncated,
  formatted (e.g. no aggregation across episodes, best evidence not first,
  output too long, no per-context keys).
- suggested_changes: 1-4 concrete code changes, priority 1 = most important.
  Each names the mechanism to change and why the log says so.
- title_hint: a 3-8 word title for the child design.
Compare to no_memory_score: a design below it is actively misleading the agent.
USER HINTS, if any, come from the human steering the search: follow them.
"""

WRITE_INSTRUCTIONS = """\
Write the child design: a complete module that starts from PARENT CODE and
implements the ANALYSIS' suggested_changes (highest priority first). Keep what
worked. If ANOTHER ARCHIVED DESIGN is shown and already implements a suggested
change well, you may combine its mechanism with the parent's. Follow every
rule in DESIGN API. Explain the design's idea in the module docstring and why
each mechanism exists in short comments. USER HINTS, if any,
come from the human steering the search: follow them.
Answer format, exactly:
TITLE: <3-8 word title>
```python
<the full module>
```
"""

REPAIR_INSTRUCTIONS = """\
FAILING CODE raised ERROR during validation (a short run of update/retrieve/
snapshot on real episodes). Return the full fixed module. Keep the design's
idea; fix the root cause; guard against the same failure elsewhere (unseen keys,
empty inputs, non-JSON-safe snapshot values).
Answer format, exactly:
TITLE: <3-8 word title>
```python
<the full module>
```
"""


MERGE_INSTRUCTIONS = """\
Write ONE child design that combines the two parents' strengths. PARENT CODE
and PARENT EVALUATION are the first parent; SECOND PARENT CODE and SECOND PARENT
EVALUATION the second; PER-TASK COMPARISON lists, per search task, each parent's
mean reward and which is better. Start from the parent that is better on more
tasks, find the mechanism that makes the other parent win its tasks (read its
code and the goals of those tasks), and bring that mechanism in without losing
what the first does well. The ANALYSIS of the first parent may help. Follow every
rule in DESIGN API; explain in the module docstring which mechanism came from
which parent and why. USER HINTS, if any, come from the human steering the
search: follow them.
Answer format, exactly:
TITLE: <3-8 word title>
```python
<the full module>
```
"""

SYSTEM_MERGE = """\
You are the meta agent of ALMA, merging two memory designs found by the search
into one. You read both designs' code and evaluations and where each is better,
and write one complete Python module that keeps the strengths of both.
"""


def merge_sections(parent: ParentLike, seed: int) -> list[str]:
    """The second parent's code and evaluation and the per-task comparison (merge children only)."""
    second = getattr(parent, "second_parent", None)
    if second is None:
        return []
    comparison = getattr(parent, "comparison", None) or {}
    return [
        _section(S_SECOND_CODE, _fenced(_truncate(second.code, MAX_CODE_CHARS))),
        _section(S_SECOND_EVALUATION, _fenced(evaluation_json(second, seed), "json")),
        _section(S_COMPARISON, _fenced(json.dumps(comparison, indent=1, ensure_ascii=False), "json")),
    ]


def merge_messages(
    parent: ParentLike, analysis_json: str, seed: int = 0, unstructured: bool = False
) -> list[dict[str, Any]]:
    """Chat messages asking for one module combining ``parent`` and ``parent.second_parent``."""
    stable = _stable_sections(parent)
    stable.append(_section(S_EXAMPLES, example_designs()))
    stable.append(_section(S_INSTRUCTIONS, MERGE_INSTRUCTIONS))
    variable = _parent_sections(parent, seed) + merge_sections(parent, seed)
    tag = "text" if unstructured else "json"
    variable.append(_section(S_ANALYSIS, _fenced(analysis_json, tag)))
    return _messages(SYSTEM_MERGE, TASK_MERGE, stable, variable)


def _messages(system: str, task: str, stable: list[str], variable: list[str]) -> list[dict[str, Any]]:
    head = f"### TASK: {task}\nprompt_version: {PROMPT_VERSION}\n\n"
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": head + "\n".join(stable)},
        {"role": "user", "content": "\n".join(variable)},
    ]


def analyze_messages(parent: ParentLike, schema: dict[str, Any], seed: int = 0) -> list[dict[str, Any]]:
    """Chat messages asking for a structured analysis of ``parent``.

    ``schema`` is the JSON schema of the expected answer (the pydantic model's
    ``model_json_schema()``), passed in so this module stays import-light.
    """
    stable = _stable_sections(parent)
    stable.append(_section(S_OUTPUT_SCHEMA, _fenced(json.dumps(schema, indent=1), "json")))
    stable.append(_section(S_INSTRUCTIONS, ANALYZE_INSTRUCTIONS))
    return _messages(SYSTEM_ANALYZE, TASK_ANALYZE, stable, _parent_sections(parent, seed))


def write_messages(
    parent: ParentLike, analysis_json: str, seed: int = 0, unstructured: bool = False
) -> list[dict[str, Any]]:
    """Chat messages asking for a child module implementing ``analysis_json`` (or, when
    ``unstructured``, an analysis in prose that did not fit the schema)."""
    stable = _stable_sections(parent)
    stable.append(_section(S_EXAMPLES, example_designs()))
    episode = example_episode(parent)
    if episode:
        stable.append(_section(S_EXAMPLE_EPISODE, episode))
    stable.append(_section(S_INSTRUCTIONS, WRITE_INSTRUCTIONS))
    variable = _parent_sections(parent, seed)
    other = getattr(parent, "other_design", None)
    if other:  # a second archived design whose mechanisms the child may combine with the parent's
        head = f"id: {other.get('design_id')}  title: {other.get('title')}  score: {other.get('score')}"
        variable.append(
            _section(S_OTHER_DESIGN, head + "\n" + _fenced(_truncate(other.get("code", ""), MAX_CODE_CHARS)))
        )
    if unstructured:
        body = "(free text: the analysis did not follow the schema; its suggestions are in the prose)\n"
        variable.append(_section(S_ANALYSIS, body + _fenced(analysis_json, "text")))
    else:
        variable.append(_section(S_ANALYSIS, _fenced(analysis_json, "json")))
    return _messages(SYSTEM_WRITE, TASK_WRITE, stable, variable)


def repair_messages(parent: ParentLike, code: str, error: str, seed: int = 0) -> list[dict[str, Any]]:
    """Chat messages asking to fix ``code`` that failed validation with ``error``."""
    stable = [*_stable_sections(parent), _section(S_INSTRUCTIONS, REPAIR_INSTRUCTIONS)]
    variable = [
        _section(S_PARENT_CODE, _fenced(_truncate(parent.code, MAX_CODE_CHARS))),
        _section(S_USER_HINTS, _hints_text(parent)),
        _section(S_FAILING_CODE, _fenced(_truncate(code, MAX_CODE_CHARS))),
        _section(S_ERROR, _fenced(_truncate(error, MAX_ERROR_CHARS), "text")),
    ]
    return _messages(SYSTEM_REPAIR, TASK_REPAIR, stable, variable)


def task_of(messages: list[dict[str, Any]]) -> str:
    """The task (analyze, write, repair) a chat asks for, "" if none: recorded with each call."""
    found = [
        m for msg in messages if msg.get("role") == "user" for m in _TASK_RE.findall(_content_text(msg.get("content")))
    ]
    return found[-1].strip().lower() if found else ""


def json_retry_message(error: str) -> dict[str, Any]:
    """The follow-up user message when an analysis answer did not validate."""
    return {
        "role": "user",
        "content": (
            "### TASK: analyze\n"
            "Your previous answer was not valid against the OUTPUT SCHEMA:\n"
            f"{_truncate(error, 2000)}\n"
            "Answer again with ONE JSON object matching the schema, and nothing else."
        ),
    }


def parse_prompt(messages: list[dict[str, Any]]) -> tuple[str, dict[str, str]]:
    """Recover (task, sections) from chat messages built by this module.

    The task comes from the last ``### TASK:`` line among user messages (a retry
    message re-states it); the sections from the user messages before the first
    answer (the stable and the variable part; the first occurrence of a name wins).
    Section bodies lose one surrounding code fence, so callers get the raw code or JSON.
    """
    task = ""
    sections: dict[str, str] = {}
    answered = False
    for msg in messages:
        if msg.get("role") == "assistant":
            answered = True
        if msg.get("role") != "user":
            continue
        content = _content_text(msg.get("content", ""))
        found = _TASK_RE.findall(content)
        if found:
            task = found[-1].strip().lower()
        if answered:
            continue
        headers = list(_HEADER_RE.finditer(content))
        for i, h in enumerate(headers):
            name = h.group(1).strip()
            end = headers[i + 1].start() if i + 1 < len(headers) else len(content)
            sections.setdefault(name, _unfence(content[h.end() : end].strip("\n")))
    return task, sections


def _content_text(content: object) -> str:
    """A message's text, also when it is a list of content blocks (cache-marked messages)."""
    if isinstance(content, list):
        return "".join(str(b.get("text", "")) if isinstance(b, dict) else str(b) for b in content)
    return str(content)


def _unfence(body: str) -> str:
    """Strip exactly one outer code fence if the body starts with one."""
    body = body.strip()
    if not body.startswith("```"):
        return body
    # Whole body is one fence: take up to the LAST fence (the code may quote ```).
    whole = re.match(r"^```[\w-]*\n(.*)\n```$", body, re.DOTALL)
    if whole:
        return whole.group(1)
    first = re.match(r"^```[\w-]*\n(.*?)\n```", body, re.DOTALL)
    return first.group(1) if first else body
