"""print() a million long lines, plus raw os.write to fds 1 and 2 (C-level output)."""

import os

from alma_tui.design_api import MemoryDesign

EXPECT = {"op": "update", "mode": "validate"}


class Printer(MemoryDesign):
    def update(self, episode):
        for i in range(1_000_000):
            print(i, "P" * 300)
        for fd in (1, 2):
            try:
                for _ in range(200):
                    os.write(fd, b"W" * 100_000 + b"\n")
            except OSError:
                pass
