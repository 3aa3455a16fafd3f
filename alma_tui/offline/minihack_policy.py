"""Offline acting policy for ``--domain minihack``: reads the rendered text, never the game.

It parses the last observation the chat holds (``alma_tui.domains.minihack.render``: the
``Message:`` line, the ``Map`` block with ``@``, the ``Visible:`` list, the inventory) and the
admissible actions, then:

- answers the game's questions first: ``y`` to a yes/no question, and to "What do you want
  to ...? [...]" the offered inventory letter whose item matches the goal's object (else the
  last offered letter, the newest item); "In what direction?" gets the direction it last moved;
- on a staircase goal: ``down`` when on ``>``, else the first step of a shortest path to a
  visible ``>`` (breadth-first over floor, corridor, doorway and item cells; traps ``^`` only
  when nothing else leads there), else a step towards the nearest unexplored edge of the
  map; a move into a closed door (message "The door is closed.") is followed by ``open``;
- on a skill goal naming an object symbol (``%``, ``)``, ``[``): walk onto the nearest such
  object, then try skill verbs one at a time (``pick up``, ``eat``, ``wield``, ``wear``,
  ``put on``, ``apply``, ``quaff``, ``pray``, ...) in the order below, never repeating one that
  the game refused, answering each question it asks; with no object symbol it tries the verbs
  where it stands.

Memory-reading contract
-----------------------
Memory (the text under ``## Relevant past experience``) decides the *order of the skill
verbs*. It is read line by line. A *polarity* starts at +1; a line containing ``failure``,
``failed`` or ``unsuccessful`` sets it to -1, one containing ``success``, ``succeeded``,
``solved`` or ``won`` sets it back to +1 (so trajectory blocks headed "Outcome: success" or
"Outcome: failure" carry their sign). A line whose *action* is a skill verb (the line starts
with the verb, optionally after ``action:`` or ``- ``, as in ``eat -> Message: ...``) votes
``polarity`` for that verb, or ``-polarity`` when the same line says the game refused it
(``don't have anything``, ``cannot``, ``can't``, ``never mind``, ``nothing happens``, ``not
able``). A line ``use <verb>`` / ``verb: <verb>`` votes like an action line. Verbs with
positive votes are tried first (highest first); unvoted verbs follow in the default order;
negative ones last. Navigation ignores memory: its layouts differ per seed.
"""

from __future__ import annotations

import re
from collections import deque

from alma_tui.agent.prompt import ADMISSIBLE_HEADING, MEMORY_HEADING

__all__ = ["SKILL_VERBS", "choose_action", "verb_votes"]

SKILL_VERBS = ("pick up", "eat", "wield", "wear", "put on", "apply", "quaff", "pray", "read")
_MOVES = {
    (0, -1): "north",
    (1, 0): "east",
    (0, 1): "south",
    (-1, 0): "west",
    (1, -1): "northeast",
    (1, 1): "southeast",
    (-1, 1): "southwest",
    (-1, -1): "northwest",
}
_WALK = set('.#><%)[(_{}!?=/"*$0') | {"@"}
_REFUSED = re.compile(r"don't have anything|cannot|can't|never mind|nothing happens|not able|you have no", re.I)
_FAIL = re.compile(r"\b(?:failure|failed|unsuccessful)\b", re.I)
_WIN = re.compile(r"\b(?:success|succeeded|solved|won)\b", re.I)
_VERB_LINE = re.compile(r"^\s*(?:[-*]\s*)?(?:action:\s*|use\s+|verb:\s*)?(" + "|".join(SKILL_VERBS) + r")\b", re.I)
_SYMBOLS = {
    "%": ("food", "apple", "ration", "corpse"),
    ")": ("weapon", "dagger", "sword", "axe", "spear", "mace", "bow"),
    "[": ("armour", "armor", "robe", "cloak", "helmet", "boots", "gloves", "shield", "mail"),
    "_": ("altar",),
}


def verb_votes(memory: str) -> dict[str, float]:
    """Skill-verb votes from memory, by the contract in the module docstring."""
    votes: dict[str, float] = {}
    polarity = 1.0
    for line in memory.splitlines():
        if _FAIL.search(line):
            polarity = -1.0
        elif _WIN.search(line):
            polarity = 1.0
        m = _VERB_LINE.match(line)
        if m:
            verb = m.group(1).lower()
            votes[verb] = votes.get(verb, 0.0) + (-polarity if _REFUSED.search(line) else polarity)
    return votes


def _parse(content: str) -> tuple[str, list[str], str, list[str], list[str]]:
    """(message, map rows, visible text, inventory items, admissible) of a step message."""
    obs, _, rest = content.partition(ADMISSIBLE_HEADING)
    acts = [ln[2:].strip() for ln in rest.splitlines() if ln.startswith("- ")]
    message, rows, visible, inventory = "", [], "", []
    in_map = False
    for line in obs.splitlines():
        if line.startswith("Message: "):
            message = line[9:]
        elif line.startswith("Map ("):
            in_map = True
        elif line.startswith("Visible: "):
            in_map = False
            visible = line[9:]
        elif line.startswith("Inventory: "):
            in_map = False
            inventory = [x.strip() for x in line[11:].split(";")]
        elif in_map:
            rows.append(line)
    return message, rows, visible, inventory, acts


def _find(rows: list[str], ch: str) -> list[tuple[int, int]]:
    return [(x, y) for y, r in enumerate(rows) for x, c in enumerate(r) if c == ch]


def _cell(rows: list[str], x: int, y: int) -> str:
    return rows[y][x] if 0 <= y < len(rows) and 0 <= x < len(rows[y]) else " "


def _path_step(rows: list[str], start: tuple[int, int], goals: set[tuple[int, int]], traps: bool) -> str | None:
    """Direction word of the first step of a shortest path from start to any goal cell."""
    walk = _WALK | ({"^"} if traps else set()) | {"+"}
    first: dict[tuple[int, int], str | None] = {start: None}
    queue = deque([start])
    while queue:
        x, y = queue.popleft()
        if (x, y) in goals and (x, y) != start:
            return first[(x, y)]
        if _cell(rows, x, y) == "+" and (x, y) != start:
            continue  # a door is a destination, not a passage, until it is open
        for (dx, dy), word in _MOVES.items():
            nxt = (x + dx, y + dy)
            if nxt in first or _cell(rows, *nxt) not in walk:
                continue
            if dx and dy and "+" in (_cell(rows, x, y), _cell(rows, *nxt)):
                continue  # NetHack forbids diagonal moves through doorways
            first[nxt] = first[(x, y)] or word
            queue.append(nxt)
    return None


def _frontier(rows: list[str]) -> set[tuple[int, int]]:
    """Walkable cells next to an unseen one: where exploring continues."""
    out = set()
    for y, r in enumerate(rows):
        for x, c in enumerate(r):
            if c in _WALK and c != "@" and any(_cell(rows, x + dx, y + dy) == " " for dx, dy in _MOVES):
                out.add((x, y))
    return out


def _answer_letter(message: str, inventory: list[str], goal_words: tuple[str, ...], acts: list[str]) -> str:
    offered = [a for a in acts if len(a) == 1 and a.isalpha() and a not in ("y", "n")]
    for item in reversed(inventory):
        letter, _, text = item.partition(": ")
        if letter in offered and any(w in text.lower() for w in goal_words) and "in hand" not in text:
            return letter
    return offered[-1] if offered else "escape"


def choose_action(messages: list[dict], seed: int) -> str:
    """One admissible action word, chosen from the chat alone (deterministic)."""
    users = [str(m.get("content", "")) for m in messages if m.get("role") == "user"]
    if not users:
        return "wait"
    goal = next((ln[11:] for ln in users[0].splitlines() if ln.startswith("Your task: ")), "").lower()
    message, rows, visible, inventory, acts = _parse(users[-1])
    adm = set(acts)
    said = [" ".join(str(m.get("content", "")).lower().split()) for m in messages if m.get("role") == "assistant"]
    low = message.lower()
    if "y" in adm and "n" in adm:
        return "y"
    if "in what direction" in low:
        last_move = next((a for a in reversed(said) if a in _MOVES.values()), "north")
        return last_move if last_move in adm else next(iter(_MOVES.values()))
    symbol = next((s for s in _SYMBOLS if f"({s})" in goal), "")
    if any(len(a) == 1 and a.isalpha() for a in acts):
        return _answer_letter(message, inventory, _SYMBOLS.get(symbol, ()), acts)
    if "door is closed" in low and "open" in adm:
        return "open"
    me = next(iter(_find(rows, "@")), None)
    if "staircase" in goal or not symbol:
        if "staircase down: under you" in visible and "down" in adm:
            return "down"
        if me is not None:
            for traps in (False, True):
                step = _path_step(rows, me, set(_find(rows, ">")), traps)
                if step in adm:
                    return step
            step = _path_step(rows, me, _frontier(rows), True)
            if step in adm:
                return step
        moves = [a for a in acts if a in _MOVES.values()]
        return moves[(seed + len(said)) % len(moves)] if moves else (acts[0] if acts else "wait")
    # a skill task: stand on the object (if any is still on the map), then try verbs
    if symbol and me is not None and _find(rows, symbol):
        step = _path_step(rows, me, set(_find(rows, symbol)), True)
        if step in adm:
            return step
    memory = ""
    if messages and messages[0].get("role") == "system":
        memory = str(messages[0].get("content", "")).partition(MEMORY_HEADING)[2]
    votes = verb_votes(memory)
    base = list(SKILL_VERBS)
    order = sorted(base, key=lambda v: (-votes.get(v, 0.0) if votes.get(v, 0.0) > 0 else 0.0, 0))
    order = [v for v in order if votes.get(v, 0.0) >= 0] + [v for v in order if votes.get(v, 0.0) < 0]
    tried = set(said)
    for verb in order:
        if verb in adm and verb not in tried:
            return verb
    for verb in order:  # everything tried once: start over
        if verb in adm:
            return verb
    return acts[0] if acts else "wait"
