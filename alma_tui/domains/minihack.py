"""``minihack`` domain: MiniHack (NetHack) tasks played by the real ``minihack``/``nle`` packages.

NLE 1.3 has no text observation and the old language wrapper pins nle 0.9, so we render
the text ourselves (:func:`render`) from what NLE gives every step:

- ``message``: the game's message line (prompts such as "What do you want to eat? [f or ?*]");
- ``chars``: the map, shown cropped around what has been seen, the agent as ``@``;
- ``screen_descriptions``: NetHack's own name of every visible thing ("staircase down",
  "apple", "open door"), listed with its position relative to the agent ("3 east, 2 south");
- ``inv_strs``: the inventory, with its letters.

Actions are words (``north`` ... ``northwest``, ``far east``, ``pick up``, ``eat``, ``wield``,
``wear``, ``put on``, ``pray``, ``kick``, ``open``, ``apply``, ``search``, ``down``...) mapped
to NLE's action ids of the task's own action set. While the game asks something, the
admissible list grows by the answers it accepts: ``y``/``n`` for a yes/no question and the
inventory letters it offers (``f``) for "What do you want to ...?"; NLE reads those as keys.

Task families (ALMA's use of MiniHack: navigation to search on, skills held out):

- ``train`` (the search): navigation. Rooms of 5x5 and 15x15 (plain, random start, dark,
  with traps), 9x9 mazes and corridors; the goal is the staircase down (``>``).
- ``test`` (held out): skills. Eat the food, pray, wield the weapon, wear the armour. Their
  goals say what to achieve, not which command does it, so which command (and answer)
  works is exactly what experience can teach.

Each task is an (environment id, seed) pair: train seeds are even, test seeds odd, and the
families differ, so the pools never overlap. A pool lists the families round-robin, each
with its own seeded seeds, so every prefix covers every family. The step limit is the
reference's 100.

``minihack``/``nle``/``gymnasium`` are imported on the first ``make_env``, never when the
domain is listed or its tasks are drawn.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any

from alma_tui.domains.base import StepResult, TaskSpec

__all__ = ["FAMILIES", "MAX_STEPS", "MiniHackDomain", "MiniHackEnv", "action_words", "render"]

MAX_STEPS = 100  # the ALMA reference's step limit for MiniHack


@dataclass(frozen=True)
class Family:
    env_id: str
    split: str
    goal: str


FAMILIES: tuple[Family, ...] = (
    Family("MiniHack-Room-5x5-v0", "train", "Go down the staircase (>) of this room."),
    Family("MiniHack-Room-Random-5x5-v0", "train", "Go down the staircase (>) of this room."),
    Family("MiniHack-Room-Dark-5x5-v0", "train", "Find the staircase down (>) in this dark room and go down it."),
    Family("MiniHack-Room-Trap-5x5-v0", "train", "Go down the staircase (>) of this room; mind the traps."),
    Family("MiniHack-Room-15x15-v0", "train", "Go down the staircase (>) of this large room."),
    Family("MiniHack-Room-Random-15x15-v0", "train", "Go down the staircase (>) of this large room."),
    Family("MiniHack-MazeWalk-9x9-v0", "train", "Find the staircase down (>) in this maze and go down it."),
    Family("MiniHack-Corridor-R2-v0", "train", "Find the staircase down (>) through the corridors and go down it."),
    Family("MiniHack-Eat-v0", "test", "You are hungry: there is food (%) in this room. Get it into your stomach."),
    Family("MiniHack-Pray-v0", "test", "Only your god can help you now. Ask for it at the altar (_)."),
    Family("MiniHack-Wield-v0", "test", "There is a weapon ()) in this room. Make it the weapon in your hands."),
    Family("MiniHack-Wear-v0", "test", "There is a piece of armour ([) in this room. Get it on your body."),
)

# word -> NLE action name (nethack.CompassDirection / CompassDirectionLonger / MiscDirection / Command)
_COMPASS = {
    "north": "N",
    "east": "E",
    "south": "S",
    "west": "W",
    "northeast": "NE",
    "southeast": "SE",
    "southwest": "SW",
    "northwest": "NW",
}
_COMMANDS = {
    "pick up": "PICKUP",
    "eat": "EAT",
    "wield": "WIELD",
    "wear": "WEAR",
    "put on": "PUTON",
    "take off": "TAKEOFF",
    "apply": "APPLY",
    "quaff": "QUAFF",
    "pray": "PRAY",
    "kick": "KICK",
    "open": "OPEN",
    "close": "CLOSE",
    "search": "SEARCH",
    "zap": "ZAP",
    "read": "READ",
    "drop": "DROP",
    "escape": "ESC",
}
_MISC = {"down": "DOWN", "up": "UP", "wait": "WAIT"}
_OFFER = re.compile(r"\[([a-zA-Z\- ]+?)(?: or \?\*)?\]")
_YES_NO = re.compile(r"\[(?:yn|ynq|ynaq)\]")
_DIRECTION = re.compile(r"in what direction\?", re.IGNORECASE)
_BORING = {"floor of a room", "dark part of a room", "wall", "corridor", "doorway", "stone", ""}
_LEGEND = "@ you, > stairs down, < stairs up, . floor, # corridor, | - walls, + door, % food, ) weapon, [ armour"


def _letters(spec: str) -> list[str]:
    """Inventory letters NetHack offers, e.g. "- abf" or "a-cf" -> a, b, c, f ("-" alone: bare hands)."""
    out: list[str] = []
    for token in spec.split():
        i = 0
        while i < len(token):
            if i + 2 < len(token) and token[i + 1] == "-":
                out += [chr(c) for c in range(ord(token[i]), ord(token[i + 2]) + 1)]
                i += 3
            else:
                if token[i].isalpha():
                    out.append(token[i])
                i += 1
    return out


def _text(row: Any) -> str:
    return bytes(row).split(b"\0", 1)[0].decode("latin-1").strip()


def _where(dx: int, dy: int) -> str:
    if dx == dy == 0:
        return "under you"
    parts = []
    if dx:
        parts.append(f"{abs(dx)} {'east' if dx > 0 else 'west'}")
    if dy:
        parts.append(f"{abs(dy)} {'south' if dy > 0 else 'north'}")
    return ", ".join(parts)


def render(obs: dict[str, Any]) -> str:
    """The text an agent sees: message, map, what is visible where, inventory."""
    message = _text(obs["message"])
    chars, desc = obs["chars"], obs["screen_descriptions"]
    x0, y0 = int(obs["blstats"][0]), int(obs["blstats"][1])
    rows = [bytes(r).decode("latin-1") for r in chars]
    seen = [(y, x) for y, r in enumerate(rows) for x, c in enumerate(r) if c != " "]
    lines = [f"Message: {message}" if message else "Message: (none)"]
    if seen:
        top, bottom = min(y for y, _ in seen), max(y for y, _ in seen)
        left, right = min(x for _, x in seen), max(x for _, x in seen)
        lines.append(f"Map (you are @; {_LEGEND}):")
        lines += [rows[y][left : right + 1].rstrip() for y in range(top, bottom + 1)]
    things: list[tuple[int, str]] = []
    for y, x in seen:
        name = _text(desc[y][x])
        if (y, x) == (y0, x0) or name in _BORING:
            continue
        things.append((abs(x - x0) + abs(y - y0), f"{name}: {_where(x - x0, y - y0)}"))
    under = _text(desc[y0][x0])
    if under and under not in ("human rogue", "human caveman") and not under.startswith(("human", "dwarf", "elf")):
        things.append((0, f"{under}: under you"))
    things.sort()
    lines.append("Visible: " + ("; ".join(t for _, t in things[:20]) if things else "nothing of note"))
    inv = [_text(r) for r in obs["inv_strs"]]
    letters = [chr(c) for c in obs["inv_letters"]] if "inv_letters" in obs else []
    items = [f"{letters[i]}: {s}" if i < len(letters) and letters[i] != "\0" else s for i, s in enumerate(inv) if s]
    lines.append("Inventory: " + ("; ".join(items) if items else "nothing"))
    return "\n".join(lines)


def action_words(actions: tuple[Any, ...], message: str) -> dict[str, int]:
    """Admissible action words -> index into the env's action set, for this step's message."""
    index: dict[str, int] = {}
    names = {a.name: i for i, a in enumerate(actions) if type(a).__name__ in ("CompassDirection", "MiscDirection")}
    longer = {a.name: i for i, a in enumerate(actions) if type(a).__name__ == "CompassDirectionLonger"}
    commands = {a.name: i for i, a in enumerate(actions) if type(a).__name__ == "Command"}
    for word, name in _COMPASS.items():
        if name in names:
            index[word] = names[name]
    for word, name in _COMPASS.items():
        if name in longer:
            index[f"far {word}"] = longer[name]
    for word, name in _MISC.items():
        if name in names:
            index[word] = names[name]
    for word, name in _COMMANDS.items():
        if name in commands:
            index[word] = commands[name]
    by_key = {int(a): i for i, a in enumerate(actions)}
    answers: list[str] = []
    if _YES_NO.search(message):
        answers = ["y", "n"]
    else:
        offer = _OFFER.search(message)
        if offer and "?" in message:
            answers = _letters(offer.group(1))
    for letter in answers:
        if ord(letter) in by_key:
            index[letter] = by_key[ord(letter)]
    return index


class MiniHackEnv:
    """One episode of one MiniHack task (implements ``domains.base.Env``)."""

    def __init__(self, task: TaskSpec, max_steps: int = MAX_STEPS) -> None:
        import gymnasium as gym
        import minihack  # noqa: F401  (registers the MiniHack-* ids)

        self.task = task
        self.goal = task.goal
        self.max_steps = max_steps
        keys = ("chars", "screen_descriptions", "message", "inv_strs", "inv_letters", "blstats")
        make: Any = gym.make  # gymnasium's Env type has no NLE attributes (actions, StepStatus)
        self._env: Any = make(task.meta["env_id"], observation_keys=keys, max_episode_steps=max_steps)
        self._actions: tuple[Any, ...] = tuple(self._env.unwrapped.actions)
        self._words: dict[str, int] = {}
        self.steps = 0
        self.won = False
        self.done = False

    def _observe(self, obs: dict[str, Any]) -> str:
        self._words = action_words(self._actions, _text(obs["message"]))
        return render(obs)

    def reset(self) -> str:
        obs, _info = self._env.reset(seed=self.task.seed)
        self.steps, self.won, self.done = 0, False, False
        return f"Your task: {self.goal}\n{self._observe(obs)}"

    def admissible_actions(self) -> list[str]:
        return list(self._words)

    def step(self, action: str) -> StepResult:
        if self.done:
            return StepResult("The episode is over.", 0.0, True, self.won)
        word = " ".join(action.strip().lower().split())
        self.steps += 1
        if word not in self._words:
            self.done = self.steps >= self.max_steps
            return StepResult("Nothing happens.", 0.0, self.done, False)
        obs, _reward, terminated, truncated, info = self._env.step(self._words[word])
        status: Any = info.get("end_status")
        success: Any = self._env.unwrapped.StepStatus.TASK_SUCCESSFUL
        self.won = bool(terminated) and status is not None and int(status) == int(success)
        self.done = bool(terminated or truncated) or self.steps >= self.max_steps
        text = self._observe(obs)
        if self.done and not self.won:
            text += "\nThe episode ended without success."
        return StepResult(text, 1.0 if self.won else 0.0, self.done, self.won)

    def score(self) -> float:
        return 1.0 if self.won else 0.0

    def close(self) -> None:
        self._env.close()


INSTRUCTIONS = (
    "You are playing MiniHack, a small NetHack level. Each turn you see the message line, the map "
    "(you are @), what is visible with its position relative to you, and your inventory, then the "
    "admissible actions. Reply with exactly one admissible action, copied verbatim, and nothing else. "
    "Moving into a monster attacks it. When the game asks a question, answer with one of the offered "
    "letters (y/n, or an inventory letter). You have at most 100 actions."
)


class MiniHackDomain:
    """The ``minihack`` domain (implements ``domains.base.Domain``)."""

    name = "minihack"
    description = "MiniHack (NetHack) navigation and skill tasks, rendered as text"
    instructions = INSTRUCTIONS
    offline_policy = "alma_tui.offline.minihack_policy:choose_action"

    def __init__(self, max_steps: int = MAX_STEPS) -> None:
        self.max_steps = max_steps

    def requirements(self) -> str | None:
        import importlib.util

        missing = [p for p in ("minihack", "nle", "gymnasium") if importlib.util.find_spec(p) is None]
        return f"needs {', '.join(missing)}: pip install 'alma-tui[minihack]'" if missing else None

    def tasks(self, split: str, seed: int, n: int | None = None) -> list[TaskSpec]:
        """``n`` tasks (default 40) of a split: families round-robin, seeds drawn per family
        (even for train, odd for test); a list for ``n`` is a prefix of the one for ``n + k``."""
        if split not in ("train", "test"):
            raise ValueError(f"unknown split {split!r}; use 'train' or 'test'")
        n = 40 if n is None else n
        fams = [f for f in FAMILIES if f.split == split]
        rngs = [random.Random(f"minihack:{split}:{seed}:{f.env_id}") for f in fams]
        used: set[tuple[str, int]] = set()
        out: list[TaskSpec] = []
        parity = 0 if split == "train" else 1
        while len(out) < n:
            for fam, rng in zip(fams, rngs, strict=True):
                if len(out) >= n:
                    break
                while True:
                    s = 2 * rng.randrange(1_000_000) + parity
                    if (fam.env_id, s) not in used:
                        used.add((fam.env_id, s))
                        break
                family = fam.env_id.removeprefix("MiniHack-").removesuffix("-v0")
                meta = {"env_id": fam.env_id, "family": family}
                out.append(TaskSpec(f"minihack-{family}-{s}", fam.goal, split, s, meta))
        return out

    def make_env(self, task: TaskSpec) -> MiniHackEnv:
        return MiniHackEnv(task, self.max_steps)
