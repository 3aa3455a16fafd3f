"""The Baba Is AI rules engine: a grid of objects and word tiles whose rules are the words.

Why our own: Baba Is AI (Cloos et al. 2024) is not on PyPI and its original code renders
images; this is a pure-Python re-implementation of its rules, small and fast enough for a
breadth-first solver (>= 20,000 steps/s, ``benchmarks/babaisai_speed.py``).

Semantics (those of the benchmark, itself a subset of Baba Is You):

- Items sit on cells of a ``width x height`` grid; several may share a cell. An object is a
  lower-case noun (``baba``, ``wall``, ``ball``, ``door``, ``key``); a word tile is upper
  case: a noun word (``BALL``), ``IS``, or a property (``YOU``, ``WIN``, ``STOP``, ``PUSH``,
  ``DEFEAT``).
- A rule is active while three tiles line up left-to-right or top-to-bottom as
  ``NOUN IS PROPERTY`` or ``NOUN IS NOUN``. Rules depend only on where the words are, so they
  are re-read after every move that moves a word (which is every move that can change them).
- A move (``up``/``down``/``left``/``right``; ``idle`` does nothing) moves every ``YOU`` object
  one cell. Word tiles are always pushable, objects when ``PUSH``; a push moves the whole
  line of pushable items ahead. A move is blocked (nothing moves) by the grid's edge or by a
  ``STOP`` object that is not ``PUSH``. Other objects are walked over.
- ``NOUN IS NOUN`` turns every object of the first noun into the second (``BABA IS BABA``
  protects baba from any transformation).
- After the move, a ``YOU`` object on a ``DEFEAT`` object is destroyed; then the level is won
  when a ``YOU`` object shares a cell with a ``WIN`` object (or is ``WIN`` itself), and lost
  when no ``YOU`` object is left (nothing could ever move again).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ACTIONS",
    "DIRECTIONS",
    "NOUNS",
    "PROPERTIES",
    "Game",
    "Item",
    "Level",
    "Outcome",
    "parse_rules",
]

NOUNS = ("baba", "wall", "ball", "door", "key")
PROPERTIES = ("you", "win", "stop", "push", "defeat")
ACTIONS = ("idle", "up", "right", "down", "left")  # the benchmark's order
DIRECTIONS: dict[str, tuple[int, int]] = {"up": (0, -1), "right": (1, 0), "down": (0, 1), "left": (-1, 0)}

_NOUN_WORDS = frozenset(n.upper() for n in NOUNS)
_RHS_WORDS = _NOUN_WORDS | frozenset(p.upper() for p in PROPERTIES)


@dataclass(frozen=True)
class Item:
    """One thing on the grid: an object (``kind`` lower case) or a word tile (upper case)."""

    kind: str
    x: int
    y: int
    color: str = ""

    @property
    def is_word(self) -> bool:
        return self.kind.isupper()


@dataclass(frozen=True)
class Level:
    """A level: what a :class:`Game` starts from. ``family`` names its puzzle kind."""

    width: int
    height: int
    items: tuple[Item, ...]
    family: str = ""


@dataclass(frozen=True)
class Outcome:
    """What one step did: ``moved`` (anything moved), ``words_moved``, ``rules_changed``."""

    moved: bool
    words_moved: bool
    won: bool
    lost: bool
    rules_changed: bool = False


def parse_rules(words: dict[int, str], width: int, height: int) -> tuple[tuple[str, str], ...]:
    """Active rules ``(noun, property-or-noun)``, lower case, from word tiles by cell index
    (``y * width + x``), in reading order of their first tile, horizontal before vertical."""
    rules: list[tuple[str, str]] = []
    for cell in sorted(words):
        noun = words[cell]
        if noun not in _NOUN_WORDS:
            continue
        x, y = cell % width, cell // width
        if x + 2 < width and words.get(cell + 1) == "IS" and words.get(cell + 2) in _RHS_WORDS:
            rules.append((noun.lower(), words[cell + 2].lower()))
        if y + 2 < height and words.get(cell + width) == "IS" and words.get(cell + 2 * width) in _RHS_WORDS:
            rules.append((noun.lower(), words[cell + 2 * width].lower()))
    return tuple(dict.fromkeys(rules))


_KIND_ID = {k: i for i, k in enumerate((*NOUNS, *(n.upper() for n in NOUNS), "IS", *(p.upper() for p in PROPERTIES)))}
_WORDS = frozenset(k for k in _KIND_ID if k.isupper())


class Game:
    """The mutable state of one level in play. Cheap to copy (:meth:`copy`), so the solver
    and the offline policy search over it; :meth:`key` identifies a state up to item order.
    ``cells[i]`` is item ``i``'s cell ``y * width + x``, or -1 once it is destroyed."""

    __slots__ = (
        "_defeat",
        "_push",
        "_stop",
        "_win",
        "_you",
        "cells",
        "colors",
        "height",
        "kinds",
        "lost",
        "rules",
        "width",
        "won",
    )

    def __init__(self, level: Level) -> None:
        self.width = level.width
        self.height = level.height
        self.kinds: list[str] = [it.kind for it in level.items]
        self.colors: list[str] = [it.color for it in level.items]
        self.cells: list[int] = [it.y * level.width + it.x for it in level.items]
        unknown = sorted(set(self.kinds) - set(_KIND_ID))
        if unknown:
            raise ValueError(f"unknown item kind(s): {', '.join(unknown)}")
        self.won = False
        self.lost = False
        self._reread()
        self._check_end()

    # -- copying and identity ---------------------------------------------
    def copy(self) -> Game:
        g = Game.__new__(Game)
        g.width, g.height, g.colors, g.rules = self.width, self.height, self.colors, self.rules
        g.kinds, g.cells = list(self.kinds), list(self.cells)
        g._you, g._push, g._stop, g._win, g._defeat = self._you, self._push, self._stop, self._win, self._defeat
        g.won, g.lost = self.won, self.lost
        return g

    def fast_key(self) -> tuple[tuple[int, ...], tuple[str, ...]]:
        """The board for a search that starts from this game (item order is fixed within it)."""
        return tuple(self.cells), tuple(self.kinds)

    def key(self) -> tuple[int, ...]:
        """The board as a sorted tuple of (kind, cell) codes: equal for equal boards whatever
        the item order (the solver's visited set and the offline policy's plan cache use it)."""
        ids = _KIND_ID
        return tuple(sorted(ids[k] * 4096 + c for k, c in zip(self.kinds, self.cells, strict=True) if c >= 0))

    # -- rules ---------------------------------------------------------------
    def props(self, noun: str) -> frozenset[str]:
        """Properties the active rules give to objects of ``noun``."""
        sets = (("you", self._you), ("win", self._win), ("stop", self._stop), ("push", self._push))
        return frozenset([p for p, s in (*sets, ("defeat", self._defeat)) if noun in s])

    def you_indices(self) -> list[int]:
        return [i for i, k in enumerate(self.kinds) if k in self._you and self.cells[i] >= 0]

    def _reread(self) -> None:
        words = {c: k for k, c in zip(self.kinds, self.cells, strict=True) if c >= 0 and k in _WORDS}
        self.rules = parse_rules(words, self.width, self.height)
        props: dict[str, set[str]] = {p: set() for p in PROPERTIES}
        becomes: dict[str, str] = {}
        for noun, rhs in self.rules:
            if rhs in props:
                props[rhs].add(noun)
            elif rhs == noun:
                becomes[noun] = noun  # NOUN IS NOUN: keeps it, blocks other transformations
            else:
                becomes.setdefault(noun, rhs)  # the first transformation read wins
        self._you, self._win = frozenset(props["you"]), frozenset(props["win"])
        self._stop, self._defeat = frozenset(props["stop"]), frozenset(props["defeat"])
        self._push = frozenset(props["push"]) | _WORDS  # word tiles are always pushable
        if becomes:
            for i, k in enumerate(self.kinds):
                target = becomes.get(k)
                if target is not None and target != k and self.cells[i] >= 0:
                    self.kinds[i] = target

    # -- dynamics ------------------------------------------------------------
    def step(self, action: str) -> Outcome:
        """Apply one action; see the module docstring for the rules."""
        if self.won or self.lost:
            return Outcome(False, False, self.won, self.lost)
        d = DIRECTIONS.get(action)
        if d is None:  # idle (or anything else): the board does not change
            return Outcome(False, False, False, False)
        dx, dy = d
        w, h = self.width, self.height
        kinds, cells, you, push, stop = self.kinds, self.cells, self._you, self._push, self._stop
        movers = [i for i, k in enumerate(kinds) if k in you and cells[i] >= 0]
        if len(movers) > 1:  # the one furthest ahead moves first, so a line of YOU objects moves together
            movers.sort(key=lambda i: -(cells[i] % w * dx + cells[i] // w * dy))
        moved = words_moved = False
        delta = dy * w + dx
        for i in movers:
            chain: list[int] = []
            x, y = cells[i] % w, cells[i] // w
            blocked = False
            while True:
                x, y = x + dx, y + dy
                if not (0 <= x < w and 0 <= y < h):
                    blocked = True
                    break
                nc = y * w + x
                pushed = False
                for j, c in enumerate(cells):
                    if c == nc:
                        k = kinds[j]
                        if k in push:
                            chain.append(j)
                            pushed = True
                        elif k in stop:
                            blocked = True
                            break
                if blocked or not pushed:
                    break
            if blocked:
                continue
            for j in chain:
                cells[j] += delta
                if kinds[j] in _WORDS:
                    words_moved = True
            cells[i] += delta
            moved = True
        rules_changed = False
        if words_moved:
            before = self.rules
            self._reread()
            rules_changed = set(self.rules) != set(before)
        if moved:
            self._check_end(None if words_moved else movers)
        return Outcome(moved, words_moved, self.won, self.lost, rules_changed)

    def _check_end(self, you: list[int] | None = None) -> None:
        """Defeat, then win or loss. ``you``: the YOU objects, when the caller knows them."""
        kinds, cells = self.kinds, self.cells
        if you is None:
            you = [i for i, k in enumerate(kinds) if k in self._you and cells[i] >= 0]
        if self._defeat:
            deadly = {c for k, c in zip(kinds, cells, strict=True) if k in self._defeat}
            for i in you:
                if cells[i] in deadly:
                    cells[i] = -1
            you = [i for i in you if cells[i] >= 0]
        if not you:
            self.lost = True
            return
        if self._win:
            winning = {c for k, c in zip(kinds, cells, strict=True) if k in self._win and c >= 0}
            self.won = any(cells[i] in winning for i in you)
