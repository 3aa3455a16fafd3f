"""Parsing Python source safely while other threads parse too.

CPython 3.11 keeps the counter that guards the C-to-Python AST conversion in state shared by
every thread (python/cpython#106905, #95185). When two threads build ASTs at once, and the
engine's concurrent children do (dedup, the meta agent's code check, the offline analysis),
one of them can fail at random with ``SystemError: AST constructor recursion depth mismatch``
and take the run down with it. Every ``ast.parse`` and ``ast.literal_eval`` in the package
goes through this module's lock instead; parsing a design takes about a millisecond, so the
lock costs nothing measurable.
"""

from __future__ import annotations

import ast
import threading
from typing import Any

_AST_LOCK = threading.Lock()


def parse(source: str, filename: str = "<unknown>") -> ast.Module:
    """``ast.parse(source)``, serialised with every other parse in this process."""
    with _AST_LOCK:
        return ast.parse(source, filename=filename)


def literal_eval(text: str) -> Any:
    """``ast.literal_eval(text)``, serialised like :func:`parse` (it parses first)."""
    with _AST_LOCK:
        return ast.literal_eval(text)
