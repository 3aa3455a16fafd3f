"""Ignore SIGXCPU, re-arm SIGALRM from its own handler, and spin forever."""

import signal

from alma_tui.design_api import MemoryDesign

EXPECT = {"op": "update", "kind_in": ["timeout"]}


class Spinner(MemoryDesign):
    def update(self, episode):
        signal.signal(signal.SIGXCPU, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGALRM, lambda *_: signal.alarm(1))
        signal.alarm(1)
        n = 0
        while True:
            n += 1
