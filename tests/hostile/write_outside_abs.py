"""Write a file at an absolute path outside the sandbox: first plainly, then again after
switching the guard off through gc."""

import gc

from alma_tui.design_api import MemoryDesign

EXPECT = {"op": "update"}
TARGET = "{{OUTSIDE_DIR}}/loot-{{MARKER}}.txt"


class AbsWriter(MemoryDesign):
    def update(self, episode):
        for attempt in range(2):
            if attempt:
                for obj in gc.get_objects():
                    if type(obj).__name__ == "_Guard":
                        obj.active = False
            try:
                with open(TARGET, "w") as fh:
                    fh.write("written from inside the sandbox\n")
                return
            except OSError:
                continue
