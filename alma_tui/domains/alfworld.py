"""``alfworld`` domain: the ALMA paper's household benchmark, played by the real package.

Each task is one ALFWorld game (``game.tw-pddl``), loaded by alfworld's own text
environment, ``AlfredTWEnv`` (TextWorld over the PDDL domain ``alfred.pddl`` and the
grammar ``alfred.twl2``), exactly as the reference does: ``init_env(batch_size=1)``, the
admissible commands from TextWorld's ``EnvInfos``, success = ``won``. What we add:

- the data is found and checked *before* alfworld is imported or an env built
  (:mod:`alma_tui.domains.alfworld_data`; without games the package spins forever);
- the observation is cleaned (the ``-= Welcome to TextWorld, ALFRED! =-`` banner goes; the
  room and the ``Your task is to: ...`` goal stay, as the agent must see the goal);
- ``help`` is dropped from the admissible list (it prints the command list, costs a step
  and is never useful to an agent that is given the admissible actions);
- the reference's 30-step limit and its splits (search on ``train``, held out on
  ``valid_seen`` or ``valid_unseen``), with pools stratified by task type.

alfworld, textworld and the PDDL planner are imported on the first ``make_env`` (seconds),
never when the domain is listed or its tasks are drawn. The planner is a C library shared by
the process: environment calls are serialised by a lock (a step takes 30-70 ms).
"""

from __future__ import annotations

import contextlib
import io
import re
import threading
from typing import Any

from alma_tui.domains.alfworld_data import data_problem, find_games, pool, split_dir
from alma_tui.domains.base import StepResult, TaskSpec

__all__ = ["MAX_STEPS", "ALFWorldDomain", "ALFWorldEnv", "clean_observation"]

MAX_STEPS = 30  # the ALMA reference's step limit for ALFWorld
_BANNER = re.compile(r"^\s*-=\s*Welcome to TextWorld, ALFRED!\s*=-\s*", re.IGNORECASE)
_DROP = {"help"}
_LOCK = threading.RLock()

INSTRUCTIONS = (
    "You are an agent in a household (ALFWorld). Each turn you see an observation and the list of "
    "admissible actions. Reply with exactly one admissible action, copied verbatim, and nothing else. "
    "Closed receptacles (cabinets, drawers, fridge, microwave, safe) must be opened to see or take "
    "what is inside. Use 'move X to Y' to put an object you hold in or on a receptacle. To clean an "
    "object use a sinkbasin, to heat it a microwave, to cool it a fridge, while holding it; to look "
    "at an object under a lamp, hold it and use the lamp. You have at most 30 steps."
)


def clean_observation(text: str) -> str:
    """The observation without TextWorld's banner and surrounding blank space."""
    return _BANNER.sub("", text or "").strip()


def _config(game_dir: str, max_steps: int) -> dict[str, Any]:
    """The smallest config AlfredTWEnv reads: its data path is the game's own folder, so the
    package's own collect_game_files checks that one game (and nothing else is walked)."""
    from alfworld.info import ALFRED_PDDL_PATH, ALFRED_TWL2_PATH

    return {
        "dataset": {
            "data_path": game_dir,
            "eval_id_data_path": game_dir,
            "eval_ood_data_path": game_dir,
            "num_train_games": -1,
            "num_eval_games": -1,
        },
        "logic": {"domain": ALFRED_PDDL_PATH, "grammar": ALFRED_TWL2_PATH},
        "env": {
            "type": "AlfredTWEnv",
            "domain_randomization": False,
            "task_types": [1, 2, 3, 4, 5, 6],
            "expert_type": "handcoded",
            "goal_desc_human_anns_prob": 0.0,
        },
        "general": {"training_method": "dagger"},
        "dagger": {"training": {"max_nb_steps_per_episode": max_steps}},
    }


def _build(game_dir: str, max_steps: int) -> Any:
    """alfworld's TextWorld env over one game. Its progress bars and prints go nowhere (they
    would paint over the TUI); an empty game list is refused here, never handed to reset()."""
    from alfworld.agents.environment.alfred_tw_env import AlfredTWEnv

    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        # "eval_in_distribution": no expert wrapper (the "train" mode runs a hand-coded expert each step)
        tw = AlfredTWEnv(_config(game_dir, max_steps), train_eval="eval_in_distribution")
        if not tw.game_files:
            raise RuntimeError(f"alfworld found no playable game in {game_dir}")
        return tw.init_env(batch_size=1)


class ALFWorldEnv:
    """One episode of one ALFWorld game (implements ``domains.base.Env``)."""

    def __init__(self, task: TaskSpec, max_steps: int = MAX_STEPS) -> None:
        self.task = task
        self.goal = task.goal
        self.max_steps = max_steps
        self._env: Any = None
        self._admissible: list[str] = []
        self.steps = 0
        self.won = False
        self.done = False

    def reset(self) -> str:
        with _LOCK:
            if self._env is None:
                self._env = _build(str(self.task.meta["game_dir"]), self.max_steps)
            obs, infos = self._env.reset()
        self.steps, self.won, self.done = 0, False, False
        self._admissible = self._commands(infos)
        return clean_observation(obs[0])

    @staticmethod
    def _commands(infos: dict[str, Any]) -> list[str]:
        return [c for c in infos["admissible_commands"][0] if c not in _DROP]

    def admissible_actions(self) -> list[str]:
        return list(self._admissible)

    def step(self, action: str) -> StepResult:
        if self.done:
            return StepResult("The episode is over.", 0.0, True, self.won)
        action = " ".join(action.strip().split())
        with _LOCK:
            obs, _scores, dones, infos = self._env.step([action])
        self.steps += 1
        self.won = bool(infos["won"][0])
        self.done = self.won or bool(dones[0]) or self.steps >= self.max_steps
        self._admissible = self._commands(infos)
        return StepResult(clean_observation(obs[0]), 1.0 if self.won else 0.0, self.done, self.won)

    def score(self) -> float:
        return 1.0 if self.won else 0.0


class ALFWorldDomain:
    """The ``alfworld`` domain (implements ``domains.base.Domain``)."""

    name = "alfworld"
    description = "ALFWorld household games played by the real alfworld package (needs its data download)"
    instructions = INSTRUCTIONS
    offline_policy = "alma_tui.offline.alfworld_policy:choose_action"

    def __init__(self, max_steps: int = MAX_STEPS, test_set: str = "valid_seen") -> None:
        if test_set not in ("valid_seen", "valid_unseen"):
            raise ValueError(f"unknown ALFWorld test set {test_set!r}; use valid_seen or valid_unseen")
        self.max_steps = max_steps
        self.test_set = test_set

    def requirements(self) -> str | None:
        return data_problem(self.test_set)

    def tasks(self, split: str, seed: int, n: int | None = None) -> list[TaskSpec]:
        """Games of ``train`` (the search) or ``test`` (the held-out set), stratified by task type.
        Train and test come from different ALFWorld folders, so they never overlap."""
        if split not in ("train", "test"):
            raise ValueError(f"unknown split {split!r}; use 'train' or 'test'")
        problem = data_problem(self.test_set)
        if problem:
            raise RuntimeError(problem)
        directory = split_dir("train" if split == "train" else self.test_set)
        games = pool(find_games(directory), seed)
        out = []
        for i, g in enumerate(games[: len(games) if n is None else n]):
            rel = g.path.relative_to(directory).as_posix()
            meta = {"game_dir": str(g.path), "task_type": g.task_type, "set": directory.name}
            out.append(TaskSpec(f"alfworld-{directory.name}-{rel}", g.goal, split, i, meta))
        return out

    def make_env(self, task: TaskSpec) -> ALFWorldEnv:
        return ALFWorldEnv(task, self.max_steps)
