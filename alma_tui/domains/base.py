"""What every domain offers the evaluator: tasks, environments, instructions.

Domains are plain Python and never import the engine, the store or Textual, so a
heavy domain (textworld, minihack) is imported only when it is actually chosen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class TaskSpec:
    """A reproducible task: the domain can rebuild its environment from this alone."""

    task_id: str
    goal: str
    split: str  # "train" or "test"
    seed: int
    meta: dict = field(default_factory=dict, compare=False, hash=False)


@dataclass
class StepResult:
    observation: str
    reward: float
    done: bool
    success: bool


class Env(Protocol):
    """One running episode of one task."""

    goal: str

    def reset(self) -> str:
        """Start the episode; return the initial observation (goal included)."""

    def step(self, action: str) -> StepResult:
        """Apply an action. An inadmissible action returns a 'Nothing happens.' style
        observation, reward 0, and still counts as a step."""

    def admissible_actions(self) -> list[str]:
        """Actions valid now, in a stable order."""

    def score(self) -> float:
        """Final reward of the episode so far (1.0 success, else 0.0, or progress)."""


class Domain(Protocol):
    """A domain. Optional attribute, read with ``getattr``: ``offline_policy``, a
    ``"module:function"`` naming the offline acting policy ``(messages, seed) -> answer``
    the offline ``offline/agent`` model uses on this domain (see ``alma_tui.offline``)."""

    name: str
    description: str  # one line for `alma-tui domains`
    instructions: str  # the acting agent's system prompt (memory is appended after it)
    max_steps: int

    def tasks(self, split: str, seed: int, n: int | None = None) -> list[TaskSpec]:
        """Tasks of a split ("train" or "test"); train and test never overlap."""

    def make_env(self, task: TaskSpec) -> Env:
        """Build the environment for a task (deterministic for the task's seed)."""

    def requirements(self) -> str | None:
        """None when usable now, else one line saying what is missing and how to get it."""
