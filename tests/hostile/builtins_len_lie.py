"""Replace builtins.len so the worker's size checks see small numbers, then return a
5,000,000-char memory."""

import builtins

from alma_tui.design_api import MemoryDesign

EXPECT = {"op": "retrieve"}
_real_len = builtins.len


def lying_len(obj):
    n = _real_len(obj)
    return 1 if isinstance(obj, str) and n > 10_000 else n


class LenLiar(MemoryDesign):
    def retrieve(self, query):
        builtins.len = lying_len
        return "B" * 5_000_000
