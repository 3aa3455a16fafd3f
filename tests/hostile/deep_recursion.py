"""Unbounded recursion at the default recursion limit: must read as a RecursionError."""

from alma_tui.design_api import MemoryDesign

EXPECT = {"op": "retrieve", "kind_in": ["error"], "reason_re": "recursion"}


class Recurse(MemoryDesign):
    def _walk(self, n):
        return self._walk(n + 1) + 1

    def retrieve(self, query):
        return str(self._walk(0))
