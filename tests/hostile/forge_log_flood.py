"""Forge hundreds of thousands of 2 KB "log" messages on the protocol pipe (the worker's own
log() path would cut each message but does not count them)."""

import os

from alma_tui.design_api import MemoryDesign

EXPECT = {"op": "update"}


class LogFlood(MemoryDesign):
    def update(self, episode):
        line = b'{"type":"log","msg":"' + b"F" * 2000 + b'"}\n'
        batch = line * 512
        fds = []
        for fd in range(3, 31):
            try:
                os.write(fd, line)
                fds.append(fd)
            except OSError:
                continue
        for _ in range(400):  # ~400 MB
            for fd in fds:
                view = memoryview(batch)
                while view:
                    view = view[os.write(fd, view) :]
