"""``textworld``: treasure-hunt quests in TextWorld games generated locally (``alma-tui[textworld]``).

Why this shape. The paper's TextWorld families (cooking, treasure hunter) let memory
matter because their tasks share structure. Here the structure is explicit: a
**world** is one map of TextWorld's own generator (``make_map`` + ``populate``: 40 rooms
joined by exits, 90 things drawn mostly as containers, plus supporters, keys, food and other
portable objects, names from its grammar), and every world holds several **quests**: "find
the X and take it", where X is the world's treasure (``targets`` objects per world, 1 by
default), each quest starting from another room (``starts`` rooms, 8 by default, each at
least ``min_distance`` = 6 moves from the treasure's room). A quest is compiled as its own
game (TextWorld's Inform 7 compiler), so reward and success are TextWorld's own
(score / max_score, ``won``).

What memory has to offer, and why exploring is not enough. The treasure always lies inside
a closed container, and every container of the world is closed (41 on average in 40
rooms), so it is never seen from the room: each container costs a step to open, each room
at least one move to reach and often one to leave. Searching a world exhaustively takes
well over the 80-step limit; the agent without memory finds the treasure only when its
search order happens to reach it early (65.6% of held-out quests, README). Quests of one
world share the map, the room names and where every object lies, so an episode of that
world tells the agent which room and which container hold the treasure and how the rooms
connect; a later quest in that world, from another room, can walk there by the remembered
map and open the right container. Room and object names repeat across worlds, so memory of
another world can mislead.

Why these numbers. Generator version 2 (80 things, 27 containers, quests 4 moves away) let
the agent without memory find the treasure in 87.5% of held-out quests, which left memory
almost nothing to add; more rooms or things than this no longer fit a ``.z8`` story file
(60 rooms and 120 things fail to compile), so the search is made costly by containers and
distance instead.

The goal is said, not walked through: TextWorld's generated objectives narrate the
walkthrough ("First off, travel west. ..."), which would leave nothing to learn (and the
reference, the other way round, removed the goal altogether). Ours is one line,
``Your task is to: find the <object> and take it.``, at the end of the first observation.

Pools. ``train`` and ``test`` use disjoint worlds (world seeds ``BASE_SEED + 2i`` and
``BASE_SEED + 2i + 1``), each ``worlds`` worlds x ``quests`` quests; ``tasks(split, seed,
n)`` returns the split's pool shuffled by ``seed`` (so every seed draws from the same
cached games). The evaluator splits what it gets into collection and deployment, so
deployment quests meet collection quests of the same worlds (8 worlds x 8 quests per split:
with 32 collection quests, about four per world).

Games are generated once and cached under the user's cache directory
(``platformdirs.user_cache_dir("alma-tui")/textworld/<options hash>/``), keyed by every
generator option and the world seed; a second run loads them. Generation reports
progress through ``prepare(progress)`` (the engine and ``eval`` call it before the
first task).

Observations are cleaned: the ASCII banner, TextWorld's own objective paragraph, the
trailing ``>`` prompt and the status line are removed. Admissible commands come from
TextWorld's ``EnvInfos``. The step limit is the reference's 80.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import random
import re
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alma_tui.domains.base import StepResult, TaskSpec

__all__ = ["BASE_SEED", "MAX_STEPS", "TextWorldDomain", "TextWorldEnv", "clean_observation"]

MAX_STEPS = 80  # the reference's TextWorld step limit (ALMA.md)
BASE_SEED = 7100
GENERATOR_VERSION = 3  # bump when the generation below changes: it is part of the cache key
INSTALL_HINT = 'pip install "alma-tui[textworld]"'

INSTRUCTIONS = (
    "You are an agent in a text adventure. Each turn you see an observation and the list of "
    "admissible commands. Reply with exactly one admissible command, copied verbatim, and nothing "
    "else. Rooms connect through exits (go north/south/east/west); closed containers must be "
    "opened to see what is inside. Your task is given at the end of the first observation. You "
    "have a limited number of steps, and you only see your recent steps."
)

Progress = Callable[[str], None]


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- observation cleaning --------------------------------------------------------------------------
_ROOM = re.compile(r"^-=\s*.+?\s*=-\s*$", re.MULTILINE)
_END = "*** The End ***"


def clean_observation(text: str, initial: bool = False) -> str:
    """TextWorld's feedback without the banner, the objective paragraph (initial), the
    ``>`` prompt and the status line, with blank runs collapsed."""
    text = text.replace("\r", "")
    if initial:
        m = _ROOM.search(text)
        if m:  # banner and objective come before the first room header
            text = text[m.start() :]
    if _END in text:
        text = text[: text.index(_END) + len(_END)]
    else:
        prompt = re.search(r"\n>\s*", text)
        if prompt:  # the prompt and the right-aligned status line after it
            text = text[: prompt.start()]
    lines = [ln.rstrip() for ln in text.strip().splitlines()]
    out: list[str] = []
    for ln in lines:
        if not ln and out and not out[-1]:
            continue
        out.append(ln.strip())
    return "\n".join(out).strip()


# -- generation ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GenOptions:
    """Everything that decides a game besides the world seed (all of it in the cache key)."""

    rooms: int = 40
    objects: int = 90
    targets: int = 1  # target objects per world (the world's "treasure")
    starts: int = 8  # starting rooms per world; quests = targets x starts
    min_distance: int = 6  # fewest moves from a quest's start to the treasure's room

    def key(self) -> str:
        raw = json.dumps({"v": GENERATOR_VERSION, **self.__dict__}, sort_keys=True)
        return hashlib.sha256(raw.encode()).hexdigest()[:12]


# What ``populate`` draws, by TextWorld type: containers (c) are the costly thing to search
# (every one is closed, one step to open), supporters (s) show what lies on them, keys (k),
# food (f) and other portable objects (o) are the distractors among which the treasure hides.
OBJECT_TYPES = {"c": 0.55, "s": 0.1, "o": 0.2, "f": 0.05, "k": 0.1}


def _build_world(world_seed: int, opts: GenOptions) -> Any:
    """TextWorld world for a seed: map without doors, objects placed by ``populate`` (mostly
    containers); objects it puts in the inventory go to a room, and every container is closed
    but not locked (a quest is solvable by exploring, but each container costs a step)."""
    from numpy.random import RandomState
    from textworld.generator import World, make_map
    from textworld.logic import Proposition

    m = make_map(n_rooms=opts.rooms, rng=RandomState(world_seed), possible_door_states=None)
    world = World.from_map(m)
    rooms = sorted(world.rooms, key=lambda r: r.id)
    world.set_player_room(rooms[0])
    world.populate(opts.objects, rng=RandomState(world_seed + 1), object_types_probs=OBJECT_TYPES)
    portable = [e for e in world.objects if _is(world, e.name, "o") and not _is(world, e.name, "k")]
    if len(portable) < opts.targets + 2:  # small worlds: the draw may leave too few to hide treasures in
        world.populate(
            opts.targets + 2 - len(portable),
            rng=RandomState(world_seed + 4),
            object_types_probs={**dict.fromkeys(OBJECT_TYPES, 0.0), "o": 1.0},
        )
    rng = RandomState(world_seed + 2)
    for fact in list(world.facts):
        if fact.name == "in" and fact.arguments[1].name == "I":
            world.state.remove_fact(fact)
            world.add_fact(Proposition("at", [fact.arguments[0], rooms[int(rng.randint(len(rooms)))]]))
        elif fact.name in ("locked", "open") and world.kb.types.is_descendant_of(fact.arguments[0].type, "c"):
            world.state.remove_fact(fact)
            world.add_fact(Proposition("closed", [fact.arguments[0]]))
    _hide_enough(world, opts.targets + 2, rng)
    return world


def _is(world: Any, name: str, kind: str) -> bool:
    return bool(world.kb.types.is_descendant_of(world.find_object_by_id(name).type, kind))


def _hidden(world: Any) -> list[str]:
    """Portable objects (keys aside) inside a container, in a fixed order."""
    return sorted(
        f.arguments[0].name
        for f in world.facts
        if f.name == "in"
        and f.arguments[1].name != "I"
        and _is(world, f.arguments[1].name, "c")
        and _is(world, f.arguments[0].name, "o")
        and not _is(world, f.arguments[0].name, "k")
    )


def _hide_enough(world: Any, count: int, rng: Any) -> None:
    """Move portable objects lying in the open into containers until ``count`` are hidden
    (``populate`` may leave too few, and a treasure must be inside something)."""
    from textworld.logic import Proposition

    containers = sorted(e.name for e in world.objects if _is(world, e.name, "c"))
    if not containers:
        return
    loose = sorted(
        (f for f in world.facts if f.name in ("at", "on") and _is(world, f.arguments[0].name, "o")),
        key=lambda f: f.arguments[0].name,
    )
    loose = [f for f in loose if not _is(world, f.arguments[0].name, "k")]
    for fact in loose[: max(0, count - len(_hidden(world)))]:
        world.state.remove_fact(fact)
        box = world.find_object_by_id(containers[int(rng.randint(len(containers)))])
        world.add_fact(Proposition("in", [fact.arguments[0], box]))


def _distances(world: Any, source: str) -> dict[str, int]:
    """Moves from room ``source`` to every room (BFS over the map's exits)."""
    exits = {r.name: [x.name for x in r.exits.values()] for r in world.rooms}
    dist = {source: 0}
    queue = [source]
    for room in queue:
        for nxt in exits.get(room, []):
            if nxt not in dist:
                dist[nxt] = dist[room] + 1
                queue.append(nxt)
    return dist


def _quests(world_seed: int, opts: GenOptions) -> list[tuple[str, str]]:
    """(target object id, start room id) of each quest of a world, in a fixed order.

    The treasure is a portable object inside a closed container (so it is never seen from
    the room; in a world without containers, any portable object); each quest starts at
    least ``min_distance`` moves from the treasure's room (the farthest rooms when too few
    are that far)."""
    world = _build_world(world_seed, opts)
    holder = {f.arguments[0].name: f.arguments[1].name for f in world.facts if f.name in ("in", "on")}
    room_of = {f.arguments[0].name: f.arguments[1].name for f in world.facts if f.name == "at"}
    hidden = [name for name in _hidden(world) if holder[name] in room_of]
    if len(hidden) < opts.targets:  # a world without containers (tiny test worlds): objects in view
        hidden += sorted(
            name
            for name in {*room_of, *holder}
            if name not in hidden
            and (room_of.get(name) or room_of.get(holder.get(name, ""))) not in (None, "I")
            and _is(world, name, "o")
            and not _is(world, name, "k")
            and name != "P"
        )
    rng = random.Random(f"quests:{world_seed}")
    out: list[tuple[str, str]] = []
    for target in rng.sample(hidden, min(opts.targets, len(hidden))):
        dist = _distances(world, room_of.get(target) or room_of[holder[target]])
        far = sorted(r for r, d in dist.items() if d >= opts.min_distance)
        if len(far) < opts.starts:
            far = sorted(dist, key=lambda r: (-dist[r], r))[: opts.starts]
        out += [(target, s) for s in rng.sample(far, opts.starts)]
    return out


def _make_game(world_seed: int, target: str, start: str, opts: GenOptions) -> tuple[Any, str]:
    """The compiled-to-be Game of one quest and its goal line."""
    from numpy.random import RandomState
    from textworld.generator import make_game_with, make_grammar
    from textworld.generator.game import Event, Quest
    from textworld.logic import Proposition

    world = _build_world(world_seed, opts)
    for fact in list(world.facts):
        if fact.name == "at" and fact.arguments[0].name == "P":
            world.state.remove_fact(fact)
    world.set_player_room(start)
    obj = next(e for e in world.objects if e.name == target)
    quest = Quest(win_events=[Event(conditions={Proposition("in", [obj, world.inventory])})])
    # one grammar seed per world: the same names for rooms and objects in all its quests
    grammar = make_grammar({}, rng=RandomState(world_seed + 3))
    game = make_game_with(world, [quest], grammar)
    name = game.infos[obj.id].name
    goal = f"find the {name} and take it"
    game.objective = f"Your task is to: {goal}."
    game.metadata["uuid"] = f"alma-tw-{opts.key()}-{world_seed}-{target}-{start}"
    return game, goal


def default_cache_dir() -> Path:
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("alma-tui")) / "textworld"


# TextWorld keeps global state: its logic parser (tatsu) fails when two threads load games at
# once, and its generator shares RNGs. The evaluator runs episodes in threads, so every call
# into TextWorld holds this lock (a step takes ~10 ms; the acting agent runs outside it).
_TW_LOCK = threading.RLock()


class TextWorldDomain:
    name = "textworld"
    description = "TextWorld treasure-hunt quests in shared generated worlds (local generation, cached)"
    instructions = INSTRUCTIONS
    max_steps = MAX_STEPS

    def __init__(
        self,
        worlds: int = 8,
        rooms: int | None = None,
        objects: int | None = None,
        targets: int | None = None,
        starts: int | None = None,
        cache_dir: str | Path | None = None,
    ) -> None:
        base = GenOptions()
        self.options = GenOptions(
            rooms=rooms or base.rooms,
            objects=objects or base.objects,
            targets=targets or base.targets,
            starts=starts or base.starts,
        )
        self.worlds = worlds
        self._cache_root = Path(cache_dir) if cache_dir else None
        self._pools: dict[str, list[TaskSpec]] = {}
        self.progress: Progress = _stderr

    # -- the Domain protocol ------------------------------------------------------------------
    def requirements(self) -> str | None:
        if importlib.util.find_spec("textworld") is None:
            return f"needs textworld: {INSTALL_HINT}"
        return None

    @property
    def cache_dir(self) -> Path:
        return (self._cache_root or default_cache_dir()) / self.options.key()

    def prepare(self, progress: Progress | None = None) -> None:
        """Generate (or load from the cache) both splits' games, reporting each new one."""
        if progress is not None:
            self.progress = progress
        for split in ("train", "test"):
            self._pool(split)

    def tasks(self, split: str, seed: int, n: int | None = None) -> list[TaskSpec]:
        if split not in ("train", "test"):
            raise ValueError(f"unknown split {split!r} (train or test)")
        pool = list(self._pool(split))
        random.Random(f"textworld:{split}:{seed}").shuffle(pool)
        return pool[:n] if n is not None else pool

    def make_env(self, task: TaskSpec) -> TextWorldEnv:
        return TextWorldEnv(task.meta["path"], task.goal)

    # -- pools and the cache ------------------------------------------------------------------
    def _world_seeds(self, split: str) -> list[int]:
        offset = 0 if split == "train" else 1
        return [BASE_SEED + 2 * i + offset for i in range(self.worlds)]

    def _pool(self, split: str) -> list[TaskSpec]:
        if split in self._pools:
            return self._pools[split]
        specs: list[TaskSpec] = []
        todo: list[tuple[int, int, str, str]] = []
        folder = self.cache_dir
        for w in self._world_seeds(split):
            index = folder / f"world-{w}.json"
            quests = json.loads(index.read_text()) if index.is_file() else None
            if quests is None:
                quests = [list(q) for q in _quests(w, self.options)]
                folder.mkdir(parents=True, exist_ok=True)
                _atomic_write(index, json.dumps(quests))
            for q, (target, start) in enumerate(quests):
                todo.append((w, q, target, start))
        missing = [t for t in todo if not self._meta_path(*t[:2]).is_file()]
        started = time.perf_counter()
        for i, (w, q, target, start) in enumerate(missing, 1):
            t0 = time.perf_counter()
            self._generate(w, q, target, start)
            self.progress(
                f"textworld: generated {split} game {i}/{len(missing)} (world {w}, quest {q}) "
                f"in {time.perf_counter() - t0:.1f}s"
            )
        if missing:
            self.progress(
                f"textworld: {len(missing)} {split} games generated in {time.perf_counter() - started:.0f}s, "
                f"cached in {folder}"
            )
        for w, q, _target, _start in todo:
            meta = json.loads(self._meta_path(w, q).read_text())
            specs.append(
                TaskSpec(
                    task_id=f"tw-w{w}-q{q}",
                    goal=meta["goal"],
                    split=split,
                    seed=w * 100 + q,
                    meta={"path": str(folder / meta["file"]), "world": w, "quest": q},
                )
            )
        self._pools[split] = specs
        return specs

    def _meta_path(self, world: int, quest: int) -> Path:
        return self.cache_dir / f"w{world}-q{quest}.task.json"

    def _generate(self, world: int, quest: int, target: str, start: str) -> None:
        from textworld.generator import compile_game
        from textworld.generator.game import GameOptions

        folder = self.cache_dir
        folder.mkdir(parents=True, exist_ok=True)
        stem = f"w{world}-q{quest}"
        with _TW_LOCK, tempfile.TemporaryDirectory(dir=folder, prefix=".gen-") as tmp:
            game, goal = _make_game(world, target, start, self.options)
            opts = GameOptions()
            opts.path = str(Path(tmp) / f"{stem}.z8")
            opts.force_recompile = True
            built = Path(compile_game(game, opts))
            for suffix in (".json", ".z8"):  # the game first, the task file last: it marks completion
                os.replace(built.with_suffix(suffix), folder / f"{stem}{suffix}")
        meta = {"goal": goal, "file": f"{stem}.z8", "world": world, "quest": quest, "target": target, "start": start}
        _atomic_write(self._meta_path(world, quest), json.dumps(meta))


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class TextWorldEnv:
    """One episode of one compiled quest, through TextWorld's own environment."""

    def __init__(self, path: str, goal: str) -> None:
        self.path = path
        self.goal = goal
        self._env: Any = None
        self._state: Any = None
        self._initial: str | None = None
        self._score = 0.0
        self._max = 1.0

    def _start(self) -> Any:
        import textworld

        if not Path(self.path).is_file():
            raise FileNotFoundError(f"TextWorld game {self.path} is missing (its cache was removed?)")
        infos = textworld.EnvInfos(admissible_commands=True, max_score=True, score=True, won=True, lost=True)
        return textworld.start(self.path, request_infos=infos)

    def reset(self) -> str:
        if self._initial is not None and self._score == 0.0 and self._steps == 0:
            return self._initial  # nothing happened since the last reset: the same start
        with _TW_LOCK:
            if self._env is None:
                self._env = self._start()
            self._state = self._env.reset()
        self._steps = 0
        self._score = 0.0
        self._max = float(self._state.max_score or 1)
        room = clean_observation(self._state.feedback, initial=True)
        self._initial = f"{room}\n\nYour task is to: {self.goal}."
        return self._initial

    _steps = 0

    def step(self, action: str) -> StepResult:
        if self._state is None:
            self.reset()
        with _TW_LOCK:
            self._state, _reward, done = self._env.step(action)
        self._steps += 1
        before, self._score = self._score, float(self._state.score or 0)
        obs = clean_observation(self._state.feedback) or "Nothing happens."
        won = bool(self._state.won)
        if done:
            self.close()
        return StepResult(obs, (self._score - before) / self._max, bool(done or won), won)

    def admissible_actions(self) -> list[str]:
        if self._state is None:
            return []
        return sorted(self._state.admissible_commands or [])

    def score(self) -> float:
        return self._score / self._max

    def close(self) -> None:
        if self._env is not None:
            with _TW_LOCK:
                self._env.close()
            self._env = None

    def __del__(self) -> None:  # the evaluator drops envs that hit the step limit without closing them
        with contextlib.suppress(Exception):
            self.close()
