"""The acting agent's message format: the contract between the engine and any LLM.

Kept in one tiny module because three parties depend on its exact shape: the
step loop that builds the chat, real LLMs that read it, and the offline policy
(:mod:`alma_tui.offline.policy`) that parses it back. Change it here and nowhere else.
"""

from __future__ import annotations

__all__ = [
    "ADMISSIBLE_HEADING",
    "AGENT_PROMPT_VERSION",
    "HISTORY_HEADING",
    "MEMORY_HEADING",
    "history_message",
    "parse_history",
    "step_message",
    "system_prompt",
]

#: recorded with every acting-agent call; bump it when the chat's shape or wording changes
AGENT_PROMPT_VERSION = "agent-2026.2"
MEMORY_HEADING = "## Relevant past experience"
ADMISSIBLE_HEADING = "Admissible actions:"
HISTORY_HEADING = "Earlier steps (summary, oldest first):"
_ARROW = " -> "
MAX_SUMMARY_ACTION = 120
MAX_SUMMARY_OBSERVATION = 300


def system_prompt(instructions: str, memory: str) -> str:
    """Domain instructions, plus the retrieved memory under its heading when non-empty
    (an empty retrieval adds nothing, as in the reference protocol)."""
    memory = (memory or "").strip()
    if not memory:
        return instructions.rstrip()
    return f"{instructions.rstrip()}\n\n{MEMORY_HEADING}\n{memory}"


def step_message(observation: str, admissible: list[str]) -> str:
    """Observation, a blank line, then ``Admissible actions:`` and one ``- action`` per line."""
    lines = [observation.rstrip(), "", ADMISSIBLE_HEADING]
    lines += [f"- {a}" for a in admissible]
    return "\n".join(lines)


def _first_line(text: str, limit: int) -> str:
    line = next((ln.strip() for ln in (text or "").splitlines() if ln.strip()), "")
    return line if len(line) <= limit else line[: limit - 3].rstrip() + "..."


def history_message(pairs: list[tuple[str, str]], start: int = 1) -> str:
    """Older exchanges folded into one short, deterministic text: each step's action and the
    first line of what it produced (the admissible lists, most of a step's tokens, are dropped)."""
    lines = [HISTORY_HEADING]
    for i, (action, observation) in enumerate(pairs, start):
        act = " ".join((action or "").split())[:MAX_SUMMARY_ACTION]
        lines.append(f"{i}. {act}{_ARROW}{_first_line(observation, MAX_SUMMARY_OBSERVATION)}")
    return "\n".join(lines)


def parse_history(content: str) -> list[tuple[str, str]] | None:
    """(action, observation line) pairs of a :func:`history_message`, or None for another message."""
    if not content.startswith(HISTORY_HEADING):
        return None
    out = []
    for line in content.splitlines()[1:]:
        num, dot, rest = line.partition(". ")
        if not dot or not num.isdigit():
            continue
        action, _, obs = rest.partition(_ARROW)
        out.append((action.strip(), obs.strip()))
    return out
