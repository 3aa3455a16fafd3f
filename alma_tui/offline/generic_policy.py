"""Generic offline acting agent: a deterministic stand-in for the acting LLM on any text domain.

The default ``offline/agent`` policy for every domain that names none (``Domain.offline_policy``),
plug-in domains included. Like :mod:`alma_tui.offline.policy` (the household agent) it reads
ONLY the chat the loop builds (:mod:`alma_tui.agent.prompt`): the system prompt with any memory
under ``## Relevant past experience``, the step messages (observation + ``Admissible actions:``)
and its own past answers, of which the loop keeps only the recent ones. It never sees the
environment, so memory helps it only through the text a design retrieves.

What it reads from the text
---------------------------
- **Goal**: the first line of the first observation that starts with ``Your task is to:``,
  ``Goal:``, ``Task:`` or ``Objective:`` (else the first observation's last line). Its *object
  words* are its words minus stop words and verbs; its *verbs* are its words that start an
  admissible action somewhere (``take``, ``put``, ...).
- **Location**: ``-= Name =-`` in an observation (Inform/TextWorld header), or a sentence
  ``You arrive at X.`` / ``You are in X.`` / ``You are at X.``; the location persists until the
  next one. Observations without one (``You can't go that way.``) leave it unchanged.
- **Failure**: an observation that starts with ``Nothing happens``, ``You can't``, ``You cannot``,
  ``That's not``, ``I don't``, ``You don't``, ``You see no``, ``There is no`` or says ``not
  admissible`` marks the action that produced it as failed (at that location).
- **Naming the goal object**: a text names it when it holds every object word of the goal (all
  but one when the goal has four or more), so "the non-euclidean latchkey" is not "the type 0
  latchkey".
- **Moves**: ``go ...``, ``move ...``, a bare direction (``north``, ``n``, ``up``, ...), ``enter
  ...``, ``exit ...``. ``open X`` is a *reveal*.

Without memory it explores: an admissible action whose verb is a goal verb and that names a
goal object (``take potato from table`` for "find the potato and take it") is done at once;
otherwise it opens what is closed here, then takes an exit it has not taken from here (in the
visible history), preferring exits to places it has not seen, then the exit it used least
recently, avoiding actions that failed here; ties are broken by a seeded shuffle.

Memory-reading contract (designs rely on this; keep it exact)
--------------------------------------------------------------
Memory is read line by line (non-empty lines, in order). Matching is case-insensitive.

1. **Episode blocks.** A line starting with ``Task:`` or ``Goal:`` opens a block (its text is
   the block's goal); ``Outcome:`` (or ``Result:``) with ``success``/``succeeded``/``solved``
   anywhere in the block marks it successful (``failure``/``failed``: unsuccessful). A line
   ``Setting: ...`` sets the block's current location when it holds a location (see above).
2. **Steps.** A line ``ACTION -> OBSERVATION`` (also ``> ACTION -> ...``) is a step of the
   current block. If the observation is a failure, ACTION is remembered as failed at the
   block's current location (anywhere, when no location is known) and is tried there only as
   a last resort. If the observation holds a location L,
   the move ``(previous location, ACTION) -> L`` is added to the remembered map, and for a
   compass move its way back (``go west`` from L) unless another move from L says otherwise.
3. **Sightings.** A step whose observation names a goal object word adds one vote to the
   location it is at after the step; a successful step whose ACTION names a goal object and
   starts with a goal verb (``take potato from table``) adds three votes there and remembers
   ACTION's holder (the words after ``from``/``in``/``on``) to open first. Other lines (facts
   a design writes, e.g. ``potato: seen in the parlor``) that name a goal object word and a
   location known from the map or the visible history add one vote to each such location.
4. **Solutions.** A successful block whose goal has the same object words as ours gives an
   action sequence (its steps that did not fail); while the agent's own actions so far are
   exactly that sequence's prefix, it plays the next action when admissible.

With memory, in this order: a goal action if admissible; the remembered solution; the
remembered location with the most votes that it has not searched in this episode (search =
been there and opened what it could), walking the remembered map (plus moves seen in this
episode) by shortest path; once there, opening the remembered holder, then anything closed;
then the exploration above. Any text in any other shape is simply not evidence.

**Memory about another place is dropped.** As soon as a move in this episode contradicts the
remembered map (the same action from the same location led elsewhere), the map, the votes and
the solutions are ignored for the rest of the episode (room names repeat across worlds).
"""

from __future__ import annotations

import random
import re
from collections import deque
from dataclasses import dataclass, field
from functools import lru_cache

from alma_tui.agent.prompt import ADMISSIBLE_HEADING, MEMORY_HEADING

__all__ = ["Memory", "choose_action", "parse_goal", "read_memory"]

_GOAL_LINE = re.compile(r"^\s*(?:your task is to|goal|task|objective)\s*:\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)
_HEADER = re.compile(r"-=\s*([^=\n]+?)\s*=-")
_ARRIVE = re.compile(
    r"\byou (?:arrive at|arrive in|are in|are at|are now in|enter)\s+(?:the |a |an )?([^.,;\n]+?)\s*[.!\n]"
)
_FAIL = re.compile(
    r"^(?:nothing happens|you can'?t|you cannot|that'?s not|i don'?t|you don'?t|you see no|there is no)"
    r"|not admissible",
    re.IGNORECASE,
)
_WORD = re.compile(r"[a-z0-9][a-z0-9'-]*")
_DIRECTIONS = {"north", "south", "east", "west", "up", "down", "n", "s", "e", "w", "u", "d", "ne", "nw", "se", "sw"}
_MOVE_VERBS = {"go", "move", "walk", "enter", "exit", "climb"}
_STOP = {
    "a",
    "an",
    "the",
    "and",
    "or",
    "it",
    "its",
    "them",
    "to",
    "of",
    "in",
    "into",
    "on",
    "onto",
    "at",
    "from",
    "with",
    "for",
    "your",
    "you",
    "task",
    "is",
    "are",
    "be",
    "then",
    "some",
    "that",
    "this",
    "find",
    "get",
    "goal",
    "objective",
    "must",
    "should",
    "please",
    "up",
}
# verbs of common commands: never what a goal is *about* (they are matched as verbs instead)
_COMMAND_VERBS = {
    "take",
    "put",
    "open",
    "close",
    "go",
    "drop",
    "eat",
    "examine",
    "insert",
    "unlock",
    "lock",
    "use",
    "pick",
    "place",
    "move",
    "give",
    "push",
    "pull",
    "turn",
    "look",
    "read",
    "cook",
    "slice",
    "chop",
    "dice",
    "prepare",
    "clean",
    "heat",
    "cool",
    "bring",
    "carry",
    "make",
    "reach",
    "collect",
}
_TRIVIAL = {"look", "inventory", "wait", "help", "score"}
_SUCCESS = re.compile(r"\b(?:success|succeeded|solved|won)\b", re.IGNORECASE)
_FAILURE_OUTCOME = re.compile(r"\b(?:failure|failed|lost)\b", re.IGNORECASE)


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


@dataclass(frozen=True)
class Goal:
    text: str
    objects: frozenset[str]  # content words: what the goal is about
    words: frozenset[str]  # every word (verbs are found among these)


def parse_goal(first_observation: str) -> Goal:
    m = _GOAL_LINE.search(first_observation)
    if m:
        text = m.group(1)
    else:
        lines = [ln for ln in first_observation.strip().splitlines() if ln.strip()]
        text = lines[-1] if lines else ""
    words = _words(text.rstrip("."))
    return Goal(text, frozenset(w for w in words if w not in _STOP and w not in _COMMAND_VERBS), frozenset(words))


def location_of(observation: str) -> str | None:
    """The location an observation names, by the contract above (lowercased)."""
    m = _HEADER.search(observation)
    if m:
        return m.group(1).strip().lower()
    m = _ARRIVE.search(observation.lower())
    return m.group(1).strip() if m else None


def is_failure(observation: str) -> bool:
    return bool(_FAIL.search(observation.strip()))


def is_move(action: str) -> bool:
    w = _words(action)
    return bool(w) and (w[0] in _MOVE_VERBS or (len(w) == 1 and w[0] in _DIRECTIONS))


def _mentions(text: str, words: frozenset[str]) -> bool:
    """Does the text name the goal's object: every object word (all but one when there are four
    or more), so "the non-euclidean latchkey" is not "the type 0 latchkey"."""
    if not words:
        return False
    found = len(words & set(_words(text)))
    return found >= (len(words) if len(words) < 4 else len(words) - 1)


@dataclass
class Memory:
    """What the memory text says, read by the contract in the module docstring."""

    edges: dict[str, dict[str, str]] = field(default_factory=dict)  # location -> action -> location
    votes: dict[str, float] = field(default_factory=dict)  # location -> goal-object votes
    holders: dict[str, set[str]] = field(default_factory=dict)  # location -> things to open first
    failed: set[tuple[str | None, str]] = field(default_factory=set)  # (location or None, action)
    solutions: list[list[str]] = field(default_factory=list)


_STEP = re.compile(r"^\s*(?:>\s*)?(.+?)\s*->\s*(.*)$")
_HOLDER = re.compile(r"\b(?:from|in|on)\s+(?:the\s+)?(.+)$")


_OPPOSITE = {"north": "south", "south": "north", "east": "west", "west": "east", "up": "down", "down": "up"}


def _add_edge(edges: dict[str, dict[str, str]], src: str, action: str, dst: str) -> None:
    """Record a move, and its way back when it is a compass move (``go east`` from A to B
    implies ``go west`` from B to A, unless something else is known there)."""
    edges.setdefault(src, {})[action] = dst
    words = _words(action)
    if words and words[-1] in _OPPOSITE:
        back = " ".join([*words[:-1], _OPPOSITE[words[-1]]])
        edges.setdefault(dst, {}).setdefault(back, src)


def _goal_verbs(goal: Goal, actions: tuple[str, ...]) -> frozenset[str]:
    firsts = {(_words(a) or [""])[0] for a in actions}
    return frozenset(w for w in goal.words if w in firsts and w not in _MOVE_VERBS)


@lru_cache(maxsize=256)
def read_memory(memory: str, goal_objects: frozenset[str], goal_verbs: frozenset[str]) -> Memory:
    mem = Memory()
    loc: str | None = None
    block_goal: frozenset[str] | None = None
    block_actions: list[str] = []
    block_success = False
    facts: list[str] = []

    def close_block() -> None:
        if block_success and block_goal is not None and block_goal == goal_objects and block_actions:
            mem.solutions.append(list(block_actions))

    for raw in memory.splitlines():
        line = raw.strip()
        if not line:
            continue
        low = line.lower()
        head = low.split(":", 1)[0].strip("-* ")
        if head in ("task", "goal") and ":" in low:
            close_block()
            loc, block_actions, block_success = None, [], False
            block_goal = frozenset(
                w for w in _words(line.split(":", 1)[1].rstrip(".")) if w not in _STOP and w not in _COMMAND_VERBS
            )
            continue
        if head in ("outcome", "result") and ":" in low:
            body = low.split(":", 1)[1]
            block_success = bool(_SUCCESS.search(body)) and not _FAILURE_OUTCOME.search(body)
            continue
        if head == "setting" and ":" in low:
            loc = location_of(line.split(":", 1)[1]) or loc
            continue
        step = _STEP.match(line)
        if step is None:
            facts.append(low)
            continue
        action, obs = " ".join(step.group(1).lower().split()), step.group(2)
        if is_failure(obs):
            mem.failed.add((loc, action))
            continue
        block_actions.append(action)  # a solution is its steps that did something
        new = location_of(obs)
        if new is not None and loc is not None and new != loc and is_move(action):
            _add_edge(mem.edges, loc, action, new)
        loc = new or loc
        if loc is None:
            continue
        if goal_verbs and _mentions(action, goal_objects) and (_words(action) or [""])[0] in goal_verbs:
            mem.votes[loc] = mem.votes.get(loc, 0.0) + 3.0
            h = _HOLDER.search(action)
            if h:
                mem.holders.setdefault(loc, set()).add(h.group(1).strip())
        elif _mentions(obs, goal_objects):
            mem.votes[loc] = mem.votes.get(loc, 0.0) + 1.0
    close_block()
    known = set(mem.edges) | {d for e in mem.edges.values() for d in e.values()} | set(mem.votes)
    for low in facts:
        if _mentions(low, goal_objects):
            for name in known:
                if re.search(rf"\b{re.escape(name)}\b", low):
                    mem.votes[name] = mem.votes.get(name, 0.0) + 1.0
    return mem


@lru_cache(maxsize=4096)
def _split_user(content: str) -> tuple[str, tuple[str, ...]]:
    obs, _, rest = content.partition(ADMISSIBLE_HEADING)
    acts = tuple(ln[2:].strip() for ln in rest.splitlines() if ln.startswith("- "))
    return obs.strip(), acts


@dataclass
class _View:
    """The episode so far, as far as the visible chat shows it."""

    memory: str = ""
    initial: str = ""
    admissible: tuple[str, ...] = ()
    actions: list[str] = field(default_factory=list)  # own answers, oldest first (visible ones)
    loc: str | None = None
    visited: set[str] = field(default_factory=set)
    edges: dict[str, dict[str, str]] = field(default_factory=dict)
    tried: dict[str, dict[str, int]] = field(default_factory=dict)  # location -> action -> last index
    times: dict[tuple[str | None, str], int] = field(default_factory=dict)  # (location, action) -> count
    failed: set[tuple[str | None, str]] = field(default_factory=set)
    opened: set[tuple[str | None, str]] = field(default_factory=set)
    complete: bool = True  # the chat still holds every step (not trimmed)


def _read(messages: list[dict]) -> _View:
    v = _View()
    if messages and messages[0].get("role") == "system":
        _, _, mem = str(messages[0].get("content", "")).partition(MEMORY_HEADING)
        v.memory = mem.strip()
    users = [i for i, m in enumerate(messages) if m.get("role") == "user"]
    if not users:
        return v
    v.initial, v.admissible = _split_user(str(messages[users[0]].get("content", "")))
    v.loc = location_of(v.initial)
    if v.loc:
        v.visited.add(v.loc)
    first_answer = users[0] + 1
    # the loop keeps the system prompt, the first step message and the recent exchanges; a
    # user message right after the first one means earlier exchanges were dropped
    v.complete = len(messages) <= first_answer or messages[first_answer].get("role") == "assistant"
    last: str | None = None
    here_before: str | None = v.loc
    for m in messages[first_answer:]:
        if m.get("role") == "assistant":
            last = " ".join(str(m.get("content", "")).strip().lower().split())
            continue
        if m.get("role") != "user":
            continue
        obs, acts = _split_user(str(m.get("content", "")))
        v.admissible = acts
        if last is None:
            continue
        idx = len(v.actions)
        v.actions.append(last)
        v.tried.setdefault(here_before or "", {})[last] = idx
        v.times[(here_before, last)] = v.times.get((here_before, last), 0) + 1
        if is_failure(obs):
            v.failed.add((here_before, last))
            continue
        if last.startswith("open "):
            v.opened.add((here_before, last[5:]))
        new = location_of(obs)
        if new is not None:
            if here_before is not None and new != here_before and is_move(last):
                _add_edge(v.edges, here_before, last, new)
            v.loc = new
            v.visited.add(new)
        here_before = v.loc
    return v


def _path(edges: dict[str, dict[str, str]], start: str, goal: str) -> list[str] | None:
    """Shortest action path from start to goal over the known moves (BFS, stable order)."""
    if start == goal:
        return []
    seen = {start}
    queue: deque[tuple[str, list[str]]] = deque([(start, [])])
    while queue:
        node, path = queue.popleft()
        for action in sorted(edges.get(node, {})):
            nxt = edges[node][action]
            if nxt in seen:
                continue
            if nxt == goal:
                return [*path, action]
            seen.add(nxt)
            queue.append((nxt, [*path, action]))
    return None


def _contradicts(own: dict[str, dict[str, str]], remembered: dict[str, dict[str, str]]) -> bool:
    """Did a move of this episode lead somewhere else than memory says it does?"""
    return any(remembered.get(src, {}).get(act, dst) != dst for src, moves in own.items() for act, dst in moves.items())


def choose_action(messages: list[dict], seed: int) -> str:
    """Pick one admissible action from the chat alone (deterministic for ``seed``)."""
    v = _read(messages)
    adm = list(v.admissible)
    if not adm:
        return "look"
    goal = parse_goal(v.initial)
    verbs = _goal_verbs(goal, tuple(adm))
    mem = read_memory(v.memory, goal.objects, verbs) if v.memory else Memory()
    if _contradicts(v.edges, mem.edges):
        mem = Memory(failed=mem.failed)  # a map of another place: keep only what failed
    rng = random.Random(f"{seed}|{v.initial}")
    order = list(adm)
    rng.shuffle(order)  # the episode's fixed tie-break order
    here = v.loc

    def ok(action: str) -> bool:
        return (here, action) not in v.failed and (here, action) not in mem.failed and (None, action) not in mem.failed

    # 1. the goal's own action, when it is on offer
    goal_acts = [
        a for a in order if ok(a) and (_words(a) or [""])[0] in verbs and _mentions(a, goal.objects) and not is_move(a)
    ]
    if goal_acts:
        return max(goal_acts, key=lambda a: len(goal.objects & set(_words(a))))

    # 2. a remembered solution of the same goal, while we follow it exactly
    if v.complete:
        for plan in mem.solutions:
            n = len(v.actions)
            if n < len(plan) and plan[:n] == v.actions and plan[n] in adm:
                return plan[n]

    # 3. walk to where memory saw the goal object, and open what it came out of
    edges: dict[str, dict[str, str]] = {k: dict(d) for k, d in mem.edges.items()}
    for k, d in v.edges.items():
        edges.setdefault(k, {}).update(d)
    opens = [a for a in order if a.startswith("open ") and ok(a) and (here, a[5:]) not in v.opened]
    if here is not None and mem.votes:
        searched = {loc for loc in v.visited if loc != here}
        targets = sorted((loc for loc in mem.votes if loc not in searched), key=lambda loc: (-mem.votes[loc], loc))
        for target in targets:
            if target == here:
                first = [a for a in opens if a[5:] in mem.holders.get(here, set())]
                if first or opens:
                    return (first or opens)[0]
                continue
            path = _path(edges, here, target)
            # a remembered way taken twice already from here is a loop (wrong map): explore instead
            if path and path[0] in adm and ok(path[0]) and v.times.get((here, path[0]), 0) < 2:
                return path[0]

    # 4. explore: open what is closed here, then unexplored exits, then the least recent one
    if opens:
        return opens[0]
    moves = [a for a in order if is_move(a) and ok(a)]
    tried_here = v.tried.get(here or "", {})
    fresh = [a for a in moves if a not in tried_here]
    if fresh:
        known = edges.get(here or "", {})
        fresh.sort(key=lambda a: known.get(a) in v.visited)  # unknown or unseen places first
        return fresh[0]
    if moves:
        return min(moves, key=lambda a: tried_here.get(a, -1))
    rest = [a for a in order if ok(a) and a.split(" ")[0] not in _TRIVIAL and (here, a) not in v.failed]
    untried = [a for a in rest if a not in tried_here]
    return (untried or rest or order)[0]
