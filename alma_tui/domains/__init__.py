"""Domains: the built-in registry, plug-ins found through entry points, and domains in a file.

Why lazy: heavy domains (textworld, minihack, alfworld) pull in big packages;
``alma-tui domains`` must list them, with what each still needs, without importing any
of them. Plug-ins (entry-point group ``alma_tui.domains``: name = domain name, value =
``module:Class``) are listed from package metadata alone; only ``get_domain(name)``
imports the chosen module, and only then is the class checked against the protocol
(:class:`alma_tui.domains.base.Domain`). ``--domain path/to/file.py:Class`` loads a
domain that is not packaged. Whatever goes wrong with one domain is one line
(:class:`DomainError`) naming it; it never hides the others.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "ENTRY_POINT_GROUP",
    "REGISTRY",
    "DomainError",
    "check_domain",
    "get_domain",
    "is_file_ref",
    "list_domains",
    "normalise_ref",
    "plugins",
    "prepare_domain",
]

ENTRY_POINT_GROUP = "alma_tui.domains"


class DomainError(LookupError):
    """A domain is unknown or cannot be used here (one line for the user)."""


@dataclass(frozen=True)
class _Entry:
    module: str
    attr: str
    description: str
    packages: tuple[str, ...] = ()  # importable top-level packages it needs
    hint: str = ""  # how to get what is missing
    # "module:function" -> None or one line: a light (stdlib-only) check of what packages do not
    # cover, e.g. a data download; called only once the packages are installed
    check: str = ""


REGISTRY: dict[str, _Entry] = {
    "household": _Entry(
        "alma_tui.domains.household",
        "HouseholdDomain",
        "Built-in ALFWorld-like text households (find, take, clean/heat/cool, put); fast, no dependencies",
    ),
    "textworld": _Entry(
        "alma_tui.domains.textworld",
        "TextWorldDomain",
        "TextWorld treasure-hunt quests in shared generated worlds (local generation, cached)",
        ("textworld",),
        'pip install "alma-tui[textworld]"',
    ),
    "minihack": _Entry(
        "alma_tui.domains.minihack",
        "MiniHackDomain",
        "MiniHack (NetHack) navigation and skill tasks, rendered as text",
        ("minihack", "nle"),
        "pip install 'alma-tui[minihack]'",
    ),
    "babaisai": _Entry(
        "alma_tui.domains.babaisai",
        "BabaIsAIDomain",
        "Baba Is AI rule-manipulation puzzles (built-in engine, 7 families); no dependencies",
    ),
    "alfworld": _Entry(
        "alma_tui.domains.alfworld",
        "ALFWorldDomain",
        "ALFWorld household games played by the real alfworld package (the paper's benchmark)",
        ("alfworld",),
        "pip install 'alma-tui[alfworld]' && alfworld-download (data: $ALFWORLD_DATA, default ~/.cache/alfworld)",
        "alma_tui.domains.alfworld_data:data_problem",
    ),
}

# what a domain must have (base.Domain); description, requirements() and prepare() are optional
_ATTRS: dict[str, type | tuple[type, ...]] = {"name": str, "instructions": str, "max_steps": int}
_METHODS = ("tasks", "make_env")
_OPTIONAL_METHODS = ("requirements", "prepare")


def _requirements(entry: _Entry) -> str | None:
    """Cheap check (no imports): is our adapter present and are its packages installed?"""
    if importlib.util.find_spec(entry.module) is None:
        return "planned, not built yet"
    missing = [p for p in entry.packages if importlib.util.find_spec(p) is None]
    if missing:
        return f"needs {', '.join(missing)}: {entry.hint}" if entry.hint else f"needs {', '.join(missing)}"
    if entry.check:
        module, _, attr = entry.check.partition(":")
        problem: str | None = getattr(importlib.import_module(module), attr)()
        return problem
    return None


# -- plug-ins (entry points, read from metadata only) ---------------------------------------------
@dataclass(frozen=True)
class Plugin:
    name: str
    value: str  # "module:Class"
    dist: str  # distribution name and version, for messages
    summary: str
    requires: tuple[str, ...]  # the distribution's requirements (PEP 508 strings)

    @property
    def label(self) -> str:
        return f"plug-in {self.name!r} ({self.value} from {self.dist})"


def plugins() -> list[Plugin]:
    """Installed plug-in domains, from entry-point metadata (nothing is imported)."""
    out: list[Plugin] = []
    seen: set[str] = set()
    for ep in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        if ep.name in seen:  # the same distribution on sys.path twice
            continue
        seen.add(ep.name)
        dist = getattr(ep, "dist", None)
        meta = dist.metadata if dist is not None else None
        out.append(
            Plugin(
                ep.name,
                ep.value,
                f"{dist.name} {dist.version}" if dist is not None else "unknown distribution",
                (meta.get("Summary") if meta is not None else None) or "plug-in domain",
                tuple(dist.requires or ()) if dist is not None else (),
            )
        )
    return out


_REQ_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _plugin_problem(p: Plugin) -> str | None:
    """What keeps a plug-in from loading, as far as metadata tells (no imports)."""
    module, sep, attr = p.value.partition(":")
    if not sep or not module.strip() or not attr.strip():
        return f"broken: entry point value {p.value!r} is not 'module:Class'"
    top = module.strip().split(".")[0]
    if importlib.util.find_spec(top) is None:
        return f"broken: module {top!r} is not installed (reinstall {p.dist.split()[0]})"
    missing = []
    for req in p.requires:
        if ";" in req and "extra" in req.split(";", 1)[1]:
            continue  # an optional extra's requirement
        m = _REQ_NAME.match(req)
        if m is None:
            continue
        try:
            importlib.metadata.distribution(m.group(1))
        except importlib.metadata.PackageNotFoundError:
            missing.append(m.group(1))
    if missing:
        return f"needs {', '.join(missing)}: pip install {' '.join(missing)}"
    return None


def list_domains() -> list[tuple[str, str, str | None]]:
    """(name, description, requirements or None when usable now) for every known domain:
    built-in first, then plug-ins (a plug-in named like a built-in is listed as shadowed)."""
    rows = [(name, e.description, _requirements(e)) for name, e in REGISTRY.items()]
    for p in plugins():
        desc = f"{p.summary} [plug-in: {p.dist}]"
        if p.name in REGISTRY:
            rows.append((f"{p.name}", desc, f"shadowed by the built-in domain {p.name!r}; rename the entry point"))
        else:
            rows.append((p.name, desc, _plugin_problem(p)))
    return rows


# -- loading and checking -------------------------------------------------------------------------
def is_file_ref(ref: str) -> bool:
    path, sep, attr = ref.rpartition(":")
    return bool(sep) and path.endswith(".py") and bool(attr)


def normalise_ref(ref: str) -> str:
    """A file reference with an absolute path (the engine may run elsewhere); names unchanged."""
    if not is_file_ref(ref):
        return ref
    path, _, attr = ref.rpartition(":")
    return f"{Path(path).expanduser().resolve()}:{attr}"


def _load_file(ref: str) -> Any:
    path_s, _, attr = ref.rpartition(":")
    path = Path(path_s).expanduser()
    label = f"domain file {path_s}"
    if not path.is_file():
        raise DomainError(f"{label}: no such file")
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:10]
    name = f"alma_tui_domain_file_{re.sub(r'[^0-9A-Za-z_]', '_', path.stem)}_{digest}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise DomainError(f"{label}: cannot be loaded as a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses and pickling look the module up by name
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            del sys.modules[name]
            raise DomainError(f"{label} failed to import: {_one_line(exc)}") from exc
    cls = getattr(sys.modules[name], attr, None)
    if cls is None:
        raise DomainError(f"{label} has no {attr!r}")
    return _construct(cls, label)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__


def _construct(cls: Any, label: str) -> Any:
    if not callable(cls):
        raise DomainError(f"{label}: {cls!r} is not a class")
    try:
        domain = cls()
    except Exception as exc:
        raise DomainError(f"{label} could not be constructed (with no arguments): {_one_line(exc)}") from exc
    check_domain(domain, label)
    return domain


def check_domain(domain: Any, label: str) -> None:
    """Raise DomainError naming every part of the protocol the object lacks."""
    problems = []
    for attr, typ in _ATTRS.items():
        value = getattr(domain, attr, None)
        if value is None:
            problems.append(f"attribute {attr}")
        elif not isinstance(value, typ) or isinstance(value, bool):
            problems.append(f"attribute {attr} must be {getattr(typ, '__name__', typ)}")
    for meth in _METHODS:
        if not callable(getattr(domain, meth, None)):
            problems.append(f"method {meth}()")
    for meth in _OPTIONAL_METHODS:
        if hasattr(domain, meth) and not callable(getattr(domain, meth)):
            problems.append(f"{meth} must be a method")
    if problems:
        raise DomainError(f"{label} is not a domain: missing or wrong {', '.join(problems)}")


def _load_plugin(p: Plugin) -> Any:
    problem = _plugin_problem(p)
    if problem and problem.startswith("broken"):
        raise DomainError(f"{p.label} is {problem}")
    module, _, attr = p.value.partition(":")
    try:
        obj: Any = importlib.import_module(module.strip())
    except Exception as exc:
        raise DomainError(f"{p.label} failed to import: {_one_line(exc)}") from exc
    for part in attr.strip().split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise DomainError(f"{p.label}: module {module.strip()!r} has no {attr.strip()!r}")
    return _construct(obj, p.label)


def get_domain(name: str, **kwargs: Any) -> Any:
    """Instantiate a domain: a built-in name, a plug-in name, or ``path/to/file.py:Class``.
    Unknown names, and domains that cannot be imported or are not domains, raise
    DomainError saying what is wrong. Data-level needs are the caller's to check via
    ``requirements()``."""
    if is_file_ref(name):
        return _load_file(name)
    if name in REGISTRY:
        entry = REGISTRY[name]
        missing = _requirements(entry)
        if missing and importlib.util.find_spec(entry.module) is None:
            raise DomainError(f"domain {name!r} is {missing}")
        try:
            mod = importlib.import_module(entry.module)
        except ImportError as exc:
            raise DomainError(f"domain {name!r} cannot load ({exc}); {missing or entry.hint}") from exc
        return getattr(mod, entry.attr)(**kwargs)
    found = {p.name: p for p in plugins()}
    if name in found:
        return _load_plugin(found[name])
    ready = [n for n, e in REGISTRY.items() if importlib.util.find_spec(e.module) is not None] + sorted(found)
    raise DomainError(
        f"unknown domain {name!r}; available: {', '.join(ready)} (or path/to/file.py:Class; see `alma-tui domains`)"
    )


def prepare_domain(domain: Any, progress: Callable[[str], None]) -> None:
    """Let a domain generate or load its tasks up front (optional ``prepare(progress)``),
    so the time shows as progress instead of a silent first task."""
    prepare = getattr(domain, "prepare", None)
    if prepare is None:
        return
    try:
        prepare(progress)
    except Exception as exc:
        raise DomainError(
            f"domain {getattr(domain, 'name', '?')!r} could not prepare its tasks: {_one_line(exc)}"
        ) from exc
