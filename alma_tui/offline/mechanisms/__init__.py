"""The offline meta agent's library of memory mechanisms, and the code writer.

Why this exists: the offline meta agent must write *real* design modules that a
human can read and diff, and a search over them must be able to find designs
clearly better than trajectory retrieval. So a design is described by a small
**genome** (a dict of mechanism choices) that is rendered into readable code and
embedded in the module as ``MECHANISMS = {...}``; the next generation recovers
the genome from the parent code alone, mutates it as the analysis suggests, and
renders the child. Three modules, one step each:

- :mod:`.genome`: the genome's keys and values, :func:`normalise`, :func:`genome_from_code`;
- :mod:`.operators`: the mutation operators and :func:`mutate` (suggestion text -> genome change);
- :mod:`.render`: genome -> readable module (:func:`render`, titles, docstring bullets).

Callers use this package's names (``from alma_tui.offline import mechanisms as dm``).
"""

from __future__ import annotations

from alma_tui.offline.mechanisms.genome import (
    CHOICES,
    DEFAULT_GENOME,
    MECHANISMS_RE,
    NO_MEMORY_GENOME,
    Genome,
    genome_from_code,
    normalise,
)
from alma_tui.offline.mechanisms.operators import OPERATOR_NAMES, OPERATORS, apply_operator, mutate, operators_for
from alma_tui.offline.mechanisms.render import BUGS, class_name, default_title, describe, render

__all__ = [
    "BUGS",
    "CHOICES",
    "DEFAULT_GENOME",
    "MECHANISMS_RE",
    "NO_MEMORY_GENOME",
    "OPERATORS",
    "OPERATOR_NAMES",
    "Genome",
    "apply_operator",
    "class_name",
    "default_title",
    "describe",
    "genome_from_code",
    "mutate",
    "normalise",
    "operators_for",
    "render",
]
