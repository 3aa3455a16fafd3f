"""Forge 200,000 "out" (printed line) messages directly on the protocol pipe, bypassing the
worker's own line budget."""

import os

from alma_tui.design_api import MemoryDesign

EXPECT = {"op": "update"}


class OutFlood(MemoryDesign):
    def update(self, episode):
        line = b'{"type":"out","stream":"stdout","line":"' + b"O" * 500 + b'"}\n'
        batch = line * 1000
        fds = []
        for fd in range(3, 31):
            try:
                os.write(fd, line)
                fds.append(fd)
            except OSError:
                continue
        for _ in range(200):
            for fd in fds:
                view = memoryview(batch)
                while view:
                    view = view[os.write(fd, view) :]
