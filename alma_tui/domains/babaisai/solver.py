"""Breadth-first search over Baba Is AI boards: optimal solutions and bounded sub-goals.

Why here: the level generator keeps only levels this proves solvable within the step
limit, the tests re-prove it per family, and each level's optimal length is known (the
benchmark's reward depends on steps). The offline acting policy reuses :func:`search` with
its own goal (form a rule, break one, walk to a WIN object) on the board it reads back
from the text.

BFS with a fixed action order returns the lexicographically first shortest path, and every
suffix of such a path is again the first shortest path from where it starts; so a plan
cached along a path equals what a fresh search would return (the policy relies on it).
``idle`` never changes a board, so it is never expanded.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from alma_tui.domains.babaisai.engine import Game, Level, Outcome

__all__ = ["MOVES", "search", "solve"]

MOVES = ("up", "right", "down", "left")


def search(
    start: Game,
    goal: Callable[[Game], bool],
    max_depth: int,
    max_nodes: int = 200_000,
    allow: Callable[[Outcome], bool] | None = None,
) -> list[str] | None:
    """Shortest action list from ``start`` to a board where ``goal`` holds (lost boards are
    dead ends); ``[]`` when it holds already; None when no path of at most ``max_depth``
    moves exists among the first ``max_nodes`` boards. ``allow`` can forbid moves by their
    outcome (the policy's walking planner forbids changing rules)."""
    if goal(start):
        return []
    if start.lost or max_depth <= 0:
        return None
    parents: dict[tuple, tuple[tuple, str] | None] = {start.fast_key(): None}
    frontier: deque[tuple[Game, tuple, int]] = deque([(start, start.fast_key(), 0)])
    while frontier:
        game, key, depth = frontier.popleft()
        for move in MOVES:
            nxt = game.copy()
            out = nxt.step(move)
            if not out.moved or nxt.lost or (allow is not None and not allow(out)):
                continue
            k = nxt.fast_key()
            if k in parents:
                continue
            parents[k] = (key, move)
            if goal(nxt):
                path = [move]
                back = parents[key]
                while back is not None:
                    key, m = back
                    path.append(m)
                    back = parents[key]
                return path[::-1]
            if depth + 1 < max_depth:
                frontier.append((nxt, k, depth + 1))
            if len(parents) > max_nodes:
                return None
    return None


def solve(level: Level, max_steps: int = 20, max_nodes: int = 200_000) -> list[str] | None:
    """An optimal winning action list of at most ``max_steps`` moves, or None."""
    return search(Game(level), lambda g: g.won, max_steps, max_nodes)
