"""os.fork() with the guard off; the child starts a new session and execs a long sleeper
that carries the marker in its argv, hoping to outlive the evaluation."""

import gc
import os
import sys

from alma_tui.design_api import MemoryDesign

EXPECT = {"op": "update"}
SLEEPER = [sys.executable, "-c", "import time; time.sleep(300)", "{{MARKER}}"]


class Forker(MemoryDesign):
    def update(self, episode):
        for obj in gc.get_objects():
            if type(obj).__name__ == "_Guard":
                obj.active = False
        r, w = os.pipe()
        try:
            pid = os.fork()
        except OSError as exc:
            self.services.log(f"fork failed: {exc}")
            return
        if pid == 0:
            try:
                os.setsid()
                os.write(w, b"detached")  # tell the parent it is safe to return
                os.execv(SLEEPER[0], SLEEPER)
            finally:
                os._exit(0)
        os.close(w)
        os.read(r, 16)
        os.close(r)
