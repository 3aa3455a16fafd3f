"""Where ALFWorld's games are, which of them are playable, and how they split into pools.

Standard library only, on purpose: ``alma-tui domains`` asks :func:`data_problem` whether
ALFWorld is ready without importing the ``alfworld`` package (textworld, spacy, the PDDL
planner: seconds of import). And it must be asked *before* the package builds an
environment: ``AlfredTWEnv`` over an empty data path does not fail, its ``reset()`` spins
forever at 100% CPU (TextWorld cycles over an empty game list).

Layout (what ``alfworld-download`` writes under ``$ALFWORLD_DATA``, default
``~/.cache/alfworld``)::

    json_2.1.1/{train,valid_seen,valid_unseen}/<task_type>-<Obj>-<MRecep>-<Recep>-<scene>/trial_*/
        traj_data.json      "task_type" (one of TASK_TYPES), "pddl_params", annotations
        game.tw-pddl        JSON: pddl_domain, grammar (with the goal text), pddl_problem, solvable

A folder is a game when it holds both files, ``game.tw-pddl`` says ``"solvable": true``,
its task type is one of the six, and its path has neither ``movable`` nor ``Sliced``:
exactly the checks of ``AlfredTWEnv.collect_game_files`` (alfworld 0.4.2).

Splits, as in the ALMA reference: the search (``train``) draws from ``train``; the held-out
``test`` split is ``valid_seen`` (140 games, in distribution), or ``valid_unseen`` (134,
out of distribution) when the domain is built with ``test_set="valid_unseen"``. Pools are
*stratified by task type*: each type's games are shuffled with the seed and the pool takes
them round-robin over the six types, so any prefix (the evaluator's collection and
deployment halves) holds every task type in near-equal numbers, and memory collected on
one type can be used on its siblings of the same type.
"""

from __future__ import annotations

import json
import os
import random
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

__all__ = [
    "SPLIT_DIRS",
    "TASK_TYPES",
    "Game",
    "data_problem",
    "data_root",
    "find_games",
    "pool",
    "split_dir",
]

TASK_TYPES = (
    "pick_and_place_simple",
    "look_at_obj_in_light",
    "pick_clean_then_place_in_recep",
    "pick_heat_then_place_in_recep",
    "pick_cool_then_place_in_recep",
    "pick_two_obj_and_place",
)
SPLIT_DIRS = {"train": "train", "valid_seen": "valid_seen", "valid_unseen": "valid_unseen"}
DATASET = "json_2.1.1"
DOWNLOAD_HINT = "pip install 'alma-tui[alfworld]' && alfworld-download"

_GOAL = re.compile(r"Your task is to: ([^\"\n]+?)\.?\"")


@dataclass(frozen=True)
class Game:
    """One playable ALFWorld game."""

    path: Path  # the trial folder (holds game.tw-pddl)
    task_type: str
    goal: str  # the templated goal, e.g. "put a clean mug in coffeemachine"

    @property
    def game_file(self) -> Path:
        return self.path / "game.tw-pddl"


def data_root() -> Path:
    """``$ALFWORLD_DATA``, else alfworld's own default ``~/.cache/alfworld``."""
    return Path(os.environ.get("ALFWORLD_DATA") or Path.home() / ".cache" / "alfworld").expanduser()


def split_dir(name: str, root: Path | None = None) -> Path:
    return (root or data_root()) / DATASET / SPLIT_DIRS[name]


def _read_game(trial: Path) -> Game | None:
    """The Game in a trial folder, or None when alfworld would skip it."""
    traj, game = trial / "traj_data.json", trial / "game.tw-pddl"
    if "movable" in str(trial) or "Sliced" in str(trial) or not game.is_file():
        return None
    try:
        task_type = json.loads(traj.read_text()).get("task_type")
        data = json.loads(game.read_text())
        solvable, grammar = data.get("solvable"), str(data.get("grammar", ""))
    except (OSError, ValueError, AttributeError):
        return None
    if task_type not in TASK_TYPES or solvable is not True:
        return None
    m = _GOAL.search(grammar)
    return Game(trial, task_type, m.group(1).strip() if m else "")


def _trials(directory: Path) -> list[Path]:
    """Folders holding a traj_data.json, in a stable order (os.walk's is the file system's)."""
    out = [Path(root) for root, _dirs, files in os.walk(directory) if "traj_data.json" in files]
    return sorted(out)


@lru_cache(maxsize=8)
def find_games(directory: Path) -> tuple[Game, ...]:
    """Every playable game under ``directory`` (reads each game file once per process)."""
    return tuple(g for g in (_read_game(t) for t in _trials(directory)) if g is not None)


def _first_game(directory: Path) -> Game | None:
    for trial in _trials(directory):
        game = _read_game(trial)
        if game is not None:
            return game
    return None


def data_problem(test_set: str = "valid_seen") -> str | None:
    """None when both splits hold a playable game; else one line saying what to run and where
    the data goes. Reads at most a few files (cheap enough for ``alma-tui domains``)."""
    root = data_root()
    where = f"$ALFWORLD_DATA={root}" if os.environ.get("ALFWORLD_DATA") else f"{root} (set ALFWORLD_DATA to move it)"
    for split in ("train", test_set):
        directory = split_dir(split, root)
        if not directory.is_dir():
            return f"no ALFWorld data in {where}: run `{DOWNLOAD_HINT}` (it writes {DATASET}/ there)"
        if _first_game(directory) is None:
            return (
                f"no playable ALFWorld game in {directory} (each needs traj_data.json and a solvable "
                f"game.tw-pddl): run `{DOWNLOAD_HINT}` (data goes to {where})"
            )
    return None


def pool(games: tuple[Game, ...], seed: int) -> list[Game]:
    """The games in the seeded task-type-stratified order the module docstring describes."""
    by_type: dict[str, list[Game]] = {}
    for g in games:
        by_type.setdefault(g.task_type, []).append(g)
    rng = random.Random(f"alfworld:{seed}")
    queues = []
    for t in TASK_TYPES:
        group = list(by_type.get(t, []))
        rng.shuffle(group)
        queues.append(group)
    out: list[Game] = []
    while any(queues):
        for q in queues:
            if q:
                out.append(q.pop(0))
    return out
