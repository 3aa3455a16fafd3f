"""Offline acting policy for Baba Is AI: a deterministic stand-in for the acting LLM.

Like the household policy it reads ONLY the chat (the system prompt with any memory under
``## Relevant past experience``, the observations, its own past answers); it rebuilds the
board from the text (rules, edges, every object and word tile relative to the player) and
plans on it with the game's rules (:mod:`alma_tui.domains.babaisai`), as an LLM that knows
the rules would.

What it does not know is *which rule to change*. Each turn it first tries to walk a YOU
object onto a WIN object without changing any rule. When that is impossible it picks one
rule change among those the board allows (form ``<noun> IS WIN`` or ``<noun> IS YOU`` from
word tiles on the board, or break an active ``... IS STOP``), plans it by breadth-first
search, carries it out, and tries to walk to a WIN object again. Without memory it takes
the candidates in a seeded random order, so on a level that needs the one right rule change
it often spends its steps on the wrong one; memory tells it which change worked on a
sibling level. A plan is kept while the board follows it and re-chosen when it is done or
the board diverges (the policy is a pure function of the chat and the seed).

Memory-reading contract (designs rely on this; keep it exact)
--------------------------------------------------------------
Memory is read as lower-cased non-empty lines, line ``i`` weighing ``1 / (1 + 0.1 * i)``
(earlier lines weigh more). Two kinds of evidence vote for rule changes:

1. **Statements**: a line with ``form/formed/forming/make/made/making/create/created`` and
   later ``<noun> is <word>`` votes for forming that rule; with ``break/broke/broken/
   breaking`` for breaking it. A line with ``not``, ``never``, ``avoid``, ``useless``,
   ``failed`` or ``fails`` votes against instead. E.g. "formed key is win, then walked
   to the key", "make ball is you (solved two_room levels)", "break wall is stop".
2. **Trajectories**: an episode starts at a line beginning with ``task`` or ``episode``
   (or at the top). Every ``active rules: a is b, c is d.`` in it is a board's rules;
   rules in the episode's last set but not its first were *formed*, rules in the first but
   not the last were *broken*. Its outcome is read from an ``outcome:`` line (``success``/
   ``fail``) or a ``you win`` observation. A success votes for its last change with the
   weight of the episode's first line and for its other changes with half of it; a failure
   votes against all its changes with half; an unknown outcome for them with half. So
   trajectory retrieval's stored episodes ("Setting: Active rules: ...", "right -> Active
   rules: ...") vote without any summarising.

A vote for ``<noun> is <p>`` counts fully for the same candidate and half for forming
``<other noun> is <p>`` when that noun's word is in no active rule and its object is on
this board (``formed key is win`` in memory helps ``ball is win`` next to a loose ``BALL
IS``: siblings of a family use different objects); a vote to break ``<noun> is <p>``
counts half for breaking any ``... is <p>``. Candidates with positive votes are tried
first (highest first), then the unvoted ones in the seeded order, then those voted against.
"""

from __future__ import annotations

import functools
import random
import re
import zlib
from dataclasses import dataclass

from alma_tui.agent.prompt import ADMISSIBLE_HEADING, MEMORY_HEADING
from alma_tui.domains.babaisai.engine import ACTIONS, NOUNS, Game, Item, Level
from alma_tui.domains.babaisai.levels import MAX_STEPS
from alma_tui.domains.babaisai.render import loose_words, render
from alma_tui.domains.babaisai.solver import search

__all__ = ["Candidate", "choose_action", "memory_votes", "parse_board"]

_MAX_NODES = 2_000  # per plan search: a plan that needs more is not one we would find
_EDGE = re.compile(
    r"map edge is (\d+) steps? to the left, (\d+) steps? to the right, (\d+) steps? up and (\d+) steps? down"
)
_ITEM = re.compile(r"^(?:rule `(\w+)`|(?:(\w+) )?(" + "|".join(NOUNS) + r")) (.+)$")
_DX = re.compile(r"(\d+) steps? to the (left|right)")
_DY = re.compile(r"(\d+) steps? (up|down)")
_RULES = re.compile(r"active rules:\s*([^.;\n]*)")
_RULE = re.compile(r"\b(" + "|".join(NOUNS) + r") is ([a-z]+)\b")
_FORM = re.compile(r"\b(?:form|formed|forming|make|made|making|create|created)\b")
_BREAK = re.compile(r"\b(?:break|broke|broken|breaking)\b")
_AGAINST = re.compile(r"\b(?:not|never|avoid|useless|failed|fails)\b")
_EPISODE = re.compile(r"^\s*(?:task|episode)\b")
_MOVES = ("up", "right", "down", "left")


@dataclass(frozen=True, order=True)
class Candidate:
    """A rule change: ``op`` is "form" or "break", the rule is ``noun is prop``."""

    op: str
    noun: str
    prop: str

    def __str__(self) -> str:
        return f"{self.op} {self.noun} is {self.prop}"

    def done(self, game: Game) -> bool:
        active = (self.noun, self.prop) in game.rules
        return active if self.op == "form" else not active


@functools.lru_cache(maxsize=4096)
def parse_board(observation: str) -> Game | None:
    """The board an observation shows (None when it shows none, e.g. "Nothing happens.")."""
    edge = _EDGE.search(observation)
    if edge is None:
        return None
    left, right, up, down = (int(g) for g in edge.groups())
    px, py = left - 1, up - 1
    width, height = px + right, py + down
    items: list[Item] = []
    _, _, listing = observation.partition("Objects on the map:")
    for line in listing.splitlines():
        m = _ITEM.match(line.strip())
        if not m:
            continue
        word, color, noun, where = m.groups()
        dx = dy = 0
        for n, side in _DX.findall(where):
            dx = int(n) if side == "right" else -int(n)
        for n, side in _DY.findall(where):
            dy = int(n) if side == "down" else -int(n)
        x, y = px + dx, py + dy
        if not (0 <= x < width and 0 <= y < height):
            continue
        items.append(Item(word.upper(), x, y) if word else Item(noun, x, y, color or ""))
    try:
        return Game(Level(width, height, tuple(items)))
    except ValueError:
        return None


@functools.lru_cache(maxsize=256)
def memory_votes(memory: str) -> tuple[tuple[Candidate, float], ...]:
    """Votes ``(candidate, weight)`` read from memory text, by the contract above."""
    votes: list[tuple[Candidate, float]] = []
    lines = [ln.lower() for ln in memory.splitlines() if ln.strip()]
    episodes: list[tuple[int, list[str]]] = []
    for i, line in enumerate(lines):
        weight = 1.0 / (1.0 + 0.1 * i)
        if _EPISODE.match(line) or not episodes:
            episodes.append((i, []))
        episodes[-1][1].append(line)
        rules_at = [m.start() for m in _RULES.finditer(line)]
        for op, verb in (("form", _FORM), ("break", _BREAK)):
            v = verb.search(line)
            if v is None:
                continue
            sign = -1.0 if _AGAINST.search(line) else 1.0
            for r in _RULE.finditer(line, v.end()):
                if any(start <= r.start() for start in rules_at):
                    break  # a rule listing after the verb is a board, not the statement's rule
                votes.append((Candidate(op, r.group(1), r.group(2)), sign * weight))
    for first, ep in episodes:
        boards = [frozenset((a, b) for a, b in _RULE.findall(m.group(1))) for line in ep for m in _RULES.finditer(line)]
        if len(boards) < 2:
            continue
        text = "\n".join(ep)
        outcome = re.search(r"outcome:\s*(\w+)", text)
        if outcome:
            sign = 1.0 if outcome.group(1).startswith("success") else -0.5 if "fail" in outcome.group(1) else 0.5
        else:
            sign = 1.0 if "you win" in text else 0.5
        weight = sign / (1.0 + 0.1 * first)
        changes = [Candidate("form", a, b) for a, b in sorted(boards[-1] - boards[0])]
        changes += [Candidate("break", a, b) for a, b in sorted(boards[0] - boards[-1])]
        last = _last_change(boards, changes)
        votes += [(c, weight if c == last or sign < 0 else 0.5 * weight) for c in changes]
    return tuple(votes)


def _last_change(boards: list[frozenset[tuple[str, str]]], changes: list[Candidate]) -> Candidate | None:
    """The net change that happened last (the one the win came right after)."""
    for before, after in zip(boards[-2::-1], boards[::-1], strict=False):
        for c in changes:
            rule = (c.noun, c.prop)
            if (c.op == "form" and rule in after and rule not in before) or (
                c.op == "break" and rule in before and rule not in after
            ):
                return c
    return None


def _score(cand: Candidate, votes: tuple[tuple[Candidate, float], ...], sibling: frozenset[str]) -> float:
    total = 0.0
    for v, w in votes:
        if v.op == cand.op and v.prop == cand.prop:
            if v.noun == cand.noun:
                total += w
            elif cand.op == "break" or cand.noun in sibling:
                total += 0.5 * w
    return total


def _candidates(game: Game) -> list[Candidate]:
    """Rule changes the board's word tiles allow, useful or not (whether they can be done is
    for the planner): form ``<noun> IS WIN|YOU`` for any noun word on the board, break any
    ``STOP``, ``PUSH`` or ``DEFEAT`` rule."""
    words = {k.lower() for k, c in zip(game.kinds, game.cells, strict=True) if c >= 0 and k.isupper()}
    you = {n for n, p in game.rules if p == "you"}
    out = []
    for prop in ("win", "you"):
        if prop not in words:
            continue
        for noun in sorted(words & set(NOUNS)):
            if (noun, prop) in game.rules or (prop == "you" and noun in you):
                continue
            out.append(Candidate("form", noun, prop))
    out += [Candidate("break", n, p) for n, p in game.rules if p in ("stop", "push", "defeat")]
    return out


def _ordered(cands: list[Candidate], game: Game, memory: str, seed: int, initial: str) -> list[Candidate]:
    votes = memory_votes(memory) if memory else ()
    present = {k for k, c in zip(game.kinds, game.cells, strict=True) if c >= 0 and not k.isupper()}
    sibling = frozenset(present & set(loose_words(game)))  # a loose noun word with its object on the board
    scored = [(_score(c, votes, sibling), zlib.crc32(f"{seed}|{initial}|{c}".encode()), c) for c in cands]
    pos = sorted((s for s in scored if s[0] > 0), key=lambda s: (-s[0], s[1]))
    zero = sorted((s for s in scored if s[0] == 0), key=lambda s: s[1])
    neg = sorted((s for s in scored if s[0] < 0), key=lambda s: (-s[0], s[1]))
    return [s[2] for s in pos + zero + neg]


def _walk(game: Game, budget: int) -> tuple[str, ...] | None:
    return _cached_search(game.key(), game, None, budget)


def _plan(game: Game, cand: Candidate, budget: int) -> tuple[str, ...] | None:
    return _cached_search(game.key(), game, cand, budget)


_SEARCHES: dict[tuple, tuple[str, ...] | None] = {}


def _cached_search(key: tuple, game: Game, cand: Candidate | None, budget: int) -> tuple[str, ...] | None:
    """Plan searches, memoised by board (the same boards recur across runs and designs). A
    search is a pure function of the board, so the cache never changes an answer."""
    k = (key, game.width, game.height, cand, budget)
    if k not in _SEARCHES:
        if len(_SEARCHES) > 50_000:
            _SEARCHES.clear()
        if cand is None:
            path = search(game, lambda g: g.won, budget, _MAX_NODES, allow=lambda o: not o.rules_changed)
        else:  # make the change without breaking a WIN or YOU rule on the way
            keep = {r for r in game.rules if r[1] in ("win", "you") and r != (cand.noun, cand.prop)}
            path = search(game, lambda g: cand.done(g) and keep <= set(g.rules), budget, _MAX_NODES)
        _SEARCHES[k] = None if path is None else tuple(path)
    return _SEARCHES[k]


@dataclass(frozen=True)
class _Decision:
    plan: str  # "walk", a candidate, "fumble" (a wasted step) or "none"
    path: tuple[str, ...]
    tried: tuple[str, ...] = ()  # candidates chosen so far this episode


def _fresh(game: Game, budget: int, memory: str, seed: int, initial: str, tried: tuple[str, ...]) -> _Decision:
    """Walk to a WIN object if no rule needs to change; else commit to the next untried rule
    change. One that cannot be done in time costs a step (idle), as it would an LLM."""
    walk = _walk(game, budget)
    if walk:
        return _Decision("walk", walk, tried)
    order = [c for c in _ordered(_candidates(game), game, memory, seed, initial) if not c.done(game)]
    untried = [c for c in order if str(c) not in tried]
    if not untried:
        untried, tried = order, ()  # all tried once: start over from the board as it is now
    rng = random.Random(f"{seed}|{budget}|{initial}")
    if not untried:
        return _Decision("none", (rng.choice(_MOVES),), tried)
    cand = untried[0]
    tried = (*tried, str(cand))
    path = _plan(game, cand, budget - 1)  # keep a step to walk on afterwards
    if path:
        return _Decision(str(cand), path, tried)
    return _Decision("fumble", ("idle",), tried)


@functools.lru_cache(maxsize=8192)
def _decide(boards: tuple[str, ...], actions: tuple[str, ...], memory: str, seed: int) -> _Decision:
    """The plan at the last board of ``boards`` (``actions[i]`` was taken on ``boards[i]``):
    the previous plan while the board follows it, else a fresh one."""
    game = parse_board(boards[-1])
    if game is None:
        return _Decision("none", ())
    budget = MAX_STEPS - len(actions)
    tried: tuple[str, ...] = ()
    if actions:
        prev = _decide(boards[:-1], actions[:-1], memory, seed)
        tried = prev.tried
        prev_game = parse_board(boards[-2])
        if prev_game is not None and len(prev.path) > 1 and prev.path[0] == actions[-1]:
            predicted = prev_game.copy()
            predicted.step(prev.path[0])
            if predicted.key() == game.key():
                return _Decision(prev.plan, prev.path[1:], tried)
    return _fresh(game, budget, memory, seed, boards[0], tried)


def _observation(content: str) -> str:
    obs, _, _ = content.partition(ADMISSIBLE_HEADING)
    return obs.strip()


def _unfolded(history: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The boards of turns the chat shows only as a summary line (``--agent-history summary``
    keeps the first line of older observations), rebuilt by replaying the actions taken from the
    first board, which the chat always shows in full. Moves are deterministic, so the replayed
    boards are the ones the agent saw; a chat that shows every board is returned unchanged."""
    folded = [
        i
        for i, (obs, _) in enumerate(history[1:], 1)
        if parse_board(obs) is None and not obs.startswith("Nothing happens")
    ]
    game = parse_board(history[0][0]) if history else None
    if not folded or game is None:
        return history
    game = game.copy()  # parse_board's boards are cached: never step one of them
    out = [history[0]]
    for i in range(1, len(history)):
        action = history[i - 1][1]
        if action in ACTIONS:
            game.step(action)
            obs = render(game)
        else:
            obs = "Nothing happens."
        out.append((history[i][0] if i == len(history) - 1 else obs, history[i][1]))
    return out


def choose_action(messages: list[dict], seed: int) -> str:
    """Pick one admissible action from the chat alone (deterministic for ``seed``)."""
    memory = ""
    if messages and messages[0].get("role") == "system":
        _, _, mem = str(messages[0].get("content", "")).partition(MEMORY_HEADING)
        memory = mem.strip()
    history: list[tuple[str, str]] = []
    for m in messages[1:]:
        if m.get("role") == "user":
            history.append((_observation(str(m.get("content", ""))), ""))
        elif m.get("role") == "assistant" and history:
            history[-1] = (history[-1][0], " ".join(str(m.get("content", "")).lower().split()))
    history = _unfolded(history)
    # a "Nothing happens." or other board-less turn carries the last board forward
    boards: list[tuple[str, str]] = []
    for obs, act in history:
        if parse_board(obs) is None and boards:
            boards[-1] = (boards[-1][0], act)
        else:
            boards.append((obs, act))
    if not boards or parse_board(boards[-1][0]) is None:
        return "idle"
    decision = _decide(tuple(o for o, _ in boards), tuple(a for _, a in boards[:-1]), memory, seed)
    return decision.path[0] if decision.path else "idle"
