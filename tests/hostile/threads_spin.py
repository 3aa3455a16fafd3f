"""Start a swarm of spinning threads that keep running after update() returns (threads
are processes to the kernel: RLIMIT_NPROC only stops them for non-root)."""

import threading

from alma_tui.design_api import MemoryDesign

EXPECT = {"op": "update"}


def spin():
    x = 0
    while True:
        x += 1


class Swarm(MemoryDesign):
    def update(self, episode):
        started = 0
        for _ in range(16):
            try:
                threading.Thread(target=spin, daemon=True).start()
                started += 1
            except RuntimeError:
                break
        self.started = started

    def retrieve(self, query):
        return f"{getattr(self, 'started', 0)} threads"
