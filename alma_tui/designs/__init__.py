"""Built-in memory designs (the baselines and the meta agent's examples).

Each ``<name>.py`` in this package is one design written only against
``alma_tui.design_api`` (stdlib imports only), because the engine ships its
*source* to the sandbox child; ``BUILTIN`` is discovered from the files so a new
baseline needs no registration. ``load_builtin_class`` imports in-process and is
meant for tests and benchmarks only.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

from alma_tui import pysource

__all__ = ["BUILTIN", "builtin_source", "load_builtin_class"]

_DIR = Path(__file__).resolve().parent


def _discover() -> dict[str, tuple[str, str]]:
    found: dict[str, tuple[str, str]] = {}
    for path in sorted(_DIR.glob("*.py")):
        if path.name.startswith("_"):
            continue
        try:
            doc = ast.get_docstring(pysource.parse(path.read_text(encoding="utf-8"))) or ""
        except SyntaxError:
            continue
        title = doc.strip().splitlines()[0].rstrip(".") if doc.strip() else path.stem
        found[path.stem] = (title, str(path))
    return found


BUILTIN: dict[str, tuple[str, str]] = _discover()


def _check(name: str) -> None:
    if name not in BUILTIN:
        raise KeyError(f"unknown built-in design {name!r}; known: {', '.join(sorted(BUILTIN))}")


def builtin_source(name: str) -> str:
    """Source code of a built-in design (what the sandbox runs and the lineage stores)."""
    _check(name)
    return Path(BUILTIN[name][1]).read_text(encoding="utf-8")


def load_builtin_class(name: str) -> type:
    """The MemoryDesign subclass defined in a built-in design module (in-process)."""
    from alma_tui.design_api import MemoryDesign

    _check(name)
    mod = importlib.import_module(f"{__name__}.{name}")
    classes = [
        c
        for _, c in inspect.getmembers(mod, inspect.isclass)
        if issubclass(c, MemoryDesign) and c is not MemoryDesign and c.__module__ == mod.__name__
    ]
    if len(classes) != 1:
        raise TypeError(f"design {name!r} must define exactly one MemoryDesign subclass, found {len(classes)}")
    return classes[0]
