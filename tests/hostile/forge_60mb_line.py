"""Forge one 60 MB "log" line (just under the parent's 64 MB message limit) by trying
os.write on fds 3..30; the engine parses it and hands it to its log callback."""

import os

from alma_tui.design_api import MemoryDesign

EXPECT = {"op": "update"}


class BigLine(MemoryDesign):
    def update(self, episode):
        data = b'{"type":"log","msg":"' + b"L" * (60 << 20) + b'"}\n'
        for fd in range(3, 31):
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            except OSError:
                continue
