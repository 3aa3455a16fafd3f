"""Offline acting agent: a deterministic stand-in for the acting LLM.

It reads ONLY the chat messages the loop builds (``agent.prompt`` format): the
system prompt (with any memory under ``## Relevant past experience``), the user
step messages (observation + ``Admissible actions:`` list) and its own past
answers. It never touches the environment, so a memory design can help it only
through the text it retrieves, exactly as with a real LLM.

Without memory it searches sensibly but blindly: it visits the receptacles in a
seeded random order (opening closed ones), takes the goal object when it sees
it, carries it to a tool (a seeded order of receptacles whose names suggest the
tool), applies the tool (a tool that fails is not tried again in that episode),
goes to the target, opens it if needed and puts; a two-object chore repeats the
search for the second object (never taking back what it put on the target).

Memory-reading contract (designs rely on this; keep it exact)
--------------------------------------------------------------
The goal is parsed from ``Your task is to: put a [clean|hot|cool] <kind> in <target>``
(or ``put two <kinds> in <target>``); its *object word* is ``<kind>`` (also matched
with a plural ``s``/``es``), its *transformation verb* is clean / heat (from "hot") / cool. The current world's
receptacles are the ``<word> <number>`` items of the initial observation (plus
every ``go to X`` admissible action).

Memory is read line by line (non-empty lines, 0-based index ``i``); each line has
weight ``1 / (1 + 0.1 * i)``, so earlier lines weigh more (designs rank best-first).
Matching is case-insensitive. In each line:

1. Everything from the first word ``put`` (``puts``/``putting``) onwards is
   ignored: it names where things were *put*, not where they were *found*. (So
   the goal line "Your task is to: put a mug in ..." never votes.)
2. A *receptacle mention* is ``<word> <number>`` naming a receptacle of the
   current world. Mentions of unknown receptacles are ignored.
3. A mention's *count* is a number written right after it: ``(x3)``, ``x3``,
   ``: 3 times``, ``(3 times)``, ``3x``. If the line has exactly one
   mention and no such count, a count anywhere in the line (``x3``, ``3 times``)
   applies to it. Default 1; capped at 50.
4. **Tool evidence**: if the goal has a transformation verb and the line contains
   that verb in any inflection (``clean|cleans|cleaned|cleaning``, same for heat
   and cool), every mention *after* the verb's first occurrence adds
   ``weight * count`` to that receptacle's tool vote; if the line also contains a
   negation or failure word (the list in 5, plus ``broken``, ``fail``/``fails``/
   ``failed``) the same amount is subtracted instead.
5. **Object evidence**: if the line contains the object word, every mention
   *before* the first transformation verb of any kind (or anywhere, when there is
   none) adds ``weight * count`` to that receptacle's object vote, except the
   goal's target receptacle. If the line also contains a negation word (``not``,
   ``no``, ``never``, ``empty``, ``nothing``, ``none``, ``absent``, ``missing``,
   ``without``) the same amount is subtracted instead.

The agent searches receptacles with positive object votes first (highest vote
first, ties in world order), then the unvoted ones in its seeded order, then the
negatively voted ones; it never searches the target. It tries tools with
positive tool votes first, then the name-based candidates, and tools with
negative votes last.

Raw trajectories vote naturally ("open cabinet 4 -> ... In it, you see a mug 1",
"take mug 1 from cabinet 4", "clean mug 1 with sinkbasin 1"); aggregated fact
lines ("mug: cabinet 4 (x4), drawer 2 (x1)", "clean with sinkbasin 1 (x3)") vote
more precisely. Lines about other objects or houses are simply not evidence.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from functools import lru_cache

from alma_tui.agent.prompt import ADMISSIBLE_HEADING, MEMORY_HEADING, parse_history

__all__ = ["Goal", "choose_action", "memory_votes", "parse_goal"]

_GOAL_RE = re.compile(
    r"your task is to:\s*put (?:a |an |some |the |(two) )?"
    r"(?:(clean|hot|cool|cold|heated|cooled|cleaned) )?"
    r"([a-z]+) (?:in/on|in|on|into|onto) (?:the )?([a-z]+ \d+)",
    re.IGNORECASE,
)
_ADJ_TO_VERB = {
    "clean": "clean",
    "cleaned": "clean",
    "hot": "heat",
    "heated": "heat",
    "cool": "cool",
    "cold": "cool",
    "cooled": "cool",
}
_MENTION = re.compile(r"\b([a-z]+) (\d+)\b")
_PUT = re.compile(r"\bput(?:s|ting)?\b")
_ANY_VERB = re.compile(r"\b(?:clean|heat|cool)(?:s|ed|ing)?\b")
_NEG = re.compile(r"\b(?:not|no|never|empty|nothing|none|absent|missing|without)\b")
_TOOL_NEG = re.compile(r"\b(?:not|no|never|empty|nothing|none|absent|missing|without|broken|fail|fails|failed)\b")
_COUNT_AFTER = re.compile(r"^\s*[:=-]?\s*\(?\s*(?:x\s*(\d+)|(\d+)\s*(?:x|times)\b)\s*\)?")
_COUNT_ANY = re.compile(r"(?:\b|\()x\s?(\d+)\b|\b(\d+)\s*times\b")
_TOOL_HINTS = {
    "clean": ("sinkbasin", "bathtubbasin", "sink", "basin"),
    "heat": ("microwave", "stoveburner", "oven", "toaster"),
    "cool": ("fridge", "freezer"),
}
_WEIGHT_DECAY = 0.1
_MAX_COUNT = 50


@dataclass(frozen=True)
class Goal:
    kind: str
    verb: str  # "" when no transformation is needed
    target: str
    count: int = 1  # objects of the kind the chore needs


def _singular(word: str) -> str:
    if word.endswith("ives"):
        return word[:-3] + "fe"
    if word.endswith("oes"):
        return word[:-2]
    return word[:-1] if word.endswith("s") else word


def parse_goal(text: str) -> Goal | None:
    m = _GOAL_RE.search(text)
    if not m:
        return None
    two, adj, kind, target = m.group(1), m.group(2), m.group(3).lower(), m.group(4).lower()
    if two:
        return Goal(_singular(kind), "", target, 2)
    return Goal(kind, _ADJ_TO_VERB.get((adj or "").lower(), ""), target)


def _count(line: str, end: int) -> int | None:
    m = _COUNT_AFTER.match(line[end:])
    if not m:
        return None
    return min(int(m.group(1) or m.group(2)), _MAX_COUNT)


@lru_cache(maxsize=256)
def memory_votes(
    memory: str, kind: str, verb: str, target: str, receptacles: frozenset[str]
) -> tuple[dict[str, float], dict[str, float]]:
    """(object votes, tool votes) per receptacle, by the contract in the module docstring."""
    obj: dict[str, float] = {}
    tool: dict[str, float] = {}
    obj_re = re.compile(rf"\b{re.escape(kind)}(?:s|es)?\b")
    verb_re = re.compile(rf"\b{verb}(?:s|ed|ing)?\b") if verb else None
    lines = [ln.lower() for ln in memory.splitlines() if ln.strip()]
    for i, line in enumerate(lines):
        weight = 1.0 / (1.0 + _WEIGHT_DECAY * i)
        put = _PUT.search(line)
        if put:
            line = line[: put.start()]
        mentions = [m for m in _MENTION.finditer(line) if f"{m.group(1)} {m.group(2)}" in receptacles]
        if not mentions:
            continue
        counts = [_count(line, m.end()) for m in mentions]
        if len(mentions) == 1 and counts[0] is None:
            rest = line[: mentions[0].start()] + " " + line[mentions[0].end() :]
            c = _COUNT_ANY.search(rest)
            if c:
                counts[0] = min(int(c.group(1) or c.group(2)), _MAX_COUNT)
        if verb_re is not None:
            v = verb_re.search(line)
            if v:
                tsign = -1.0 if _TOOL_NEG.search(line) else 1.0
                for m, n in zip(mentions, counts, strict=False):
                    if m.start() > v.start():
                        name = f"{m.group(1)} {m.group(2)}"
                        tool[name] = tool.get(name, 0.0) + tsign * weight * (n or 1)
        if obj_re.search(line):
            anyv = _ANY_VERB.search(line)
            limit = anyv.start() if anyv else len(line)
            sign = -1.0 if _NEG.search(line) else 1.0
            for m, n in zip(mentions, counts, strict=False):
                name = f"{m.group(1)} {m.group(2)}"
                if m.start() < limit and name != target:
                    obj[name] = obj.get(name, 0.0) + sign * weight * (n or 1)
    return obj, tool


@dataclass
class _View:
    """What the agent can reconstruct from the visible chat."""

    memory: str = ""
    initial: str = ""
    receptacles: list[str] = field(default_factory=list)
    admissible: list[str] = field(default_factory=list)
    loc: str | None = None
    holding: str | None = None
    transformed: bool = False
    checked: set[str] = field(default_factory=set)
    seen_at: dict[str, list[str]] = field(default_factory=dict)
    failed_tools: set[str] = field(default_factory=set)
    taken: list[str] = field(default_factory=list)
    placed: int = 0  # goal objects put on the target so far


@lru_cache(maxsize=4096)
def _split_user(content: str) -> tuple[str, tuple[str, ...]]:
    """(observation, admissible actions) of a step message; cached because the
    loop re-sends the same messages every step."""
    obs, _, rest = content.partition(ADMISSIBLE_HEADING)
    acts = tuple(ln[2:].strip() for ln in rest.splitlines() if ln.startswith("- "))
    return obs.strip(), acts


@lru_cache(maxsize=4096)
def _listed_objects(obs: str) -> list[str] | None:
    m = re.search(r"you see (.*?)\.(?:\s|$)", obs)
    if not m:
        return None
    return [f"{a} {b}" for a, b in _MENTION.findall(m.group(1))]


@lru_cache(maxsize=1024)
def _receptacles(initial: str, actions: tuple[str, ...]) -> list[str]:
    """Receptacles of the world: listed in the initial observation, plus "go to" targets."""
    first = re.search(r"you see (.*?)\.(?:\s|$)", initial)
    recs = [f"{a} {b}" for a, b in _MENTION.findall(first.group(1))] if first else []
    recs += [a[6:] for a in actions if a.startswith("go to ")]
    return list(dict.fromkeys(recs))


def _read(messages: list[dict], goal: Goal | None) -> _View:
    v = _View()
    if messages and messages[0].get("role") == "system":
        _, _, mem = messages[0].get("content", "").partition(MEMORY_HEADING)
        v.memory = mem.strip()
    users = [i for i, m in enumerate(messages) if m.get("role") == "user"]
    if not users:
        return v
    v.initial, acts0 = _split_user(messages[users[0]].get("content", ""))
    v.admissible = list(acts0)
    _, last_acts = _split_user(messages[users[-1]].get("content", ""))
    v.receptacles = _receptacles(v.initial, acts0 + last_acts)
    for a, obs, acts in _exchanges(messages[users[0] + 1 :]):
        if acts is not None:
            v.admissible = list(acts)
        if obs.startswith("Nothing happens"):
            continue
        if a.startswith("go to "):
            v.loc = a[6:]
        if a.startswith("take ") and obs.startswith("You pick up"):
            v.holding = a[5:].split(" from ")[0]
            v.taken.append(v.holding)
        elif a.startswith("put ") and obs.startswith("You put"):
            if goal is not None and v.holding and v.holding.startswith(goal.kind + " ") and v.loc == goal.target:
                v.placed += 1
                v.transformed = False
            v.holding = None
        elif goal and goal.verb and a.startswith(f"{goal.verb} ") and v.loc:
            if obs.startswith("You "):
                v.transformed = True
            else:  # the tool failed here ("The microwave 1 is broken."): never again this episode
                v.failed_tools.add(v.loc)
        listed = _listed_objects(obs)
        if listed is not None and v.loc is not None and a.split(" ")[0] in ("go", "open", "examine"):
            v.checked.add(v.loc)
            v.seen_at[v.loc] = listed
        if (
            acts is not None  # a summarised step does not list what was admissible then
            and goal is not None
            and goal.verb
            and v.holding
            and not v.transformed
            and v.loc
            and f"{goal.verb} {v.holding} with {v.loc}" not in acts
        ):
            v.failed_tools.add(v.loc)
    return v


def _exchanges(messages: list[dict]) -> list[tuple[str, str, tuple[str, ...] | None]]:
    """(action, observation, admissible actions or None) of each past step the chat shows:
    the summary of folded steps (``agent.prompt.history_message``), then the verbatim ones."""
    out: list[tuple[str, str, tuple[str, ...] | None]] = []
    last_action = ""
    for m in messages:
        content = str(m.get("content", ""))
        if m.get("role") == "assistant":
            last_action = " ".join(content.strip().lower().split())
            continue
        if m.get("role") != "user":
            continue
        folded = parse_history(content)
        if folded is not None:
            out += [(" ".join(a.lower().split()), o, None) for a, o in folded]
            continue
        obs, acts = _split_user(content)
        out.append((last_action, obs, acts))
    return out


def _ranked(votes: dict[str, float], base: list[str]) -> list[str]:
    pos = sorted((r for r in base if votes.get(r, 0.0) > 0), key=lambda r: -votes[r])
    neutral = [r for r in base if votes.get(r, 0.0) == 0]
    neg = sorted((r for r in base if votes.get(r, 0.0) < 0), key=lambda r: votes[r], reverse=True)
    return pos + neutral + neg


@lru_cache(maxsize=1024)
def _search_order(seed: int, initial: str, receptacles: tuple[str, ...]) -> list[str]:
    """The memory-less search order: a seeded shuffle, fixed for the whole episode."""
    order = list(receptacles)
    random.Random(f"{seed}|{initial}").shuffle(order)
    return order


def _fallback(v: _View, rng: random.Random) -> str:
    acts = [a for a in v.admissible if a not in ("look", "inventory")] or v.admissible
    return rng.choice(acts) if acts else "look"


def choose_action(messages: list[dict], seed: int) -> str:
    """Pick one admissible action from the chat alone (deterministic for ``seed``)."""
    users = [m for m in messages if m.get("role") == "user"]
    initial = users[0].get("content", "") if users else ""
    goal = parse_goal(initial)
    v = _read(messages, goal)
    if goal is None:
        return _fallback(v, random.Random(f"{seed}|{len(messages)}"))
    rng = random.Random(f"{seed}|{len(messages)}")
    adm = set(v.admissible)
    order = _search_order(seed, v.initial, tuple(r for r in v.receptacles if r != goal.target))
    obj_votes, tool_votes = memory_votes(v.memory, goal.kind, goal.verb, goal.target, frozenset(v.receptacles))

    if v.holding is not None:
        if not v.holding.startswith(goal.kind + " "):
            put_here = [a for a in v.admissible if a.startswith(f"put {v.holding} ")]
            if put_here:
                return put_here[0]
        elif goal.verb and not v.transformed:
            act = f"{goal.verb} {v.holding} with {v.loc}"
            if act in adm and v.loc not in v.failed_tools:
                return act
            hints = _TOOL_HINTS.get(goal.verb, ())
            cands = [r for r in order if r.split()[0] in hints]
            tools = _ranked(tool_votes, [r for r in v.receptacles if tool_votes.get(r, 0) > 0])
            tools += [r for r in cands if r not in tools and tool_votes.get(r, 0) == 0]
            tools += [r for r in _ranked(tool_votes, cands) if r not in tools]
            tools += [r for r in order if r not in tools]
            for r in tools:
                if r not in v.failed_tools and r != v.loc and f"go to {r}" in adm:
                    return f"go to {r}"
        else:
            puts = [a for a in v.admissible if a.startswith(f"put {v.holding} ") and a.endswith(f" {goal.target}")]
            if puts:
                return puts[0]
            if v.loc == goal.target and f"open {goal.target}" in adm:
                return f"open {goal.target}"
            if f"go to {goal.target}" in adm:
                return f"go to {goal.target}"
        return _fallback(v, rng)

    takes = [a for a in v.admissible if a.startswith(f"take {goal.kind} ") and not a.endswith(f" from {goal.target}")]
    if takes:
        return takes[0]
    if v.loc and v.loc not in v.checked and f"open {v.loc}" in adm:
        return f"open {v.loc}"
    for r, objs in v.seen_at.items():
        if (
            r != goal.target
            and any(o.startswith(goal.kind + " ") and o not in v.taken for o in objs)
            and f"go to {r}" in adm
        ):
            return f"go to {r}"
    for r in _ranked(obj_votes, order):
        if r not in v.checked and r != v.loc and f"go to {r}" in adm:
            return f"go to {r}"
    return _fallback(v, rng)


# it reads `--agent-history summary` messages itself (see _exchanges): the provider need not unfold them
choose_action.reads_history_summary = True  # type: ignore[attr-defined]
