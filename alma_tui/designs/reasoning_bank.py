"""ReasoningBank: distil each episode into up to 3 titled memory items.

Port of the reference baseline (Ouyang et al., "ReasoningBank"). After every
collected episode the LLM is asked, with one prompt for successes (why did it
work?) and another for failures (what went wrong, how to avoid it?), for at most
three memory items, each a title, a one-sentence description and a short content.
The items of one episode form one bank entry, keyed like trajectory retrieval by
the task: the goal plus the first sentence of the initial observation (the
setting). Before an episode the entry of the most similar stored task (embedding
cosine) is returned, its items one after the other.

One LLM call per update and none per retrieval. The answer is parsed leniently
(Markdown headings, "Title:" lines, any case); an answer without that structure
becomes a single item holding the answer's text, and an empty answer stores
nothing, so an unexpected answer never raises. Keys are embedded once at update
time and queries are cached; an empty bank retrieves "".
"""

import math
import re

from alma_tui.design_api import Episode, MemoryDesign, Query

MAX_ITEMS = 3
MAX_STEPS_SHOWN = 40
MAX_OBS_CHARS = 300
MAX_FIELD_CHARS = 200
MAX_CONTENT_CHARS = 900

SYSTEM = (
    "You build a memory bank for an agent that solves household tasks by text "
    "actions. You turn one past episode into a few reusable memory items."
)

_COMMON = """## Output format
Write at most {n} memory items, in exactly this Markdown format:

# Memory Item 1
## Title <a short title>
## Description <one sentence saying when the item applies>
## Content <one to three short sentences or lines with the insight>

## Task
Goal: {goal}
Setting: {setting}
Outcome: {outcome} after {steps} steps (score {score})

## Trajectory (action -> observation)
{trajectory}
"""

SUCCESS_PROMPT = (
    "The agent below SUCCESSFULLY completed its task. First think about why the "
    "trajectory succeeded, then extract memory items that will help the agent solve "
    "similar tasks faster (the same kind of place, the same kind of object or the "
    "same chore). Prefer concrete, reusable knowledge: where objects of this kind "
    "were found, which appliance performed the required transformation, and which "
    "order of actions was efficient. Items must be distinct.\n\n" + _COMMON
)

FAILURE_PROMPT = (
    "The agent below FAILED its task. First reflect on why the trajectory failed "
    "(what it tried, what it missed, where it wasted steps), then extract memory "
    "items with the lessons and strategies that prevent this failure next time. "
    "Also keep the useful facts it observed (where objects and appliances were "
    "seen) so a later attempt can go straight there. Items must be distinct.\n\n" + _COMMON
)

_ITEM_SPLIT = re.compile(r"^\s*#*\s*\**\s*memory\s+item\b[^\n]*$", re.IGNORECASE | re.MULTILINE)
_FIELD = re.compile(
    r"^\s*(?:#+\s*|\*\*)?\s*(title|description|content)\b\s*(?:\*\*)?\s*[:\-]?\s*(?:\*\*)?",
    re.IGNORECASE | re.MULTILINE,
)
_IT = re.compile(r"\bIn it,")
_REC_AT_END = re.compile(r"([A-Za-z]+ \d+)\s*$")


def _setting(observation: str) -> str:
    """First sentence of the initial observation: where the task takes place."""
    first = observation.strip().split("\n")[0]
    return first.split(". ")[0][:200]


def _unit(vec):
    norm = math.sqrt(sum(x * x for x in vec))
    return [x / norm for x in vec] if norm > 0 else [0.0 for _ in vec]


def _render_step(action: str, observation: str) -> str:
    """One "action -> observation" line; "In it," is resolved to the receptacle acted on."""
    obs = " ".join(str(observation).split())
    m = _REC_AT_END.search(str(action))
    if m:
        obs = _IT.sub(f"In the {m.group(1)},", obs)
    return f"{action} -> {obs[:MAX_OBS_CHARS]}"


def _clean(text: str, limit: int) -> str:
    text = re.sub(r"</?[A-Za-z_]+>", "", str(text))  # stray tags
    lines = [ln.strip().strip("*").strip() for ln in text.strip().splitlines()]
    return "\n".join(ln for ln in lines if ln)[:limit].strip()


def parse_items(answer: str) -> list[dict]:
    """Memory items of an LLM answer; never raises. Unstructured text -> one item."""
    answer = str(answer or "").strip()
    if not answer:
        return []
    chunks = [c for c in _ITEM_SPLIT.split(answer) if c.strip()]
    items = []
    for chunk in chunks:
        fields = {}
        marks = list(_FIELD.finditer(chunk))
        for i, m in enumerate(marks):
            end = marks[i + 1].start() if i + 1 < len(marks) else len(chunk)
            name = m.group(1).lower()
            if name not in fields:
                fields[name] = chunk[m.end() : end]
        content = _clean(fields.get("content", ""), MAX_CONTENT_CHARS)
        if content:
            items.append(
                {
                    "title": _clean(fields.get("title", ""), MAX_FIELD_CHARS).replace("\n", " "),
                    "description": _clean(fields.get("description", ""), MAX_FIELD_CHARS).replace("\n", " "),
                    "content": content,
                }
            )
        if len(items) >= MAX_ITEMS:
            break
    if not items:  # no recognisable structure: keep the whole answer as one item
        content = _clean(answer, MAX_CONTENT_CHARS)
        if content:
            items.append({"title": "Notes from this episode", "description": "", "content": content})
    return items


class ReasoningBank(MemoryDesign):
    """Per-episode LLM-distilled memory items; retrieves those of the nearest task."""

    def __init__(self, services):
        super().__init__(services)
        self.entries = []  # one dict per stored episode: task, outcome, items
        self.vectors = []  # unit embedding of each entry's key, same order
        self._query_cache = {}

    def _key(self, goal: str, observation: str) -> str:
        return f"{goal} | {_setting(observation)}"

    def update(self, episode: Episode) -> None:
        steps = episode.steps[:MAX_STEPS_SHOWN]
        trajectory = "\n".join(_render_step(s.action, s.observation) for s in steps) or "(no steps)"
        template = SUCCESS_PROMPT if episode.success else FAILURE_PROMPT
        prompt = template.format(
            n=MAX_ITEMS,
            goal=episode.goal,
            setting=_setting(episode.initial_observation),
            outcome="success" if episode.success else "failure",
            steps=episode.step_count,
            score=f"{episode.score:g}",
            trajectory=trajectory,
        )
        items = parse_items(self.services.llm(prompt, SYSTEM))
        if not items:
            self.services.log(f"reasoning_bank: no memory item from {episode.task_id}")
            return
        key = self._key(episode.goal, episode.initial_observation)
        self.vectors.append(_unit(self.services.embed([key])[0]))
        self.entries.append(
            {
                "task_id": episode.task_id,
                "goal": episode.goal,
                "setting": _setting(episode.initial_observation),
                "success": bool(episode.success),
                "items": items,
            }
        )

    def retrieve(self, query: Query) -> str:
        if not self.entries:
            return ""
        key = self._key(query.goal, query.observation)
        vec = self._query_cache.get(key)
        if vec is None:
            vec = _unit(self.services.embed([key])[0])
            self._query_cache[key] = vec
        best, best_sim = 0, -2.0
        for i, v in enumerate(self.vectors):
            sim = sum(x * y for x, y in zip(vec, v))
            if sim > best_sim:
                best, best_sim = i, sim
        entry = self.entries[best]
        outcome = "success" if entry["success"] else "failure"
        lines = [
            f"Memory items from the most similar past task (similarity {best_sim:.2f}, {outcome}):",
            f"Task: {entry['goal']} ({entry['setting']})",
        ]
        for item in entry["items"]:
            lines.append(f"# {item['title'] or 'Memory item'}")
            if item["description"]:
                lines.append(item["description"])
            lines.append(item["content"])
        return "\n".join(lines)

    def snapshot(self) -> dict:
        return {
            "entries": len(self.entries),
            "memory_items": sum(len(e["items"]) for e in self.entries),
            "items": [
                {
                    "task_id": e["task_id"],
                    "goal": e["goal"],
                    "success": e["success"],
                    "titles": [it["title"] for it in e["items"]],
                }
                for e in self.entries
            ],
        }
