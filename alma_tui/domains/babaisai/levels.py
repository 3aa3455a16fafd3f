"""Seeded procedural Baba Is AI levels, in the benchmark's families.

Families (the benchmark's names; two-room levels split the map with a wall column that
``WALL IS STOP`` makes solid):

- ``goto_win``: ``BABA IS YOU`` and ``<noun> IS WIN`` hold; walk to the win object;
- ``make_win``: ``<noun> IS`` lacks its property; push ``WIN`` into place, then walk there;
- ``you_win``: a second ``BABA IS`` lacks its property; push ``WIN`` into place (baba wins);
- ``break_stop``: the win object is behind a solid wall; push a word of ``WALL IS STOP`` out
  of line, then walk through;
- ``make_you``: the win object is behind a solid wall, next to another object; form
  ``<that object> IS YOU`` with a spare ``YOU`` word, then move it onto the win object;
- ``two_room-goto_win`` / ``two_room-make_win``: as above, with a gap in the wall.

A family always uses the same objects (placed anew in each level), so its levels are
siblings whose solutions transfer. Each level also has distractor objects and distractor
rules: ``PUSH``/``STOP``/``DEFEAT`` on the distractor object and (where a noun is left
over) a ``<noun> IS`` fragment for a noun with no object, so some rule changes the board
allows are useless.
A level is kept only when the BFS solver proves it solvable in at most
:data:`SOLVE_LIMIT` moves (the step limit minus some slack), for the goto families without
changing a rule, for the rule families not without one but by the family's own change
(:func:`intended_change`, then a walk); its optimal solution is stored with it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache

from alma_tui.domains.babaisai.engine import Game, Item, Level
from alma_tui.domains.babaisai.solver import search

__all__ = ["FAMILIES", "MAX_STEPS", "SOLVE_LIMIT", "GeneratedLevel", "family_of", "generate_level", "intended_change"]

MAX_STEPS = 20  # the benchmark's step limit (ALMA's setup)
SOLVE_LIMIT = 16  # generated levels are solvable in this many moves, leaving slack
MIN_STEPS = 3  # and need at least this many
_GEN_NODES = 6_000  # the generator's search budget per level: keeps levels (and solving) quick
FAMILIES = (
    "goto_win",
    "make_win",
    "you_win",
    "break_stop",
    "make_you",
    "two_room-goto_win",
    "two_room-make_win",
)
_WALK_FAMILIES = {"goto_win", "two_room-goto_win"}
_THINGS = ("ball", "door", "key")
_COLORS = ("red", "green", "blue", "purple", "yellow")
_ATTEMPTS = 400
# each family's objects (win object, other object, distractor): fixed, so a family's levels
# are siblings, and chosen so that families whose rules look alike use different objects
_THEMES = {
    "goto_win": ("key", "ball", "door"),
    "make_win": ("ball", "key", "door"),
    "you_win": ("ball", "key", "door"),
    "break_stop": ("ball", "key", "door"),
    "make_you": ("key", "ball", "door"),
    "two_room-goto_win": ("door", "ball", "key"),
    "two_room-make_win": ("key", "door", "ball"),
}


@dataclass(frozen=True)
class GeneratedLevel:
    level: Level
    solution: tuple[str, ...]  # an optimal winning action sequence

    @property
    def optimal_steps(self) -> int:
        return len(self.solution)


def family_of(seed: int) -> str:
    """A task seed's family (seeds cycle through the families, so pools are balanced)."""
    return FAMILIES[(seed // 2) % len(FAMILIES)]


class _Board:
    """Placement bookkeeping for one attempt."""

    def __init__(self, rng: random.Random, width: int, height: int) -> None:
        self.rng, self.w, self.h = rng, width, height
        self.items: list[Item] = []
        self.used: set[tuple[int, int]] = set()
        self.rules: list[tuple[str, str]] = []  # the complete rules placed, to check none formed by accident

    def free(self, xs: range, ys: range) -> tuple[int, int]:
        cells = [(x, y) for x in xs for y in ys if (x, y) not in self.used]
        if not cells:
            raise _Retry
        return self.rng.choice(cells)

    def put(self, kind: str, x: int, y: int, color: str = "") -> None:
        if (x, y) in self.used:
            raise _Retry
        self.used.add((x, y))
        self.items.append(Item(kind, x, y, color))

    def obj(self, kind: str, xs: range, ys: range) -> None:
        color = "white" if kind == "baba" else "grey" if kind == "wall" else self.rng.choice(_COLORS)
        self.put(kind, *self.free(xs, ys), color)

    def words(self, words: tuple[str, ...], xs: range, ys: range) -> None:
        """Words in a horizontal line inside ``xs`` x ``ys``, followed by a free cell unless the
        line ends at the room's side (room for a missing word)."""
        n = len(words)
        starts = [
            (x, y)
            for x in xs
            for y in ys
            if x + n <= xs.stop
            and all((x + i, y) not in self.used for i in range(n))
            and (x + n >= xs.stop or (x + n, y) not in self.used)
        ]
        if not starts:
            raise _Retry
        x, y = self.rng.choice(starts)
        for i, word in enumerate(words):
            self.put(word, x + i, y)
        if len(words) == 3:
            self.rules.append((words[0].lower(), words[2].lower()))
        self.last = (x, y)

    def missing(self, word: str, room: range) -> None:
        """Place the word that completes the fragment just placed (``N IS _``) one or two cells
        from the empty cell it belongs in, in a straight line with free cells up to it and a free
        cell behind it to push from: a short, solvable puzzle (the solver still checks)."""
        x, y = self.last
        tx, ty = x + 2, y
        options = []
        for dx, dy in ((1, 0), (0, 1), (0, -1)):
            for k in (1, 2):
                line = [(tx + i * dx, ty + i * dy) for i in range(k + 2)]  # target .. word .. behind
                if all(cx in room and 0 <= cy < self.h and (cx, cy) not in self.used for cx, cy in line):
                    options.append(line[k])
        if not options:
            raise _Retry
        self.put(word, *self.rng.choice(options))


class _Retry(Exception):
    pass


def _build(rng: random.Random, family: str) -> Level:
    two_room = family in ("break_stop", "make_you") or family.startswith("two_room")
    w, h = (10, 7) if two_room else (7, 7)
    b = _Board(rng, w, h)
    win_noun, other, spare = _THEMES[family]
    left = range(0, 5) if two_room else range(w)
    right = range(6, 10) if two_room else range(w)
    if two_room:
        gap = rng.randrange(h) if family.startswith("two_room") else None
        for y in range(h):
            if y != gap:
                b.put("wall", 5, y, "grey")
    b.obj("baba", left, range(h))
    b.words(("BABA", "IS", "YOU"), left, range(h))
    if two_room:
        b.words(("WALL", "IS", "STOP"), left, range(h))
    if family in ("goto_win", "break_stop", "two_room-goto_win", "make_you"):
        b.words((win_noun.upper(), "IS", "WIN"), left, range(h))
    elif family in ("make_win", "two_room-make_win"):
        b.words((win_noun.upper(), "IS"), left, range(h))
        b.missing("WIN", left)
    elif family == "you_win":
        b.words(("BABA", "IS"), left, range(h))
        b.missing("WIN", left)
    if family != "you_win":
        b.obj(win_noun, right, range(h))
    if family == "make_you":
        b.words((other.upper(), "IS"), left, range(h))
        b.missing("YOU", left)
        b.obj(other, right, range(h))
    # distractors: objects anywhere, a rule on them and a rule fragment for an absent noun,
    # so that some rule changes the board allows are useless (as in the benchmark)
    distractor = spare
    on_board = {win_noun, distractor, "wall" if two_room else "baba", other if family == "make_you" else "baba"}
    absent = [t for t in (*_THINGS, "wall") if t not in on_board]
    for _ in range(rng.randint(1, 2)):
        b.obj(distractor, range(w), range(h))
    kind = "both" if absent else "property"
    if kind in ("property", "both"):
        b.words((distractor.upper(), "IS", rng.choice(("PUSH", "STOP", "DEFEAT"))), left, range(h))
    if kind in ("fragment", "both"):
        b.words((rng.choice(absent).upper(), "IS"), left, range(h))
    level = Level(w, h, tuple(b.items), family)
    if sorted(Game(level).rules) != sorted(b.rules):
        raise _Retry  # words that line up by accident would change the puzzle
    return level


def intended_change(family: str) -> tuple[str, str, str] | None:
    """The rule change a family is about: ("form" | "break", noun, property), None for goto."""
    win_noun, other, _ = _THEMES[family]
    return {
        "make_win": ("form", win_noun, "win"),
        "two_room-make_win": ("form", win_noun, "win"),
        "you_win": ("form", "baba", "win"),
        "break_stop": ("break", "wall", "stop"),
        "make_you": ("form", other, "you"),
    }.get(family)


def _family_way(game: Game, family: str) -> bool:
    """Can the level be won the family's way within the limit: make its rule change (keeping
    the WIN and YOU rules), then walk to a WIN object without changing a rule? So a family's
    levels really are siblings: what solved one solves the others."""
    change = intended_change(family)
    if change is None:
        return True
    op, noun, prop = change
    keep = {r for r in game.rules if r[1] in ("win", "you")}

    def made(g: Game) -> bool:
        active = (noun, prop) in g.rules
        return (active if op == "form" else not active) and keep <= set(g.rules)

    first = search(game, made, SOLVE_LIMIT, max_nodes=_GEN_NODES)
    if first is None:
        return False
    after = game.copy()
    for move in first:
        after.step(move)
    if after.won:
        return True
    rest = search(after, lambda g: g.won, SOLVE_LIMIT - len(first), _GEN_NODES, lambda o: not o.rules_changed)
    return rest is not None


def _valid(level: Level) -> tuple[str, ...] | None:
    game = Game(level)
    if game.won or game.lost:
        return None
    path = search(game, lambda g: g.won, SOLVE_LIMIT, max_nodes=_GEN_NODES)
    if path is None or len(path) < MIN_STEPS:
        return None
    walk = search(game, lambda g: g.won, SOLVE_LIMIT, max_nodes=_GEN_NODES, allow=lambda o: not o.rules_changed)
    if (walk is not None) != (level.family in _WALK_FAMILIES):
        return None  # a goto level must need no rule change; a rule level must need one
    if not _family_way(game, level.family):
        return None
    return tuple(path)


@lru_cache(maxsize=512)
def generate_level(seed: int, family: str | None = None) -> GeneratedLevel:
    """The level of a task seed (deterministic; family from :func:`family_of` unless given)."""
    family = family or family_of(seed)
    if family not in FAMILIES:
        raise ValueError(f"unknown Baba Is AI family {family!r}; known: {', '.join(FAMILIES)}")
    rng = random.Random(f"babaisai:{family}:{seed}")
    for _ in range(_ATTEMPTS):
        try:
            level = _build(rng, family)
        except _Retry:
            continue
        solution = _valid(level)
        if solution is not None:
            return GeneratedLevel(level, solution)
    raise RuntimeError(f"no solvable {family} level for seed {seed} in {_ATTEMPTS} attempts")
