"""sys.setrecursionlimit(10**9) and recurse forever: the process runs out of stack or frame
memory; the reason should say recursion/stack, not "out of memory"."""

import sys

from alma_tui.design_api import MemoryDesign

EXPECT = {"op": "update", "kind_in": ["error", "crash"], "reason_re": "recurs|stack"}


def dive(n):
    return dive(n + 1) + 1


class Abyss(MemoryDesign):
    def update(self, episode):
        sys.setrecursionlimit(10**9)
        dive(0)
