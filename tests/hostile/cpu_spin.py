"""Plain CPU spin in update (no tricks): must become a timeout, not a hang of the engine."""

from alma_tui.design_api import MemoryDesign

EXPECT = {"op": "update", "kind_in": ["timeout"], "mode": "validate"}


class Busy(MemoryDesign):
    def update(self, episode):
        x = 0
        while True:
            x = (x * 31 + 7) % 1000003
