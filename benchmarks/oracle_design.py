"""The *oracle* memory design for `household`: handed the domain's true regularities.

A benchmark and test fixture only, never in an archive: it shows how far memory can
take the offline agent (the ceiling a search is measured against). Its source is built
from ``HouseholdDomain.truth()`` so it runs in the design sandbox like any design
(which may import nothing but ``alma_tui.design_api``).
"""

from __future__ import annotations

import json

from alma_tui.domains.household import HouseholdDomain

_TEMPLATE = '''"""Oracle: the true placements (per season) and working tools of each house kind (a fixture)."""

import re

from alma_tui.design_api import MemoryDesign, Query

TRUTH = {truth}
_VERBS = {{"clean": "clean", "hot": "heat", "cool": "cool"}}


def _signature(observation: str) -> str:
    m = re.search(r"you see (.*?)\\.(?:\\s|$)", observation.lower())
    counts = {{}}
    for typ, _ in re.findall(r"\\b([a-z]+) (\\d+)\\b", m.group(1) if m else ""):
        counts[typ] = counts.get(typ, 0) + 1
    return " ".join(f"{{t}}{{n}}" for t, n in sorted(counts.items()))


def _season(observation: str, epoch_days: int) -> int:
    m = re.search(r"it is day (\\d+)", observation.lower())
    return int(m.group(1)) // epoch_days if m else 0


class Oracle(MemoryDesign):
    def retrieve(self, query: Query) -> str:
        house = TRUTH.get(_signature(query.observation))
        if house is None:
            return ""
        season = _season(query.observation, house["epoch_days"])
        words = re.findall(r"[a-z]+", query.goal.lower())
        lines = []
        for w in words:
            for kind in (w, w[:-1], w[:-2], w[:-3] + "fe"):
                if kind in house["places"]:
                    first, second = house["places"][kind][season]
                    lines += [f"{{kind}} found in {{first}} (x50)", f"{{kind}} found in {{second}} (x10)"]
                    break
        for w in words:
            if w in _VERBS:
                lines.append(f"{{_VERBS[w]}}: use {{house['tools'][_VERBS[w]]}} (x50)")
        return "\\n".join(lines)
'''


def oracle_source() -> str:
    """The oracle design's module source."""
    return _TEMPLATE.format(truth=json.dumps(HouseholdDomain.truth(), sort_keys=True))
