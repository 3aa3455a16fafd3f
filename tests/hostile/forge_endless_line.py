"""Write an endless line (no newline ever) into every writable fd 3..30, 1 MB at a time:
the engine must stop buffering it rather than grow without bound."""

import os

from alma_tui.design_api import MemoryDesign

EXPECT = {"op": "update", "kind_in": ["protocol", "timeout", "crash"]}


class Endless(MemoryDesign):
    def update(self, episode):
        chunk = b'{"type":"log","msg":"' + b"E" * (1 << 20)
        targets = []
        for fd in range(3, 31):
            try:
                os.write(fd, chunk)
                targets.append(fd)
            except OSError:
                continue
        while targets:
            for fd in targets:
                os.write(fd, b"E" * (1 << 20))
