"""sys.exit() from update(): SystemExit must not shut the worker down quietly or look like
success."""

import sys

from alma_tui.design_api import MemoryDesign

EXPECT = {"op": "update", "kind_in": ["error", "crash"]}


class Quitter(MemoryDesign):
    def update(self, episode):
        sys.exit(0)
