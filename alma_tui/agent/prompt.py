"""The acting agent's message format: the contract between the engine and any LLM.

Kept in one tiny module because three parties depend on its exact shape: the
step loop that builds the chat, real LLMs that read it, and the offline policy
(:mod:`alma_tui.offline.policy`) that parses it back. Change it here and nowhere else.
"""

from __future__ import annotations

__all__ = ["ADMISSIBLE_HEADING", "MEMORY_HEADING", "step_message", "system_prompt"]

MEMORY_HEADING = "## Relevant past experience"
ADMISSIBLE_HEADING = "Admissible actions:"


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
