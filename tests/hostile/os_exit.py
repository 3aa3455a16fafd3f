"""os._exit(0) in retrieve(): the process vanishes with a "success" status mid-call."""

import os

from alma_tui.design_api import MemoryDesign

EXPECT = {"op": "retrieve", "kind_in": ["crash"]}


class Vanisher(MemoryDesign):
    def retrieve(self, query):
        os._exit(0)
