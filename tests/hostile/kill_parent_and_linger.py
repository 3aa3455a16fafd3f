"""Kill the engine, rename itself to the marker (/proc/self/comm) and keep running: with
no engine left to kill it, an orphaned worker lives on unless it dies with its parent."""

import gc
import os
import signal
import time

from alma_tui.design_api import MemoryDesign

EXPECT = {"op": "update"}


class Orphan(MemoryDesign):
    def update(self, episode):
        for obj in gc.get_objects():
            if type(obj).__name__ == "_Guard":
                obj.active = False
        try:
            with open("/proc/self/comm", "w") as fh:
                fh.write("{{MARKER}}")
        except OSError as exc:
            self.services.log(f"comm: {exc}")
        ppid = os.getppid()
        if ppid > 1:
            try:
                os.kill(ppid, signal.SIGKILL)
            except OSError as exc:
                self.services.log(f"kill failed: {exc}")
        deadline = time.time() + 60
        while time.time() < deadline:
            time.sleep(0.2)
