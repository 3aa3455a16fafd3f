"""Dynamic Cheatsheet (cumulative): one LLM-curated cheatsheet for every task.

Port of the reference baseline (Suzgun et al., "Dynamic Cheatsheet", the
cumulative variant). The memory is a single cheatsheet string. After every
collected episode an LLM curator gets the episode (goal, setting, outcome, the
"action -> observation" trajectory) and the current cheatsheet, and writes the
complete new cheatsheet between <cheatsheet> tags. Retrieval returns the
cheatsheet, unchanged, before every task (no LLM call, no embedding).

Fixes over the reference: a missing output tag no longer wipes the cheatsheet.
An answer with a complete, non-empty <cheatsheet> block replaces it; any other
non-empty answer (no tags, an unclosed tag) is treated as additions and merged
in front of the old lines (duplicates dropped); an empty answer keeps the old
cheatsheet. The cheatsheet is capped at MAX_CHARS, in lines of at most
MAX_LINE_CHARS (the oldest, i.e. last, lines go first).
"""

import re

from alma_tui.design_api import Episode, MemoryDesign, Query

MAX_CHARS = 3000
MAX_LINE_CHARS = 500
MAX_WORDS_HINT = 400
MAX_STEPS_SHOWN = 40
MAX_OBS_CHARS = 300

SYSTEM = (
    "You are the curator of a cheatsheet: a compact, evolving collection of "
    "knowledge that helps an agent solve household tasks by text actions."
)

PROMPT = """An agent just attempted the task below. Update the cheatsheet so that it helps with future tasks.

## Task just attempted
Goal: {goal}
Setting: {setting}
Outcome: {outcome} after {steps} steps (score {score})

## Trajectory (action -> observation)
{trajectory}

## Current cheatsheet
{cheatsheet}

## Instructions
- The cheatsheet is cumulative: everything you leave out is lost, so keep every entry of the current
  cheatsheet that is still useful, and add what this episode teaches.
- Record concrete, reusable knowledge: where each kind of object was found in each kind of place (with
  how often), which appliance performs a needed transformation, efficient action orders, and pitfalls
  that wasted steps.
- Merge duplicates, correct entries this episode contradicts, and put the most useful entries first,
  one per line.
- Stay under {words} words.

Write the complete new cheatsheet between <cheatsheet> and </cheatsheet>, and nothing after the closing tag.
"""

_BLOCK = re.compile(r"<cheatsheet>(.*?)</cheatsheet>", re.IGNORECASE | re.DOTALL)
_OPEN = re.compile(r"<cheatsheet>", re.IGNORECASE)
_TAG = re.compile(r"</?\s*cheatsheet\s*>", re.IGNORECASE)
_IT = re.compile(r"\bIn it,")
_REC_AT_END = re.compile(r"([A-Za-z]+ \d+)\s*$")


def _setting(observation: str) -> str:
    first = observation.strip().split("\n")[0]
    return first.split(". ")[0][:200]


def _render_step(action: str, observation: str) -> str:
    """One "action -> observation" line; "In it," is resolved to the receptacle acted on."""
    obs = " ".join(str(observation).split())
    m = _REC_AT_END.search(str(action))
    if m:
        obs = _IT.sub(f"In the {m.group(1)},", obs)
    return f"{action} -> {obs[:MAX_OBS_CHARS]}"


def _lines(text: str) -> list[str]:
    return [ln.rstrip() for ln in str(text).splitlines() if ln.strip()]


def _cap(lines: list[str]) -> str:
    """Whole lines, first ones first, within MAX_CHARS."""
    out, used = [], 0
    for ln in lines:
        ln = ln[:MAX_LINE_CHARS]
        if used + len(ln) + 1 > MAX_CHARS:
            break
        out.append(ln)
        used += len(ln) + 1
    return "\n".join(out)


def merge_answer(old: str, answer: str) -> tuple[str, str]:
    """(new cheatsheet, how): never raises, never loses the old cheatsheet to a bad answer."""
    answer = str(answer or "")
    blocks = [b.strip() for b in _BLOCK.findall(answer)]
    if blocks and blocks[-1]:
        new = _cap(_lines(blocks[-1]))
        return (new, "replaced") if new.strip() else (old, "kept")
    opens = list(_OPEN.finditer(answer))
    body = answer[opens[-1].end() :] if opens and not blocks else ("" if blocks else answer)
    added = _lines(_TAG.sub("", body))
    if not added:
        return old, "kept"
    seen, merged = set(), []
    for ln in added + _lines(old):
        k = " ".join(ln.lower().split())
        if k not in seen:
            seen.add(k)
            merged.append(ln)
    new = _cap(merged)
    return (new, "merged") if new.strip() else (old, "kept")


class DynamicCheatsheet(MemoryDesign):
    """A single cheatsheet, rewritten by an LLM curator after every episode."""

    def __init__(self, services):
        super().__init__(services)
        self.cheatsheet = ""
        self.episodes = 0
        self.history = []  # (task_id, how the answer was applied, size) per update

    def update(self, episode: Episode) -> None:
        steps = episode.steps[:MAX_STEPS_SHOWN]
        prompt = PROMPT.format(
            goal=episode.goal,
            setting=_setting(episode.initial_observation),
            outcome="success" if episode.success else "failure",
            steps=episode.step_count,
            score=f"{episode.score:g}",
            trajectory="\n".join(_render_step(s.action, s.observation) for s in steps) or "(no steps)",
            cheatsheet=self.cheatsheet or "(empty)",
            words=MAX_WORDS_HINT,
        )
        answer = self.services.llm(prompt, SYSTEM)
        self.cheatsheet, how = merge_answer(self.cheatsheet, answer)
        self.episodes += 1
        self.history.append({"task_id": episode.task_id, "applied": how, "chars": len(self.cheatsheet)})
        self.history = self.history[-50:]
        if how != "replaced":
            self.services.log(f"dynamic_cheatsheet: curator answer without a complete tag, {how}")

    def retrieve(self, query: Query) -> str:
        if not self.cheatsheet.strip():
            return ""
        return "Cheatsheet (curated from past episodes):\n" + self.cheatsheet

    def snapshot(self) -> dict:
        return {
            "episodes_seen": self.episodes,
            "chars": len(self.cheatsheet),
            "cheatsheet": self.cheatsheet,
            "items": [{"line": ln} for ln in _lines(self.cheatsheet)],
            "updates": list(self.history),
        }
