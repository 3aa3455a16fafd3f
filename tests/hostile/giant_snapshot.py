"""Return a 100 MB snapshot (honest path: must be refused, not shipped to the TUI)."""

from alma_tui.design_api import MemoryDesign

EXPECT = {"op": "snapshot", "kind_in": ["invalid", "memory"]}


class BigSnap(MemoryDesign):
    def snapshot(self):
        return {"blob": "S" * 100_000_000, "list": list(range(1000))}
