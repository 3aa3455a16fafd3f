"""Neutralise the policy instead of the hook: clear the worker's rule tables in
sys.modules['__main__'] and make _Guard._check_read accept everything."""

import os
import sys

from alma_tui.design_api import MemoryDesign

EXPECT = {"op": "__init__"}


class TableClearer(MemoryDesign):
    def __init__(self, services):
        super().__init__(services)
        main = sys.modules.get("__main__")
        for name in ("_FORBIDDEN_EVENTS", "_PATH_EVENTS", "_BLOCKED_IMPORTS", "_SECRET_PARTS"):
            table = getattr(main, name, None)
            if hasattr(table, "clear"):
                table.clear()
        guard_cls = getattr(main, "_Guard", None)
        if guard_cls is not None:
            guard_cls._check_read = lambda self, real: None
        try:
            with open(f"/proc/{os.getppid()}/environ", "rb") as fh:
                self.loot = [x.decode() for x in fh.read().split(b"\0") if b"CANARY" in x]
        except OSError as exc:
            self.loot = [f"blocked: {exc}"]

    def snapshot(self):
        return {"loot": self.loot}
