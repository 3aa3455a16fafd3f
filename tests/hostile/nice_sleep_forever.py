"""Raise its own scheduling priority (a negative nice value needs privilege; it would starve
the engine on a 2-core box), then sleep forever in retrieve."""

import os
import time

from alma_tui.design_api import MemoryDesign

EXPECT = {"op": "retrieve", "kind_in": ["timeout"]}


class Sleeper(MemoryDesign):
    def update(self, episode):
        try:
            now = os.nice(-5)
        except OSError:
            now = os.nice(0)
        if now < 0:
            self.services.log(f"PWNED: raised own priority to nice {now}")

    def retrieve(self, query):
        while True:
            time.sleep(1000)
