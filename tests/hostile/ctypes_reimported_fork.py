"""Un-block ctypes (clear the worker's block list in __main__, drop cached modules from
sys.modules), load it, and fork through libc directly; the child execs a sleeper.

Loading native code is not an escape by itself (in-process code can always reach C, and
the OS sandbox holds whatever it calls); what must not happen is a process outliving the
design, which the harness checks through the sleeper's marker."""

import gc
import importlib
import os
import sys

from alma_tui.design_api import MemoryDesign

EXPECT = {"op": "update"}
SLEEPER = [sys.executable, "-c", "import time; time.sleep(300)", "{{MARKER}}"]


class NativeForker(MemoryDesign):
    def update(self, episode):
        main = sys.modules.get("__main__")
        for name in ("_BLOCKED_IMPORTS", "_FORBIDDEN_EVENTS"):
            table = getattr(main, name, None)
            if hasattr(table, "clear"):
                table.clear()
        for obj in gc.get_objects():
            if type(obj).__name__ == "_Guard":
                obj.active = False
        for mod in ("ctypes", "_ctypes"):
            sys.modules.pop(mod, None)
        try:
            ctypes = importlib.import_module("ctypes")
            libc = ctypes.CDLL(None)
            self.services.log(f"native code loaded inside the sandbox, libc getpid() = {libc.getpid()}")
            pid = libc.fork()
        except Exception as exc:
            self.services.log(f"ctypes failed: {type(exc).__name__}: {exc}")
            return
        if pid == 0:
            try:
                os.setsid()
                os.execv(SLEEPER[0], SLEEPER)
            finally:
                os._exit(0)
