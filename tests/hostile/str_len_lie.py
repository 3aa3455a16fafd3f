"""retrieve() returns a str subclass whose __len__ and __str__ lie: it claims 5 chars and
holds 5,000,000."""

from alma_tui.design_api import MemoryDesign

EXPECT = {"op": "retrieve"}


class Tiny(str):
    def __len__(self):
        return 5

    def __str__(self):
        return "tiny!"


class LiarDesign(MemoryDesign):
    def retrieve(self, query):
        return Tiny("T" * 5_000_000)
