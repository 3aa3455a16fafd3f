"""The whole surface a memory design may touch.

A design is untrusted code written by an LLM. It imports only this module (plus
the stdlib and numpy), subclasses :class:`MemoryDesign`, and talks to the world
only through :class:`Services`, whose calls the engine brokers and budgets. The
module is deliberately tiny and dependency-free so it can be imported inside the
sandbox worker in milliseconds and so its contract can be pasted into a prompt.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Episode", "MemoryDesign", "Query", "Services", "Step"]


@dataclass
class Step:
    """One environment transition: what the agent saw, what it did, what it got."""

    observation: str
    action: str
    reward: float = 0.0


@dataclass
class Episode:
    """A finished episode, handed to ``MemoryDesign.update`` after collection."""

    domain: str
    task_id: str
    goal: str
    initial_observation: str
    steps: list[Step] = field(default_factory=list)
    success: bool = False
    score: float = 0.0
    step_count: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Episode:
        steps = [s if isinstance(s, Step) else Step(**s) for s in data.get("steps", [])]
        return cls(**{**data, "steps": steps})


@dataclass
class Query:
    """What a design knows when asked for memory before (or during) an episode."""

    goal: str
    observation: str
    steps: list[Step] = field(default_factory=list)
    step_index: int = 0
    domain: str = ""
    task_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Query:
        steps = [s if isinstance(s, Step) else Step(**s) for s in data.get("steps", [])]
        return cls(**{**data, "steps": steps})


class Services:
    """The only door outward. Every call is brokered, logged and budgeted by the engine.

    ``llm`` returns the model's text answer; ``embed`` returns one vector per text;
    ``log`` writes a line into the design's event log (visible in the TUI).
    """

    def __init__(
        self,
        llm: Callable[[str, str | None], str] | None = None,
        embed: Callable[[list[str]], list[list[float]]] | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self._llm = llm
        self._embed = embed
        self._log = log

    def llm(self, prompt: str, system: str | None = None) -> str:
        if self._llm is None:
            raise RuntimeError("no llm service is available in this context")
        return self._llm(prompt, system)

    def embed(self, texts: list[str]) -> list[list[float]]:
        if self._embed is None:
            raise RuntimeError("no embedding service is available in this context")
        return self._embed(list(texts))

    def log(self, msg: str) -> None:
        if self._log is not None:
            self._log(str(msg))


class MemoryDesign:
    """Base class of every memory design.

    ``update`` is called once per finished collection episode (serially, in task
    order); ``retrieve`` before each deployment episode, and its text goes into the
    acting agent's prompt (an empty string adds nothing); ``snapshot`` is a JSON
    view of the memory shown in the TUI.
    """

    def __init__(self, services: Services) -> None:
        self.services = services

    def update(self, episode: Episode) -> None:
        return None

    def retrieve(self, query: Query) -> str:
        return ""

    def snapshot(self) -> dict:
        return {}
