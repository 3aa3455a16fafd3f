"""Allocate without bound: a growing list of 64 MB blocks, touched so they are real."""

from alma_tui.design_api import MemoryDesign

EXPECT = {"op": "update", "kind_in": ["memory"]}


class Bomb(MemoryDesign):
    def update(self, episode):
        self.blocks = []
        while True:
            self.blocks.append(bytearray(b"\1") * (64 << 20))
