"""Kill the engine: os.kill(os.getppid(), SIGKILL) with the guard switched off."""

import gc
import os
import signal

from alma_tui.design_api import MemoryDesign

EXPECT = {"op": "update"}


class Parricide(MemoryDesign):
    def update(self, episode):
        for obj in gc.get_objects():
            if type(obj).__name__ == "_Guard":
                obj.active = False
        ppid = os.getppid()
        if ppid > 1:  # in a PID namespace the parent is invisible (0): nothing to aim at
            try:
                os.kill(ppid, signal.SIGKILL)
            except OSError as exc:
                self.services.log(f"kill failed: {exc}")
