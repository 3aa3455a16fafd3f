"""Duplicate designs: two modules that differ only in docstrings, comments, formatting or
the names of their constants are the same design, and evaluating it again is wasted work.

The normal form is the module's AST without docstrings (comments and layout are not in
the AST) and with module-level constants renamed in order of definition, unparsed back
to text. A module that does not parse has no normal form (validation will reject it).
"""

from __future__ import annotations

import ast
import hashlib
import re
from collections.abc import Iterable
from typing import Any

from alma_tui import pysource

__all__ = ["duplicate_of", "find_duplicate", "normal_form"]

_CONSTANT = re.compile(r"^_*[A-Z][A-Z0-9_]*$")


class _Normaliser(ast.NodeTransformer):
    def __init__(self, names: dict[str, str]) -> None:
        self.names = names

    def _strip_docstring(self, node: ast.AST) -> None:
        body = getattr(node, "body", None)
        if (
            isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            body.pop(0)
            if not body:
                body.append(ast.Pass())

    def generic_visit(self, node: ast.AST) -> ast.AST:
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            self._strip_docstring(node)
        return super().generic_visit(node)

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id in self.names:
            node.id = self.names[node.id]
        return node


def normal_form(code: str) -> str | None:
    """The design's code with docstrings, comments, layout and constant names normalised."""
    try:
        tree = pysource.parse(code or "")
    except (SyntaxError, ValueError):
        return None
    names: dict[str, str] = {}
    for stmt in tree.body:
        targets = (
            stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target] if isinstance(stmt, ast.AnnAssign) else []
        )
        for t in targets:
            if isinstance(t, ast.Name) and _CONSTANT.match(t.id) and t.id not in names:
                names[t.id] = f"_CONST{len(names)}"
    tree = _Normaliser(names).visit(tree)
    return ast.unparse(ast.fix_missing_locations(tree))


def _digest(code: str) -> str | None:
    form = normal_form(code)
    return None if form is None else hashlib.sha256(form.encode()).hexdigest()


def duplicate_of(code: str, archive: Iterable[tuple[str, str]]) -> str | None:
    """The id of the first archived ``(id, code)`` whose normal form equals ``code``'s, else None."""
    mine = _digest(code)
    if mine is None:
        return None
    for design_id, other in archive:
        if _digest(other) == mine:
            return design_id
    return None


def find_duplicate(store: Any, design_id: str, code: str) -> str | None:
    """The archived design (accepted or still in the pipeline) whose code ``code`` duplicates."""
    archive = [(d.id, d.code) for d in store.designs() if d.id != design_id and d.code and d.status != "rejected"]
    return duplicate_of(code, archive)
