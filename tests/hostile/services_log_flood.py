"""Call services.log() thousands of times with 1 MB messages (through the official API)."""

from alma_tui.design_api import MemoryDesign

EXPECT = {"op": "update"}


class Logorrhea(MemoryDesign):
    def update(self, episode):
        msg = "M" * (1 << 20)
        for _ in range(2500):
            self.services.log(msg)
