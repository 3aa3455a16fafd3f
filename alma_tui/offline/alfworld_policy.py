"""Offline acting policy for the real ALFWorld games (``--domain alfworld``).

Why not the household policy: real ALFWorld goals name the destination by *type*
("put a clean mug in coffeemachine", "heat some egg and put it in countertop"), use six
task types (also "look at X under the desklamp" and "put two X in Y"), and put objects
down with ``move X to Y``. This policy reads those, from the chat alone (``agent.prompt``
format), exactly as the household one does.

Without memory it searches the room's receptacles in a seeded order (opening closed ones),
takes the goal object when one is in view, carries it to the tool its verb needs
(sinkbasin / microwave / fridge) or, for a look task, to a receptacle where a lamp was
seen, and then to a receptacle of the goal's type; for "two" tasks it does this twice.

Memory-reading contract
-----------------------
The same as the household policy's (:func:`alma_tui.offline.policy.memory_votes`; read its
module docstring): memory lines are weighted best-first, a line mentioning the goal object
word votes for the receptacles it names before any clean/heat/cool verb (negated lines vote
against), a line with the goal's verb votes for the receptacles after it as the tool, counts
such as ``(x3)`` multiply, and text from the first ``put`` on is ignored. Two ALFWorld
specifics: the *move* verb is treated like ``put`` (``move mug 1 to countertop 1`` says where
a mug was left, not found), and on a look task lines naming ``desklamp``/``floorlamp`` vote for
where the lamp is. Receptacles with positive votes are searched first.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

from alma_tui.agent.prompt import ADMISSIBLE_HEADING, MEMORY_HEADING
from alma_tui.offline.policy import memory_votes

__all__ = ["AlfGoal", "choose_action", "parse_alfworld_goal"]

_ADJ = {"clean": "clean", "hot": "heat", "cool": "cool", "heat": "heat"}
_TOOLS = {"clean": ("sinkbasin", "bathtubbasin"), "heat": ("microwave",), "cool": ("fridge",)}
_LAMPS = ("desklamp", "floorlamp")
_MENTION = re.compile(r"\b([a-z]+) (\d+)\b")
_MOVE = re.compile(r"\bmov(?:e|es|ed|ing)\b", re.IGNORECASE)
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"look at (?:an? |the |some )?([a-z]+) under the ([a-z]+)"), "look"),
    (re.compile(r"examine the ([a-z]+) with the ([a-z]+)"), "look"),
    (re.compile(r"(?:put|find) two ([a-z]+?)s? (?:and put them )?in ([a-z]+)"), "two"),
    (re.compile(r"put (?:an? |some |the )?(clean|hot|cool) ([a-z]+) (?:in|on) ([a-z]+)"), "adj"),
    (re.compile(r"(clean|heat|cool) (?:some |an? |the )?([a-z]+) and put it (?:in|on) ([a-z]+)"), "adj"),
    (re.compile(r"put (?:an? |some |the )?([a-z]+) (?:in|on) ([a-z]+)"), "plain"),
)


@dataclass(frozen=True)
class AlfGoal:
    kind: str  # object type word: "mug", "keychain"
    verb: str  # "", "clean", "heat", "cool" or "look"
    target: str  # receptacle type ("countertop"), or the lamp type for a look task
    count: int = 1


def parse_alfworld_goal(text: str) -> AlfGoal | None:
    m = re.search(r"your task is to:\s*(.+)", text.lower())
    if not m:
        return None
    goal = m.group(1)
    for pattern, form in _PATTERNS:
        g = pattern.search(goal)
        if not g:
            continue
        if form == "look":
            return AlfGoal(g.group(1), "look", g.group(2))
        if form == "two":
            return AlfGoal(g.group(1), "", g.group(2), 2)
        if form == "adj":
            return AlfGoal(g.group(2), _ADJ[g.group(1)], g.group(3))
        return AlfGoal(g.group(1), "", g.group(2))
    return None


@dataclass
class _View:
    memory: str = ""
    receptacles: list[str] = field(default_factory=list)
    admissible: list[str] = field(default_factory=list)
    loc: str | None = None
    holding: str | None = None
    transformed: bool = False
    placed: set[str] = field(default_factory=set)
    checked: set[str] = field(default_factory=set)
    seen: dict[str, list[str]] = field(default_factory=dict)
    tried_targets: set[str] = field(default_factory=set)


def _split(content: str) -> tuple[str, list[str]]:
    obs, _, rest = content.partition(ADMISSIBLE_HEADING)
    return obs.strip(), [ln[2:].strip() for ln in rest.splitlines() if ln.startswith("- ")]


def _listed(obs: str) -> list[str] | None:
    m = re.search(r"you see (.*?)\.(?:\s|$)", obs.lower())
    if not m:
        return None
    return [f"{a} {b}" for a, b in _MENTION.findall(m.group(1))]


def _read(messages: list[dict], goal: AlfGoal) -> _View:
    v = _View()
    if messages and messages[0].get("role") == "system":
        memory = str(messages[0].get("content", "")).partition(MEMORY_HEADING)[2].strip()
        v.memory = _MOVE.sub("put", memory)  # "move X to Y" says where X was left, like "put"
    users = [i for i, m in enumerate(messages) if m.get("role") == "user"]
    if not users:
        return v
    first, v.admissible = _split(str(messages[users[0]].get("content", "")))
    v.receptacles = list(
        dict.fromkeys((_listed(first) or []) + [a[6:] for a in v.admissible if a.startswith("go to ")])
    )
    last = ""
    for m in messages[users[0] + 1 :]:
        if m.get("role") == "assistant":
            last = " ".join(str(m.get("content", "")).lower().split())
            continue
        obs, v.admissible = _split(str(m.get("content", "")))
        low = obs.lower()
        if low.startswith("nothing happens"):
            continue
        if last.startswith("go to "):
            v.loc = last[6:]
        elif last.startswith("take ") and low.startswith("you pick up"):
            v.holding = last[5:].split(" from ")[0]
        elif last.startswith("move ") and low.startswith("you move"):
            obj, _, rec = last[5:].partition(" to ")
            if obj.startswith(goal.kind + " ") and rec.split(" ")[0] == goal.target:
                v.placed.add(obj)
            v.holding = None
            v.transformed = False
        elif goal.verb and last.startswith(goal.verb + " ") and low.startswith("you "):
            v.transformed = True
        listed = _listed(obs)
        if listed is not None and v.loc and last.split(" ")[0] in ("go", "open", "examine"):
            v.checked.add(v.loc)
            v.seen[v.loc] = listed
        if v.loc and v.loc.split(" ")[0] == goal.target and v.holding:
            v.tried_targets.add(v.loc)
    return v


def _order(seed: int, receptacles: list[str], votes: dict[str, float]) -> list[str]:
    base = list(receptacles)
    random.Random(f"{seed}|{'/'.join(receptacles)}").shuffle(base)
    pos = sorted((r for r in base if votes.get(r, 0.0) > 0), key=lambda r: -votes[r])
    neutral = [r for r in base if votes.get(r, 0.0) == 0]
    neg = sorted((r for r in base if votes.get(r, 0.0) < 0), key=lambda r: votes[r], reverse=True)
    return pos + neutral + neg


def _is_tool(receptacle: str, verb: str) -> bool:
    return any(word in receptacle.split(" ")[0] for word in _TOOLS[verb])


def _go(v: _View, candidates: list[str]) -> str | None:
    adm = set(v.admissible)
    for r in candidates:
        if r != v.loc and f"go to {r}" in adm:
            return f"go to {r}"
    return None


def _holding_goal(v: _View, goal: AlfGoal, seed: int, recs: frozenset[str]) -> str | None:
    adm = set(v.admissible)
    obj = v.holding or ""
    if goal.verb == "look":
        uses = [a for a in v.admissible if a.startswith("use ") and a.split(" ")[1] in _LAMPS]
        if uses:
            return uses[0]
        lamps = [r for r, objs in v.seen.items() if any(o.split(" ")[0] in _LAMPS for o in objs)]
        votes: dict[str, float] = {}
        for lamp in _LAMPS:
            for r, x in memory_votes(v.memory, lamp, "", "", recs)[0].items():
                votes[r] = votes.get(r, 0.0) + x
        return _go(v, lamps + [r for r in _order(seed, v.receptacles, votes) if r not in v.checked])
    if goal.verb and not v.transformed:
        for a in v.admissible:
            if a.startswith(f"{goal.verb} {obj} with "):
                return a
        if v.loc and _is_tool(v.loc, goal.verb) and f"open {v.loc}" in adm:
            return f"open {v.loc}"
        tool_votes = memory_votes(v.memory, goal.kind, goal.verb, "", recs)[1]
        tools = [r for r in _order(seed, v.receptacles, tool_votes) if _is_tool(r, goal.verb)]
        return _go(v, tools)
    moves = [a for a in v.admissible if a.startswith(f"move {obj} to ") and a.split(" ")[-2] == goal.target]
    if moves:
        return moves[0]
    if v.loc and v.loc.split(" ")[0] == goal.target and f"open {v.loc}" in adm:
        return f"open {v.loc}"
    targets = [r for r in v.receptacles if r.split(" ")[0] == goal.target]
    return _go(v, [r for r in targets if r not in v.tried_targets] + targets)


def choose_action(messages: list[dict], seed: int) -> str:
    """One admissible action, chosen from the chat alone (deterministic for ``seed``)."""
    users = [m for m in messages if m.get("role") == "user"]
    goal = parse_alfworld_goal(str(users[0].get("content", ""))) if users else None
    rng = random.Random(f"{seed}|{len(messages)}")
    if goal is None:
        v = _View()
        if users:
            _, v.admissible = _split(str(users[-1].get("content", "")))
        acts = [a for a in v.admissible if a not in ("look", "inventory", "help")] or v.admissible
        return rng.choice(acts) if acts else "look"
    v = _read(messages, goal)
    recs = frozenset(v.receptacles)
    adm = set(v.admissible)
    act: str | None = None
    if v.holding is not None:
        if v.holding.startswith(goal.kind + " ") and v.holding not in v.placed:
            act = _holding_goal(v, goal, seed, recs)
        else:  # not what the goal needs: put it down here
            act = next((a for a in v.admissible if a.startswith(f"move {v.holding} to ")), None)
    else:
        takes = [
            a
            for a in v.admissible
            if a.startswith(f"take {goal.kind} ")
            and a[5:].split(" from ")[0] not in v.placed
            and a.split(" from ")[-1].split(" ")[0] != goal.target
        ]
        if takes:
            act = takes[0]
        elif v.loc and v.loc not in v.checked and f"open {v.loc}" in adm:
            act = f"open {v.loc}"
        else:
            seen = [
                r
                for r, objs in v.seen.items()
                if r.split(" ")[0] != goal.target
                and any(o.startswith(goal.kind + " ") and o not in v.placed for o in objs)
            ]
            votes = memory_votes(v.memory, goal.kind, goal.verb if goal.verb != "look" else "", "", recs)[0]
            unchecked = [r for r in _order(seed, v.receptacles, votes) if r not in v.checked]
            act = _go(v, seen + unchecked)
    if act is None or act not in adm:
        acts = [a for a in v.admissible if a not in ("look", "inventory", "help")] or v.admissible
        return rng.choice(acts) if acts else "look"
    return act
