"""Text observation of a Baba Is AI board, as the benchmark's language agents saw it.

The format follows the BALROG language wrapper the paper's agents used (active rules, then
every object and word tile with its offset from the player: "rule `win` 2 steps to the
right and 1 step up", "key 3 steps down"), with three small changes that any agent needs
and the image showed: the rules are one line, followed by the words that are in no rule
(so the first line says what kind of level this is), the distance to each edge of the map
is given, and objects keep their colour.
The player is the first ``YOU`` object in reading order; it is listed as
"baba at your position".
"""

from __future__ import annotations

from alma_tui.domains.babaisai.engine import NOUNS, Game

__all__ = ["loose_words", "offset_text", "render", "rules_line"]


def _n(v: int, unit_one: str, unit_many: str) -> str:
    return f"{v} {unit_one if v == 1 else unit_many}"


def offset_text(dx: int, dy: int) -> str:
    """'2 steps to the right and 1 step up'; 'at your position' for (0, 0)."""
    parts = []
    if dx:
        parts.append(f"{_n(abs(dx), 'step', 'steps')} to the {'right' if dx > 0 else 'left'}")
    if dy:
        parts.append(f"{_n(abs(dy), 'step', 'steps')} {'down' if dy > 0 else 'up'}")
    return " and ".join(parts) if parts else "at your position"


def loose_words(game: Game) -> list[str]:
    """Word tiles that are not part of an active rule, in reading order."""
    w, h = game.width, game.height
    words = {c: k.lower() for k, c in zip(game.kinds, game.cells, strict=True) if c >= 0 and k.isupper()}
    used: set[int] = set()
    for cell, word in words.items():
        if word not in NOUNS:
            continue
        x, y = cell % w, cell // w
        for step, fits in ((1, x + 2 < w), (w, y + 2 < h)):
            line = (cell, cell + step, cell + 2 * step)
            if fits and words.get(line[1]) == "is" and (word, words.get(line[2], "")) in game.rules:
                used.update(line)
    return [words[c] for c in sorted(words) if c not in used]


def rules_line(game: Game) -> str:
    """The first line: active rules, then the words not in a rule, each in alphabetical
    order (so the line alone says what kind of level this is, the same way for two levels
    of one kind: retrieval keyed on it finds siblings)."""
    rules = ", ".join(sorted(f"{n} is {p}" for n, p in game.rules))
    loose = ", ".join(sorted(loose_words(game)))
    return f"Active rules: {rules or 'none'}; words not in a rule: {loose or 'none'}."


def render(game: Game) -> str:
    """The observation text for the current board."""
    w = game.width
    you = game.you_indices()
    if not you:
        return f"{rules_line(game)}\nNo object is YOU: nothing can move."
    ref = min(you, key=lambda i: game.cells[i])
    px, py = game.cells[ref] % w, game.cells[ref] // w
    edge = (
        f"The map edge is {_n(px + 1, 'step', 'steps')} to the left, "
        f"{_n(w - px, 'step', 'steps')} to the right, {_n(py + 1, 'step', 'steps')} up "
        f"and {_n(game.height - py, 'step', 'steps')} down."
    )
    order = sorted(
        (i for i in range(len(game.kinds)) if game.cells[i] >= 0),
        key=lambda i: (i != ref, game.cells[i], game.kinds[i]),
    )
    lines = []
    for i in order:
        kind, cell = game.kinds[i], game.cells[i]
        name = f"rule `{kind.lower()}`" if kind.isupper() else f"{game.colors[i]} {kind}".strip()
        lines.append(f"{name} {offset_text(cell % w - px, cell // w - py)}")
    return "\n".join([rules_line(game), edge, "", "Objects on the map:", *lines])
