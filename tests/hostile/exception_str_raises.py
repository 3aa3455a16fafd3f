"""Raise an exception whose __str__ itself raises (and whose __repr__ recurses), so the
worker's error reporting fails."""

from alma_tui.design_api import MemoryDesign

EXPECT = {"op": "update", "kind_in": ["error", "crash"]}


class Cursed(Exception):
    def __str__(self):
        raise RuntimeError("you cannot print me")

    def __repr__(self):
        return repr(self)


class CursedDesign(MemoryDesign):
    def update(self, episode):
        raise Cursed()
