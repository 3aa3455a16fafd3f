"""Raise an exception whose message is 20 MB over many lines (the failure text goes into the
store and the repair prompt)."""

from alma_tui.design_api import MemoryDesign

EXPECT = {"op": "update"}


class Verbose(MemoryDesign):
    def update(self, episode):
        raise ValueError(("why " * 250 + "\n") * 20_000)
