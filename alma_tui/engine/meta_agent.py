"""The model-agnostic meta agent: analyze a parent, write a child, repair a child.

It knows nothing about litellm, the offline provider or the sandbox: it is given
a ``complete(messages) -> str`` callable and does the three things ALMA's meta
agent does, with the robustness the reference lacked:

- the analysis is validated against a real schema (pydantic) and, when the
  answer is not valid JSON or violates the schema, the model is re-asked with
  the validation error (the reference accepted any JSON and later crashed on a
  missing field);
- code is extracted from whatever the model returns (```python fence, any
  fence, or bare code with prose around it).
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from alma_tui.engine import prompts

__all__ = [
    "Analysis",
    "ChangeSuggestion",
    "MetaAgent",
    "MetaAgentError",
    "ParentInfo",
    "TrajectoryAssessment",
    "extract_code",
    "extract_json",
    "extract_title",
]

MemoryLabel = Literal["useful", "potentially_useful", "irrelevant", "empty_or_bad_format"]


class MetaAgentError(RuntimeError):
    """The meta model did not produce a usable answer (after the allowed retries)."""


@dataclass
class ParentInfo:
    """Everything the meta agent may know about a parent design.

    ``episodes`` are deployment episodes as plain dicts; the prompt builder reads
    ``task_id``, ``goal``, ``success``, ``step_count`` (or ``steps``), ``memory``
    (the text ``retrieve`` returned), ``actions`` (or ``last_actions``) and,
    optionally, ``run`` and ``error``.
    """

    design_id: str
    title: str
    code: str
    score: float | None = None
    run_scores: list[float] = field(default_factory=list)
    no_memory_score: float | None = None
    episodes: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    previous_suggestion: str | None = None
    previous_improved: bool | None = None
    hints: list[str] = field(default_factory=list)
    domain_name: str = "household"
    domain_description: str = ""
    example_episode: dict[str, Any] | None = (
        None  # {"episode": Episode as dict[str, Any], "query": Query as dict[str, Any]}
    )


class TrajectoryAssessment(BaseModel):
    """The meta agent's judgement of the memory one deployment episode received."""

    model_config = ConfigDict(extra="ignore")

    task_id: str = ""
    memory_label: MemoryLabel = "potentially_useful"
    how_it_could_help: str = ""

    @field_validator("task_id", mode="before")
    @classmethod
    def _task_id_str(cls, v: object) -> str:
        # Models often answer task ids as numbers; accept them.
        return "" if v is None else str(v)

    @field_validator("memory_label", mode="before")
    @classmethod
    def _normalise_label(cls, v: object) -> object:
        # "Potentially Useful", "Empty or BadFormat" (the reference's spelling)
        # and similar variants map onto the canonical labels.
        if isinstance(v, str):
            key = re.sub(r"[^a-z]+", "_", v.lower()).strip("_")
            aliases = {
                "empty_or_badformat": "empty_or_bad_format",
                "empty": "empty_or_bad_format",
                "bad_format": "empty_or_bad_format",
                "potentially": "potentially_useful",
            }
            return aliases.get(key, key)
        return v


class ChangeSuggestion(BaseModel):
    """One concrete code change, ranked by priority (1 = most important)."""

    model_config = ConfigDict(extra="ignore")

    priority: int = Field(default=1, ge=1)
    what: str
    why: str = ""


class Analysis(BaseModel):
    """The structured reflection on a parent (the ALMA analysis, with a real schema).

    Every field has a default except that ``suggested_changes`` must be a list,
    so a model that omits an optional part still yields a usable analysis.
    """

    model_config = ConfigDict(extra="ignore")

    lessons_from_previous: str = ""
    trajectory_assessments: list[TrajectoryAssessment] = Field(default_factory=list)
    content_quality_issues: list[str] = Field(default_factory=list)
    structure_issues: list[str] = Field(default_factory=list)
    suggested_changes: list[ChangeSuggestion] = Field(default_factory=list)
    title_hint: str = ""

    def top_suggestion(self) -> str:
        """The highest-priority change as one line: it becomes the child's
        ``previous_suggestion`` so the next analysis can judge whether it helped."""
        if not self.suggested_changes:
            return ""
        best = min(self.suggested_changes, key=lambda c: c.priority)
        return f"{best.what} (why: {best.why})" if best.why else best.what

    def to_markdown(self) -> str:
        """Human-readable form for ANALYSIS.md in the lineage repo."""
        lines = ["# Analysis", "", "## Lessons from the previous suggestion", ""]
        lines.append(self.lessons_from_previous or "(none)")
        lines += ["", "## Suggested changes", ""]
        for c in sorted(self.suggested_changes, key=lambda c: c.priority):
            lines.append(f"{c.priority}. **{c.what}** - {c.why}")
        for name, items in (
            ("Content quality issues", self.content_quality_issues),
            ("Structure issues", self.structure_issues),
        ):
            lines += ["", f"## {name}", ""]
            lines += [f"- {i}" for i in items] or ["(none)"]
        lines += ["", "## Trajectory assessments", ""]
        for t in self.trajectory_assessments:
            lines.append(f"- `{t.task_id}` **{t.memory_label}**: {t.how_it_could_help}")
        return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------
# Extraction helpers
# ---------------------------------------------------------------------------

_FENCE_RE = re.compile(r"```[ \t]*([\w+-]*)[ \t]*\n(.*?)(?:\n[ \t]*```|\Z)", re.DOTALL)
_TITLE_RE = re.compile(r"^\s*(?:\*\*)?TITLE(?:\*\*)?\s*:\s*(.+?)\s*$", re.MULTILINE | re.IGNORECASE)
_CODE_START_RE = re.compile(r"^(?:\"\"\"|'''|#|from\s+\w|import\s+\w|class\s+\w|def\s+\w|@|[A-Z_]+\s*=)", re.MULTILINE)


def _parses(code: str) -> bool:
    try:
        ast.parse(code)
    except SyntaxError:
        return False
    return True


def extract_code(text: str) -> str:
    """The Python module inside a model answer.

    Preference order: a ```python fence (the largest one, since a model may
    also quote a snippet), any fence that parses as Python, then bare code
    (the text from the first code-looking line, trimmed of trailing prose
    until it parses). Raises :class:`MetaAgentError` when nothing looks like code.
    """
    fences: list[tuple[str, str]] = [(lang.lower(), body) for lang, body in _FENCE_RE.findall(text or "")]
    py = [b for lang, b in fences if lang in ("python", "py", "python3")]
    if py:
        return max(py, key=len).strip("\n") + "\n"
    other = [b for _, b in fences if _parses(b) and "class " in b]
    if other:
        return max(other, key=len).strip("\n") + "\n"
    body = _TITLE_RE.sub("", text or "")
    m = _CODE_START_RE.search(body)
    if m:
        lines = body[m.start() :].rstrip().splitlines()
        # Drop trailing prose lines one by one until the rest parses.
        for end in range(len(lines), 0, -1):
            candidate = "\n".join(lines[:end])
            if "class " in candidate and _parses(candidate):
                return candidate + "\n"
    raise MetaAgentError("the meta model's answer contains no Python module")


def extract_title(text: str, code: str = "", fallback: str = "untitled design") -> str:
    """``TITLE: ...`` line, else the first line of the module docstring, else fallback."""
    m = _TITLE_RE.search(text or "")
    if m:
        return m.group(1).strip().strip("`*\"'")[:120] or fallback
    try:
        doc = ast.get_docstring(ast.parse(code)) if code else None
    except SyntaxError:
        doc = None
    if doc:
        return doc.strip().splitlines()[0].rstrip(".")[:120]
    return fallback


def extract_json(text: str) -> object:
    """The JSON value inside a model answer: whole text, a fence, or the
    outermost ``{...}`` span with prose around it. Raises ``ValueError``."""
    text = (text or "").strip()
    candidates = [text]
    candidates += [b for _, b in _FENCE_RE.findall(text)]
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        candidates.append(text[start : end + 1])
    last_err: Exception | None = None
    for c in candidates:
        try:
            return json.loads(c)
        except (json.JSONDecodeError, TypeError) as e:
            last_err = e
    raise ValueError(f"no valid JSON object found ({last_err})")


# ---------------------------------------------------------------------------
# The agent
# ---------------------------------------------------------------------------


class MetaAgent:
    """Analyze / write / repair over any chat-completion callable.

    ``complete`` receives OpenAI-style messages (``[{"role", "content"}]``) and
    returns the assistant's text; budgets, retries on transport errors and
    accounting belong to the caller's LLM layer, not here.
    """

    def __init__(
        self,
        complete: Callable[[list[dict[str, Any]]], str],
        max_json_retries: int = 2,
        seed: int = 0,
    ) -> None:
        self.complete = complete
        self.max_json_retries = max_json_retries
        self.seed = seed

    def analyze(self, parent: ParentInfo) -> tuple[Analysis, str]:
        """Structured analysis of ``parent`` and the raw answer that produced it.

        On invalid JSON or a schema violation the model is shown its own answer
        and the validation error and asked again, up to ``max_json_retries`` times.
        """
        messages = prompts.analyze_messages(parent, Analysis.model_json_schema(), self.seed)
        raws: list[str] = []
        for _attempt in range(self.max_json_retries + 1):
            raw = self.complete(messages)
            raws.append(raw)
            try:
                data = extract_json(raw)
                if not isinstance(data, dict):
                    raise ValueError(f"expected a JSON object, got {type(data).__name__}")
                return Analysis.model_validate(data), raw
            except (ValueError, ValidationError) as e:
                error = str(e)
            messages = [
                *messages,
                {"role": "assistant", "content": raw},
                prompts.json_retry_message(error),
            ]
        raise MetaAgentError(
            f"analysis of {parent.design_id} was not valid JSON for the schema after "
            f"{self.max_json_retries + 1} attempts; last error: {error[:300]}"
        )

    def write(self, parent: ParentInfo, analysis: Analysis) -> tuple[str, str, str]:
        """(title, code, raw answer) of a child implementing ``analysis``."""
        messages = prompts.write_messages(parent, analysis.model_dump_json(indent=1), self.seed)
        raw = self.complete(messages)
        code = extract_code(raw)
        title = extract_title(raw, code, fallback=analysis.title_hint or "child design")
        return title, code, raw

    def repair(self, parent: ParentInfo, code: str, error: str) -> tuple[str, str, str]:
        """(title, fixed code, raw answer) for ``code`` that failed with ``error``."""
        messages = prompts.repair_messages(parent, code, error, self.seed)
        raw = self.complete(messages)
        fixed = extract_code(raw)
        title = extract_title(raw, fixed, fallback="repaired design")
        return title, fixed, raw
