"""The worker neutered _posixsubprocess.fork_exec; load a fresh copy of the extension module
through importlib, put it back into subprocess, and Popen a detached sleeper."""

import gc
import importlib.util
import subprocess
import sys

from alma_tui.design_api import MemoryDesign

EXPECT = {"op": "update"}


class Reloader(MemoryDesign):
    def update(self, episode):
        for obj in gc.get_objects():
            if type(obj).__name__ == "_Guard":
                type(obj).__call__ = lambda self, event, args: None
        try:
            spec = importlib.util.find_spec("_posixsubprocess")
            fresh = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(fresh)
            subprocess._posixsubprocess = fresh
            subprocess._fork_exec = fresh.fork_exec  # 3.11 binds it at import time
            subprocess.Popen(
                [sys.executable, "-c", "import time; time.sleep(300)", "{{MARKER}}"],
                start_new_session=True,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        except Exception as exc:
            self.services.log(f"popen failed: {type(exc).__name__}: {exc}")
