"""Flood the official services.log(): 1 MB messages for 2 s, then 10,001-char messages (just
over the worker's per-message cut) for 2.5 s more."""

import time

from alma_tui.design_api import MemoryDesign

EXPECT = {"op": "update"}


class Logorrhea(MemoryDesign):
    def update(self, episode):
        big, medium = "M" * (1 << 20), "m" * 10_001
        t0 = time.monotonic()
        while time.monotonic() - t0 < 2.0:
            self.services.log(big)
        while time.monotonic() - t0 < 4.5:
            self.services.log(medium)
