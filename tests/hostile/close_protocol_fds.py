"""Close every fd from 3 up (the protocol pipes among them) and then carry on as if nothing
happened; the worker can no longer answer."""

import os

from alma_tui.design_api import MemoryDesign

EXPECT = {"op": "update", "kind_in": ["crash", "protocol", "timeout"]}


class Closer(MemoryDesign):
    def update(self, episode):
        os.closerange(3, 1024)
