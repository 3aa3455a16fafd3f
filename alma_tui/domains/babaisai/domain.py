"""The ``babaisai`` domain: Baba Is AI levels as text episodes for the acting agent.

Reward follows the benchmark: ``1 - 0.9 * steps / max_steps`` on success, 0 otherwise, with
the paper's step limit of 20. Task pools are seeded; train seeds are even and test seeds
odd, so the splits never share a level, while both cycle through the same families, so
what solved one level helps on its siblings.
"""

from __future__ import annotations

import random

from alma_tui.domains.babaisai.engine import ACTIONS, Game
from alma_tui.domains.babaisai.levels import FAMILIES, MAX_STEPS, family_of, generate_level
from alma_tui.domains.babaisai.render import render
from alma_tui.domains.base import StepResult, TaskSpec

__all__ = ["GOAL", "INSTRUCTIONS", "BabaIsAIDomain", "BabaIsAIEnv", "reward"]

GOAL = "make an object that is YOU reach an object that is WIN"
INSTRUCTIONS = (
    "Baba Is You is a puzzle game where you can manipulate the rules of each level. Each turn you "
    "see the active rules and every object and word tile relative to you, and the admissible "
    "actions: idle (wait one step), up, right, down, left (one step in that direction). Reply "
    "with exactly one admissible action and nothing else.\n"
    "Tips:\n"
    '- Rules are word tiles in a line, left to right or top to bottom: "[Subject] IS [Property]" '
    '(e.g. "BABA IS YOU") or "[Subject] IS [Subject]" (turns one kind of object into another).\n'
    "- You move the objects that are YOU. Word tiles are pushed when you walk into them, so "
    "pushing them makes and breaks rules.\n"
    "- STOP objects block movement, PUSH objects are pushed, touching a DEFEAT object destroys "
    "you, and a YOU object on a WIN object wins the level.\n"
    "- Your goal is usually to reach an object that is WIN, but the rules can be changed: make "
    "a new WIN rule, break a STOP rule that blocks the way, or make something else YOU.\n"
    "- If no object is YOU any more, the level is lost. You have a limited number of steps; "
    "fewer steps score higher."
)


def reward(steps: int, max_steps: int = MAX_STEPS) -> float:
    """The benchmark's reward for a level won in ``steps`` steps."""
    return 1.0 - 0.9 * steps / max_steps


class BabaIsAIEnv:
    """One episode of one level (implements ``domains.base.Env``)."""

    def __init__(self, task: TaskSpec, max_steps: int = MAX_STEPS) -> None:
        self.task = task
        self.max_steps = max_steps
        self.generated = generate_level(task.seed)
        self.goal = GOAL
        self.reset()

    def reset(self) -> str:
        self.game = Game(self.generated.level)
        self.steps = 0
        self.done = False
        self.success = False
        return f"{render(self.game)}\n\nYour goal: {GOAL}."

    def admissible_actions(self) -> list[str]:
        return list(ACTIONS)

    def score(self) -> float:
        return reward(self.steps, self.max_steps) if self.success else 0.0

    def step(self, action: str) -> StepResult:
        if self.done:
            return StepResult("The episode is over.", 0.0, True, self.success)
        action = " ".join(action.strip().lower().split())
        self.steps += 1
        if action not in ACTIONS:
            obs = "Nothing happens."
        else:
            self.game.step(action)
            obs = render(self.game)
            if self.game.won:
                self.success = True
                obs = f"You win: a YOU object reached a WIN object.\n{obs}"
            elif self.game.lost:
                obs = f"You lose: no object is YOU any more.\n{obs}"
        self.done = self.game.won or self.game.lost or self.steps >= self.max_steps
        return StepResult(obs, self.score(), self.done, self.success)


class BabaIsAIDomain:
    """The ``babaisai`` domain (implements ``domains.base.Domain``)."""

    name = "babaisai"
    description = "Baba Is AI rule-manipulation puzzles (built-in engine, 7 families); no dependencies"
    instructions = INSTRUCTIONS
    # the offline acting model's policy for this domain (alma_tui.offline reads it; see base.Domain)
    offline_policy = "alma_tui.offline.babaisai_policy:choose_action"

    def __init__(self, max_steps: int = MAX_STEPS) -> None:
        self.max_steps = max_steps

    def tasks(self, split: str, seed: int, n: int | None = None) -> list[TaskSpec]:
        """``n`` levels of a split (default 42, six of each family, in family order). Train task
        seeds are even, test odd; a list for ``n`` is a prefix of the one for ``n + k``."""
        if split not in ("train", "test"):
            raise ValueError(f"unknown split {split!r}; use 'train' or 'test'")
        n = 6 * len(FAMILIES) if n is None else n
        rng = random.Random(f"babaisai:{split}:{seed}")
        parity = 0 if split == "train" else 1
        base = rng.randrange(1_000_000) * len(FAMILIES)
        out: list[TaskSpec] = []
        for i in range(n):
            task_seed = 2 * (base + i) + parity  # (seed // 2) % 7 cycles through the families
            family = family_of(task_seed)
            out.append(TaskSpec(f"babaisai-{split}-{task_seed}", GOAL, split, task_seed, {"family": family}))
        return out

    def make_env(self, task: TaskSpec) -> BabaIsAIEnv:
        return BabaIsAIEnv(task, self.max_steps)

    def requirements(self) -> str | None:
        return None
