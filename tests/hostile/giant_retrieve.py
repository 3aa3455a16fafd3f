"""Return a 50,000,000-char memory from retrieve() (honest path: the cap must hold)."""

from alma_tui.design_api import MemoryDesign

EXPECT = {"op": "retrieve", "mode": "validate"}


class Hoarder(MemoryDesign):
    def retrieve(self, query):
        return "R" * 50_000_000
