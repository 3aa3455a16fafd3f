"""The model-agnostic meta agent: analyze a parent, write a child, repair a child.

It knows nothing about litellm, the offline provider or the sandbox: it is given
a ``complete(messages) -> str`` callable and does the three things ALMA's meta
agent does, with the robustness the reference lacked:

- the analysis is validated against a real schema (pydantic) and, when the
  answer is not valid JSON or violates the schema, the model is re-asked with
  the validation error (the reference accepted any JSON and later crashed on a
  missing field);
- near misses that real models answer are normalised in the schema rather than
  refused: a string where a list is expected, priorities as words ("High",
  "critical", "P2") or numeric strings, a single object where a list is
  expected, extra fields, JSON in a fence or followed by prose, trailing commas;
  only what cannot be understood is refused, and the retry quotes the problem;
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

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from alma_tui import pysource
from alma_tui.engine import prompts
from alma_tui.sanitize import one_line

__all__ = [
    "Analysis",
    "AnalysisUnparsed",
    "ChangeSuggestion",
    "MetaAgent",
    "MetaAgentError",
    "ParentInfo",
    "TrajectoryAssessment",
    "extract_code",
    "extract_json",
    "extract_title",
    "parse_priority",
]

MemoryLabel = Literal["useful", "potentially_useful", "irrelevant", "empty_or_bad_format"]


class MetaAgentError(RuntimeError):
    """The meta model did not produce a usable answer (after the allowed retries)."""


class AnalysisUnparsed(MetaAgentError):
    """Every analysis answer failed the schema; ``raw`` is the last answer, for the text fallback."""

    def __init__(self, message: str, raw: str) -> None:
        super().__init__(message)
        self.raw = raw


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
    # a second archived design the writer may combine with the parent: {design_id, title, score, code}
    other_design: dict[str, Any] | None = None
    # a merge child's second parent (its code and evaluation) and the per-task comparison of the
    # two ({"tasks": [...], "first_better": [...], "second_better": [...], "tied": [...]})
    second_parent: ParentInfo | None = None
    comparison: dict[str, Any] | None = None


# ---------------------------------------------------------------------------
# Near-miss normalisation (what real models answer instead of the schema)
# ---------------------------------------------------------------------------

_BULLET_RE = re.compile(r"^\s*(?:[-*\u2022\u2013]|\d{1,2}[.)])\s+")
#: priority words -> the schema's numbers (1 = most important)
PRIORITY_WORDS = {
    "critical": 1,
    "urgent": 1,
    "highest": 1,
    "top": 1,
    "very_high": 1,
    "high": 1,
    "medium_high": 2,
    "medium": 2,
    "moderate": 2,
    "normal": 2,
    "mid": 2,
    "med": 2,
    "medium_low": 3,
    "low": 3,
    "minor": 3,
    "lowest": 4,
    "very_low": 4,
    "optional": 4,
    "nice_to_have": 4,
}


def _text(v: object) -> str:
    """A scalar, list or object as one text (lists joined by line breaks)."""
    if v is None:
        return ""
    if isinstance(v, str):
        return v
    if isinstance(v, list):
        return "\n".join(t for t in (_text(x) for x in v) if t)
    if isinstance(v, dict):
        return "; ".join(f"{k}: {_text(x)}" for k, x in v.items() if _text(x))
    return str(v)


def split_items(text: str) -> list[str]:
    """A string where a list of strings was expected: its bullet lines when it is a clear
    bulleted (or numbered) list, else its non-empty lines, else nothing."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        return []
    if len(lines) > 1 and all(_BULLET_RE.match(ln) for ln in lines):
        return [_BULLET_RE.sub("", ln).strip() for ln in lines]
    if len(lines) > 1 and _BULLET_RE.match(lines[0]):  # bullets with wrapped continuation lines
        items: list[str] = []
        for ln in lines:
            if _BULLET_RE.match(ln):
                items.append(_BULLET_RE.sub("", ln).strip())
            else:
                items[-1] += " " + ln.strip()
        return items
    return [text.strip()]


def _str_list(v: object) -> object:
    if v is None:
        return []
    if isinstance(v, str):
        return split_items(v)
    if isinstance(v, dict):
        v = [v]
    if isinstance(v, list | tuple):
        return [t for t in (_text(x).strip() for x in v) if t]
    return [_text(v)]


def _object_list(v: object) -> object:
    if v is None:
        return []
    if isinstance(v, dict):
        return [v]
    return v


def parse_priority(v: object) -> object:
    """1 = most important. Numbers and numeric strings ("2", "2.0", "#2"), words ("High",
    "medium", "critical"), P-levels ("P1", "p2") and "1 (high)". 0 (zero-based) is 1.
    Anything else is returned unchanged, for the schema to refuse."""
    if v is None:
        return 1
    if isinstance(v, bool):
        return v
    if isinstance(v, int | float):
        return max(1, round(v)) if v == v and v >= 0 else v
    if isinstance(v, str):
        s = v.strip().lower()
        m = re.fullmatch(r"(?:p|priority|#)?[\s:=]*(\d+(?:\.\d+)?)\b.*", s)
        if m:
            return max(1, round(float(m.group(1))))
        key = re.sub(r"[^a-z]+", "_", s).strip("_")
        if key in PRIORITY_WORDS:
            return PRIORITY_WORDS[key]
        for word in key.split("_"):  # "high priority", "priority: low"
            if word in PRIORITY_WORDS and word not in ("top",):
                return PRIORITY_WORDS[word]
    return v


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

    @field_validator("how_it_could_help", mode="before")
    @classmethod
    def _help_text(cls, v: object) -> str:
        return _text(v)

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
                "partially_useful": "potentially_useful",
                "somewhat_useful": "potentially_useful",
                "possibly_useful": "potentially_useful",
                "maybe_useful": "potentially_useful",
                "helpful": "useful",
                "very_useful": "useful",
                "not_useful": "irrelevant",
                "unhelpful": "irrelevant",
                "not_relevant": "irrelevant",
                "none": "empty_or_bad_format",
            }
            return aliases.get(key, key)
        return v


class ChangeSuggestion(BaseModel):
    """One concrete code change, ranked by priority (1 = most important)."""

    model_config = ConfigDict(extra="ignore")

    priority: int = Field(default=1, ge=1)
    what: str
    why: str = ""

    @model_validator(mode="before")
    @classmethod
    def _near_miss(cls, v: object) -> object:
        # a bare string is the change itself; common synonyms of what/why are accepted
        if isinstance(v, str):
            return {"what": v}
        if isinstance(v, dict) and "what" not in v:
            for alias in ("change", "suggestion", "description", "action", "title", "name"):
                if v.get(alias):
                    v = {**v, "what": v[alias]}
                    break
        if isinstance(v, dict) and "why" not in v:
            for alias in ("reason", "rationale", "justification", "because"):
                if v.get(alias):
                    v = {**v, "why": v[alias]}
                    break
        return v

    @field_validator("priority", mode="before")
    @classmethod
    def _priority(cls, v: object) -> object:
        return parse_priority(v)

    @field_validator("what", "why", mode="before")
    @classmethod
    def _texts(cls, v: object) -> object:
        return v if v is None else _text(v)


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
    #: True when no answer fitted the schema and ``text`` is the model's analysis as written:
    #: the child is still written from it (a real model's prose analysis is worth a child)
    unstructured: bool = False
    text: str = ""

    @classmethod
    def from_text(cls, raw: str) -> Analysis:
        """The fallback analysis: the model's own words, stored as is and marked unstructured."""
        return cls(unstructured=True, text=raw.strip())

    @model_validator(mode="before")
    @classmethod
    def _unwrap(cls, v: object) -> object:
        # {"analysis": {...}}: one wrapping key around an object with the schema's fields
        if isinstance(v, dict) and len(v) == 1 and not (v.keys() & cls.model_fields):
            (inner,) = v.values()
            if isinstance(inner, dict) and inner.keys() & cls.model_fields:
                return inner
        return v

    @field_validator("content_quality_issues", "structure_issues", mode="before")
    @classmethod
    def _issues(cls, v: object) -> object:
        return _str_list(v)

    @field_validator("trajectory_assessments", mode="before")
    @classmethod
    def _assessments(cls, v: object) -> object:
        return _object_list(v)

    @field_validator("suggested_changes", mode="before")
    @classmethod
    def _changes(cls, v: object) -> object:
        if isinstance(v, str):  # a bulleted string: one change per item, in the order given
            v = split_items(v)
        if isinstance(v, list) and v and all(isinstance(x, str) for x in v):
            return [{"priority": i + 1, "what": x} for i, x in enumerate(v)]
        return _object_list(v)

    @field_validator("lessons_from_previous", "title_hint", mode="before")
    @classmethod
    def _plain(cls, v: object) -> str:
        return _text(v)

    def top_suggestion(self) -> str:
        """The highest-priority change as one line: it becomes the child's
        ``previous_suggestion`` so the next analysis can judge whether it helped."""
        if not self.suggested_changes:
            if self.unstructured:  # the first line of prose that says something
                first = next((ln.strip(" #*-") for ln in self.text.splitlines() if len(ln.strip(" #*-")) > 3), "")
                return one_line(first, 200)
            return ""
        best = min(self.suggested_changes, key=lambda c: c.priority)
        return f"{best.what} (why: {best.why})" if best.why else best.what

    def to_markdown(self) -> str:
        """Human-readable form for ANALYSIS.md in the lineage repo."""
        if self.unstructured:
            return (
                "# Analysis (unstructured)\n\nThe meta model's answer did not fit the analysis schema after its "
                "retries; the child was written from this text, kept as the model wrote it.\n\n"
                + self.text.rstrip()
                + "\n"
            )
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

_FENCE_RE = re.compile(r"(?:```|~~~)[ \t]*([\w+-]*)[^\n]*\n(.*?)(?:\n[ \t]*(?:```|~~~)|\Z)", re.DOTALL)
_TITLE_RE = re.compile(
    r"^\s*(?:#+\s*)?(?:\*\*)?TITLE(?:\*\*)?\s*[:\-\u2013]\s*(?:\*\*)?(.+?)\s*$", re.MULTILINE | re.IGNORECASE
)
_CODE_START_RE = re.compile(r"^(?:\"\"\"|'''|#|from\s+\w|import\s+\w|class\s+\w|def\s+\w|@|[A-Z_]+\s*=)", re.MULTILINE)
_CLASS_RE = re.compile(r"^class\s+(\w+)\s*\(", re.MULTILINE)


def _parses(code: str) -> bool:
    try:
        pysource.parse(code)
    except SyntaxError:
        return False
    return True


def extract_code(text: str) -> str:
    """The Python module inside a model answer.

    Preference order: a ```python fence (the largest one, since a model may
    also quote a snippet), any fence (``` or ~~~, any language tag) that parses
    as Python with a class, the whole answer when it is only code, then bare
    code (the text from the first code-looking line, trimmed of trailing prose
    until it parses). Raises :class:`MetaAgentError` when nothing looks like code.
    """
    fences: list[tuple[str, str]] = [(lang.lower(), body) for lang, body in _FENCE_RE.findall(text or "")]
    py = [b for lang, b in fences if lang in ("python", "py", "python3")]
    if py:
        return max(py, key=len).strip("\n") + "\n"
    other = [b for _, b in fences if _parses(b) and "class " in b]
    if other:
        return max(other, key=len).strip("\n") + "\n"
    body = _TITLE_RE.sub("", text or "").strip("\n")
    if "class " in body and _parses(body):  # the answer is only code
        return body.rstrip() + "\n"
    m = _CODE_START_RE.search(body)
    if m:
        lines = body[m.start() :].rstrip().splitlines()
        # Drop trailing prose lines one by one until the rest parses.
        for end in range(len(lines), 0, -1):
            candidate = "\n".join(lines[:end])
            if "class " in candidate and _parses(candidate):
                return candidate + "\n"
    raise MetaAgentError("the meta model's answer contains no Python module")


def _words(name: str) -> str:
    """``SuccessfulRoutesMemory`` -> ``Successful routes memory``."""
    parts = re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+", name)
    return " ".join(parts).capitalize() if parts else name


def extract_title(text: str, code: str = "", fallback: str = "untitled design") -> str:
    """``TITLE: ...`` line (also ``Title -``, ``**Title:**``, ``# Title:``), else the first
    line of the module docstring, else the design class's name in words, else fallback."""
    m = _TITLE_RE.search(text or "")
    if m:
        return m.group(1).strip().strip("`*\"'")[:120] or fallback
    try:
        doc = ast.get_docstring(pysource.parse(code)) if code else None
    except SyntaxError:
        doc = None
    if doc and doc.strip():
        return doc.strip().splitlines()[0].rstrip(".")[:120]
    names = [n for n in _CLASS_RE.findall(code or "") if n != "MemoryDesign"]
    if names:
        return _words(names[-1])[:120]
    return fallback


_TRAILING_COMMA_RE = re.compile(r",(\s*[}\]])")


def _loads_lenient(text: str) -> object:
    """One JSON value from the start of ``text`` (prose after it is ignored), tolerating
    trailing commas and Python-literal spellings (single quotes, True/None)."""
    decoder = json.JSONDecoder()
    try:
        return decoder.raw_decode(text)[0]
    except json.JSONDecodeError as first:
        fixed = _TRAILING_COMMA_RE.sub(r"\1", text)
        try:
            return decoder.raw_decode(fixed)[0]
        except json.JSONDecodeError:
            pass
        end = fixed.rfind("}")
        try:
            value = pysource.literal_eval(fixed[: end + 1]) if end >= 0 else None
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            value = None
        if isinstance(value, dict | list):
            return value
        raise first


def extract_json(text: str) -> object:
    """The JSON value inside a model answer: whole text, a fence, or the first
    ``{...}`` with prose before and after it; trailing commas are forgiven.
    Raises ``ValueError`` saying where the JSON broke."""
    text = (text or "").strip()
    candidates = [b.strip() for _, b in _FENCE_RE.findall(text)] + [text]
    start = text.find("{")
    if start > 0:
        candidates.append(text[start:])
    last_err: json.JSONDecodeError | None = None
    for c in candidates:
        if not c.startswith(("{", "[")):
            continue
        try:
            return _loads_lenient(c)
        except json.JSONDecodeError as e:
            last_err = e
    if last_err is None:
        raise ValueError("the answer contains no JSON object (no '{' found)")
    raise ValueError(f"the JSON is malformed: {last_err.msg} at line {last_err.lineno} column {last_err.colno}")


def describe_validation_error(exc: ValidationError) -> str:
    """Each schema problem as ``field.path: message (got: value)``, one per line."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ())) or "(the whole object)"
        got = json.dumps(err.get("input"), default=str)
        if len(got) > 80:
            got = got[:77] + "..."
        lines.append(f"{loc}: {err.get('msg', 'invalid')} (got: {got})")
    return "\n".join(lines)


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
                if isinstance(data, list) and len(data) == 1 and isinstance(data[0], dict):
                    data = data[0]  # the object inside a one-element list
                if not isinstance(data, dict):
                    raise ValueError(f"expected a JSON object, got a JSON {type(data).__name__}")
                return Analysis.model_validate(data), raw
            except ValidationError as e:
                error = describe_validation_error(e)
            except ValueError as e:
                error = str(e)
            messages = [
                *messages,
                {"role": "assistant", "content": raw},
                prompts.json_retry_message(error),
            ]
        raise AnalysisUnparsed(
            f"analysis of {parent.design_id} was not valid JSON for the schema after "
            f"{self.max_json_retries + 1} attempts; last error: " + one_line(error.replace("\n", "; "), 300),
            raws[-1] if raws else "",
        )

    def write(self, parent: ParentInfo, analysis: Analysis) -> tuple[str, str, str]:
        """(title, code, raw answer) of a child implementing ``analysis``."""
        if analysis.unstructured:
            messages = prompts.write_messages(parent, analysis.text, self.seed, unstructured=True)
        else:
            messages = prompts.write_messages(parent, analysis.model_dump_json(indent=1), self.seed)
        raw = self.complete(messages)
        code = extract_code(raw)
        title = extract_title(raw, code, fallback=analysis.title_hint or "child design")
        return title, code, raw

    def merge(self, parent: ParentInfo, analysis: Analysis) -> tuple[str, str, str]:
        """(title, code, raw answer) of a child combining ``parent`` and ``parent.second_parent``."""
        text = analysis.text if analysis.unstructured else analysis.model_dump_json(indent=1)
        messages = prompts.merge_messages(parent, text, self.seed, unstructured=analysis.unstructured)
        raw = self.complete(messages)
        code = extract_code(raw)
        title = extract_title(raw, code, fallback=analysis.title_hint or "merged design")
        return title, code, raw

    def repair(self, parent: ParentInfo, code: str, error: str) -> tuple[str, str, str]:
        """(title, fixed code, raw answer) for ``code`` that failed with ``error``."""
        messages = prompts.repair_messages(parent, code, error, self.seed)
        raw = self.complete(messages)
        fixed = extract_code(raw)
        title = extract_title(raw, fixed, fallback="repaired design")
        return title, fixed, raw
