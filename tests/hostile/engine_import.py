"""Import the engine's own modules (the household domain generator, to learn the answers)
after clearing the worker's import block rules and switching the guard off."""

import gc
import importlib
import sys

from alma_tui.design_api import MemoryDesign

EXPECT = {"op": "retrieve"}


class Insider(MemoryDesign):
    def retrieve(self, query):
        main = sys.modules.get("__main__")
        table = getattr(main, "_BLOCKED_IMPORTS", None)
        if hasattr(table, "clear"):
            table.clear()
        for obj in gc.get_objects():
            if type(obj).__name__ == "_Guard":
                obj.active = False
        try:
            hh = importlib.import_module("alma_tui.domains.household")
        except Exception as exc:
            return f"no engine: {type(exc).__name__}: {exc}"
        return (
            f"PWNED: imported the engine's alma_tui.domains.household; "
            f"P_USUAL_TARGET = {hh.P_USUAL_TARGET}; houses: {sorted(hh.HOUSES)}"
        )
