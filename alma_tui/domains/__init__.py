"""Domain registry: names -> lazily imported domain classes.

Why lazy: heavy domains (textworld, minihack, alfworld) pull in big packages;
``alma-tui domains`` must list them, with what each still needs, without
importing any of them. Only ``get_domain(name)`` imports the chosen module.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass

__all__ = ["REGISTRY", "DomainError", "get_domain", "list_domains"]


class DomainError(LookupError):
    """A domain is unknown or cannot be used here (one line for the user)."""


@dataclass(frozen=True)
class _Entry:
    module: str
    attr: str
    description: str
    packages: tuple[str, ...] = ()  # importable top-level packages it needs
    hint: str = ""  # how to get what is missing


REGISTRY: dict[str, _Entry] = {
    "household": _Entry(
        "alma_tui.domains.household",
        "HouseholdDomain",
        "Built-in ALFWorld-like text households (find, take, clean/heat/cool, put); fast, no dependencies",
    ),
    "textworld": _Entry(
        "alma_tui.domains.textworld",
        "TextWorldDomain",
        "TextWorld cooking and treasure-hunter games generated locally",
        ("textworld",),
        "pip install textworld",
    ),
    "minihack": _Entry(
        "alma_tui.domains.minihack",
        "MiniHackDomain",
        "MiniHack navigation and skill tasks with language observations",
        ("minihack",),
        "pip install minihack",
    ),
    "babaisai": _Entry(
        "alma_tui.domains.babaisai",
        "BabaIsAIDomain",
        "Baba Is AI rule-manipulation puzzles (built-in engine, 7 families); no dependencies",
    ),
    "alfworld": _Entry(
        "alma_tui.domains.alfworld",
        "ALFWorldDomain",
        "ALFWorld household games (the paper's benchmark)",
        ("alfworld",),
        "pip install alfworld && alfworld-download (set ALFWORLD_DATA)",
    ),
}


def _requirements(entry: _Entry) -> str | None:
    """Cheap check (no imports): is our adapter present and are its packages installed?"""
    if importlib.util.find_spec(entry.module) is None:
        return "planned, not built yet"
    missing = [p for p in entry.packages if importlib.util.find_spec(p) is None]
    if missing:
        return f"needs {', '.join(missing)}: {entry.hint}" if entry.hint else f"needs {', '.join(missing)}"
    return None


def list_domains() -> list[tuple[str, str, str | None]]:
    """(name, description, requirements or None when usable now) for every known domain."""
    return [(name, e.description, _requirements(e)) for name, e in REGISTRY.items()]


def get_domain(name: str, **kwargs):
    """Instantiate a domain by name. Unknown names, and known domains whose adapter
    cannot be imported, raise DomainError saying what is missing. Data-level needs
    are the caller's to check via ``requirements()``."""
    if name not in REGISTRY:
        ready = [n for n, e in REGISTRY.items() if importlib.util.find_spec(e.module) is not None]
        raise DomainError(f"unknown domain {name!r}; available: {', '.join(ready)}")
    entry = REGISTRY[name]
    missing = _requirements(entry)
    if missing and importlib.util.find_spec(entry.module) is None:
        raise DomainError(f"domain {name!r} is {missing}")
    try:
        mod = importlib.import_module(entry.module)
    except ImportError as exc:
        raise DomainError(f"domain {name!r} cannot load ({exc}); {missing or entry.hint}") from exc
    return getattr(mod, entry.attr)(**kwargs)
